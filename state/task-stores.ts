import fs from 'node:fs/promises';
import path from 'node:path';
import type { Kafka } from 'kafkajs';
import type { Logger } from 'pino';
import { CachedBytesStore } from './cached-store.js';
import { readChangelogPartition } from './changelog.js';
import { ChangelogDecodeError, StateStoreError, TaskLockedError } from './errors.js';
import type { CacheBudget } from './cache-budget.js';
import { KeyValueStore } from './key-value-store.js';
import { RocksDatabase, type BatchOperation } from './rocksdb.js';
import type { Serde } from './serde.js';
import { WindowStore } from './window-store.js';

/** A store a stage declares: one instance per input partition, backed by RocksDB and a changelog. */
export type StoreSpec =
  | {
      readonly name: string;
      readonly kind: 'key-value';
      readonly serde: Serde<unknown>;
      /** Bytes a cached value holds in memory beside its serialized form, counted with it in the cache budget (`KeyValueStore`). */
      readonly heldBeside?: (value: unknown) => number;
    }
  | { readonly name: string; readonly kind: 'window'; readonly serde: Serde<unknown>; readonly retentionMs: number };

/** A changelog record to produce in the commit's transaction, to an explicit partition. */
export interface ChangelogRecord {
  readonly topic: string;
  readonly partition: number;
  readonly key: Buffer;
  readonly value: Buffer | null;
}

export interface TaskStoresOptions {
  readonly specs: readonly StoreSpec[];
  /** The task's state folder (locked by its owner): `<dir>/<store>/` holds each store's RocksDB and checkpoint. */
  readonly dir: string;
  /** The changelog partition (the task's partition number). */
  readonly partition: number;
  readonly changelogTopic: (store: string) => string;
  readonly kafka: Kafka;
  /** Reads a changelog partition from an offset to its end; the Kafka reader by default (tests pass their own). */
  readonly readChangelog?: typeof readChangelogPartition;
  readonly logger: Logger;
  readonly onRestored?: (store: string, records: number, seconds: number) => void;
  readonly onSkipped?: (store: string) => void;
  /** The bound on the bytes the key-value stores' object caches hold, shared by the process's stores. */
  readonly cacheBudget?: CacheBudget;
}

interface OpenStore {
  readonly spec: StoreSpec;
  readonly dir: string;
  readonly changelog: string;
  readonly bytes: CachedBytesStore;
  readonly view: KeyValueStore<unknown> | WindowStore<unknown>;
  /** The changelog offset up to which RocksDB holds the state (exclusive); on disk once its log is synced. */
  checkpoint: bigint;
  /**
   * The offset checkpoint.json holds: at most `checkpoint`, and only written after a `syncWal()`
   * that covers it (every CHECKPOINT_INTERVAL_RECORDS, after a restore, and on close).
   */
  written: bigint;
  /**
   * A sync of its log failed: writes since the last good sync may be lost on a power loss even
   * though a later sync succeeds (the kernel may have dropped the failed pages and marked them
   * clean), so its checkpoint file never moves again in this process (the next open restores more).
   */
  syncFailed: boolean;
}

/**
 * Changelog records between two checkpoint files, as Kafka Streams' 10,000 under at-least-once.
 * RocksDB is written at every commit, unsynced; the file only says where a restore starts, and a
 * restore from an older offset replays more of the changelog over newer state, which ends in the
 * same state. That holds only because RocksDB gets a commit's writes after its transaction
 * succeeded (never uncommitted ones): Kafka Streams, whose stores take writes before the commit,
 * drops the file while running under exactly-once instead. Writing it at every commit cost a file
 * write, a rename and two fsyncs per store per commit.
 *
 * The order that makes a power loss safe: the file is written only after RocksDB's write-ahead
 * log is synced (`syncWal`), so it never names an offset whose state is not on disk. A power loss
 * can take unsynced writes after it, never one before, and the restore from the file's offset
 * writes every change since again (the binding opens RocksDB without paranoid checks, so a damaged
 * log tail is skipped, not refused). A killed process loses none (the page cache keeps them).
 * Syncing at every commit cost an fsync per store per commit on libuv's thread pool, which the
 * reads share (a median 17 ms and a p99 of 212 ms of the commit's local step at 5,000 events/s),
 * while the changelog already holds every committed write. As in Kafka Streams, whose stores
 * write no log at all and are flushed before its checkpoint: a delete after the file's offset that
 * a power loss took, and whose tombstone the changelog's compaction removed before the restore
 * (`delete.retention.ms`, a day by default), would come back.
 */
export const CHECKPOINT_INTERVAL_RECORDS = 10_000n;

interface Checkpoint {
  readonly offset: string;
}

/**
 * The stores of one input partition. Opening restores them: from the local checkpoint when the
 * RocksDB directory is intact, from the start of the changelog when it is missing or unreadable.
 * Writes stay in the cache until the commit: `changelogRecords()` go into the transaction, and
 * `commitLocal()` writes them to RocksDB and moves the checkpoint once it has committed.
 */
export class TaskStores {
  private constructor(
    private readonly options: TaskStoresOptions,
    private readonly stores: Map<string, OpenStore>,
  ) {}

  static async open(options: TaskStoresOptions): Promise<TaskStores> {
    const stores = new Map<string, OpenStore>();
    try {
      for (const spec of options.specs) stores.set(spec.name, await openStore(options, spec));
      const taskStores = new TaskStores(options, stores);
      await taskStores.restore();
      return taskStores;
    } catch (error) {
      for (const store of stores.values()) {
        if (store.view instanceof KeyValueStore) store.view.close();
        await store.bytes.db.close().catch(() => undefined);
      }
      throw error;
    }
  }

  // eslint-disable-next-line @typescript-eslint/no-unnecessary-type-parameters -- the caller names the store type it declared
  store<S>(name: string): S {
    const store = this.stores.get(name);
    if (!store) throw new Error(`no store named ${name}; declared: ${[...this.stores.keys()].join(', ')}`);
    return store.view as S;
  }

  has(name: string): boolean {
    return this.stores.has(name);
  }

  /** Every store by name (interactive queries list them). */
  get names(): string[] {
    return [...this.stores.keys()];
  }

  /** Loads keys of a key-value store into memory with one RocksDB call (the batch's reads then hit memory). */
  async prefetch(name: string, entries: readonly { readonly key: string; readonly window?: number }[]): Promise<void> {
    const store = this.stores.get(name);
    if (store?.view instanceof KeyValueStore) await store.view.prefetch(entries.map((entry) => entry.key));
    else if (store?.view instanceof WindowStore) {
      await store.view.prefetch(
        entries.flatMap((entry) => (entry.window === undefined ? [] : [{ key: entry.key, windowStart: entry.window }])),
      );
    }
  }

  /**
   * Starts a commit: fixes every store's writes so far (later writes go to the next commit) and
   * returns them as changelog records for this partition, to go into the commit's transaction.
   */
  freeze(): ChangelogRecord[] {
    const records: ChangelogRecord[] = [];
    for (const store of this.stores.values()) {
      if (store.view instanceof KeyValueStore) store.view.serializeDirty();
      else store.view.onFreeze();
      for (const change of store.bytes.freeze()) {
        const key = store.spec.kind === 'window' ? WindowStore.changelogKey(change.key) : change.key;
        records.push({ topic: store.changelog, partition: this.options.partition, key, value: change.value });
      }
    }
    return records;
  }

  /**
   * After the frozen commit's transaction succeeded: RocksDB gets its writes (unsynced), then the
   * checkpoint moves to the changelog's new end — never before the data it covers; its file
   * follows every CHECKPOINT_INTERVAL_RECORDS, after a sync of the store's log (see
   * CHECKPOINT_INTERVAL_RECORDS), and on close. The stores are separate databases: each one's
   * steps are in this order, and the stores go side by side (one wait on libuv's thread pool,
   * not one per store, which the busy event loop made tens of milliseconds each).
   */
  async commitLocal(changelogEnds: ReadonlyMap<string, bigint>): Promise<void> {
    await this.waitForEveryStore(
      [...this.stores.values()].map(async (store) => {
        await store.bytes.persistFrozen();
        if (store.view instanceof WindowStore) await store.view.onCommitted();
        const end = changelogEnds.get(store.changelog);
        if (end === undefined || end <= store.checkpoint) return;
        store.checkpoint = end;
        if (end - store.written >= CHECKPOINT_INTERVAL_RECORDS) await checkpointFile(store);
      }),
    );
  }

  /** Waits for every store's step, unlike common/settle's settleAll (which rejects at the first): then throws the first failure, the others logged, so none is left running. */
  private async waitForEveryStore(steps: readonly Promise<void>[]): Promise<void> {
    const failures = (await Promise.allSettled(steps)).flatMap((result) =>
      result.status === 'rejected' ? [result.reason as unknown] : [],
    );
    for (const other of failures.slice(1)) this.options.logger.warn({ err: other }, 'another store failed in the same commit');
    if (failures.length > 0) throw failures[0];
  }

  /** Drops the writes not yet handed to a commit; a commit in flight keeps its own. */
  discardUncommitted(): void {
    for (const store of this.stores.values()) {
      if (store.view instanceof KeyValueStore) store.view.discardCache();
      else store.view.onDiscard(true);
      store.bytes.discardUncommitted();
    }
  }

  /** After an abort: drops every write not in RocksDB (RocksDB holds committed state only). */
  discard(): void {
    for (const store of this.stores.values()) {
      if (store.view instanceof KeyValueStore) store.view.discardCache();
      else store.view.onDiscard(false);
      store.bytes.discard();
    }
  }

  /**
   * Brings every store up to the end of its changelog from its checkpoint. Also used after a
   * commit of unknown outcome: if it did commit, its changelog records are applied here.
   */
  async restore(): Promise<void> {
    for (const store of this.stores.values()) store.bytes.forgetReadAhead();
    for (const store of this.stores.values()) {
      let skipped = 0;
      let batch: BatchOperation[] = [];
      const read = this.options.readChangelog ?? readChangelogPartition;
      const progress = await read(
        this.options.kafka,
        store.changelog,
        this.options.partition,
        store.checkpoint,
        async (key, value, offset) => {
          if (!key) return;
          try {
            const storeKey = store.view instanceof WindowStore ? store.view.restoreKey(key) : key;
            if (value === null) {
              batch.push({ type: 'del', key: storeKey });
            } else {
              store.spec.serde.deserialize(value); // foreign bytes are reported and skipped
              batch.push({ type: 'put', key: storeKey, value });
            }
            if (batch.length >= 5_000) {
              await store.bytes.db.write(batch, { sync: false });
              batch = [];
            }
          } catch (cause) {
            skipped++;
            this.options.onSkipped?.(store.spec.name);
            const error = new ChangelogDecodeError(
              `unreadable changelog record in ${store.changelog}/${this.options.partition}@${offset}`,
              { cause },
            );
            this.options.logger.warn(
              {
                err: error,
                store: store.spec.name,
                topic: store.changelog,
                partition: this.options.partition,
                offset,
                key: key.toString('hex'),
              },
              'skipped a changelog record the store cannot read',
            );
          }
        },
      );
      await store.bytes.db.write(batch, { sync: false });
      // RocksDB changed under the object cache: reads in flight from before are not cached.
      if (store.view instanceof KeyValueStore) store.view.discardCache();
      if (store.view instanceof WindowStore) await store.view.afterRestore();
      store.checkpoint = BigInt(progress.endOffset);
      await checkpointFile(store);
      this.options.onRestored?.(store.spec.name, progress.records, progress.seconds);
      if (progress.records > 0 || skipped > 0) {
        this.options.logger.info(
          { store: store.spec.name, partition: this.options.partition, records: progress.records, skipped, seconds: progress.seconds },
          'store restored from its changelog',
        );
      }
    }
  }

  /** Writes each checkpoint file that lags behind what RocksDB holds, then closes the stores. */
  async close(): Promise<void> {
    for (const store of this.stores.values()) {
      if (store.view instanceof KeyValueStore) store.view.close();
      store.bytes.discard();
      if (store.checkpoint > store.written) {
        // Not written: the next open restores from the older checkpoint, which is safe, only longer.
        await checkpointFile(store).catch((error: unknown) =>
          this.options.logger.warn({ err: error, store: store.spec.name }, 'could not write the checkpoint on close'),
        );
      }
      await store.bytes.db.close().catch(() => undefined);
    }
  }
}

async function openStore(options: TaskStoresOptions, spec: StoreSpec): Promise<OpenStore> {
  const dir = path.join(options.dir, spec.name);
  const dbDir = path.join(dir, 'rocksdb');
  await fs.mkdir(dir, { recursive: true });
  let checkpoint = await readCheckpoint(dir);
  let db: RocksDatabase | undefined;
  try {
    db = await RocksDatabase.open(dbDir);
  } catch (error) {
    // Held by someone else: never corruption. Anything else (a corrupt or half-deleted database) is wiped and restored.
    if (isLockError(error)) throw new TaskLockedError(`RocksDB ${dbDir} is open in another process`, { cause: error });
    options.logger.warn(
      { err: error, store: spec.name, partition: options.partition },
      'local state is unreadable; restoring from the changelog',
    );
  }
  if (db && checkpoint === undefined) {
    // Contents of unknown state (no checkpoint says what they hold): emptied while RocksDB's own
    // lock is held, so a database another process has open is never deleted under it.
    const opened = db;
    await opened.clear({}).catch(async (error: unknown) => {
      // Not left open (and locked) by a task that never got it.
      await opened.close().catch(() => undefined);
      throw error;
    });
  }
  if (!db) {
    checkpoint = undefined;
    // No checkpoint (first start, lost disk, unclean state) or a corrupt database: start empty.
    await fs.rm(dbDir, { recursive: true, force: true });
    await fs.rm(path.join(dir, 'checkpoint.json'), { force: true });
    try {
      db = await RocksDatabase.open(dbDir);
    } catch (error) {
      if (isLockError(error)) throw new TaskLockedError(`RocksDB ${dbDir} is open in another process`, { cause: error });
      throw error;
    }
  }
  const bytes = new CachedBytesStore(db);
  const view =
    spec.kind === 'window'
      ? new WindowStore(bytes, spec.serde, spec.retentionMs)
      : new KeyValueStore(bytes, spec.serde, undefined, options.cacheBudget, spec.heldBeside);
  return {
    spec,
    dir,
    changelog: options.changelogTopic(spec.name),
    bytes,
    view,
    checkpoint: checkpoint ?? 0n,
    written: checkpoint ?? 0n,
    syncFailed: false,
  };
}

async function readCheckpoint(dir: string): Promise<bigint | undefined> {
  try {
    const parsed = JSON.parse(await fs.readFile(path.join(dir, 'checkpoint.json'), 'utf8')) as Partial<Checkpoint>;
    return typeof parsed.offset === 'string' && /^\d+$/.test(parsed.offset) ? BigInt(parsed.offset) : undefined;
  } catch {
    return undefined;
  }
}

/** Syncs a store's RocksDB log, then writes its checkpoint file at the offset RocksDB held before the sync. */
async function checkpointFile(store: OpenStore): Promise<void> {
  if (store.syncFailed) throw new StateStoreError(`the log of store ${store.spec.name} failed to sync earlier: its checkpoint stays`);
  const offset = store.checkpoint;
  try {
    await store.bytes.db.syncWal();
  } catch (error) {
    store.syncFailed = true;
    throw error;
  }
  await writeCheckpoint(store.dir, offset);
  store.written = offset;
}

/** Writes the checkpoint durably: a synced temporary file renamed over the old one, then the folder synced. */
async function writeCheckpoint(dir: string, offset: bigint): Promise<void> {
  const file = path.join(dir, 'checkpoint.json');
  const handle = await fs.open(`${file}.tmp`, 'w');
  try {
    await handle.writeFile(JSON.stringify({ offset: offset.toString() } satisfies Checkpoint));
    await handle.sync();
  } finally {
    await handle.close();
  }
  await fs.rename(`${file}.tmp`, file);
  const folder = await fs.open(dir, 'r');
  try {
    await folder.sync();
  } finally {
    await folder.close();
  }
}

/** RocksDB's own LOCK file is held (by another process, or another handle in this one). */
function isLockError(error: unknown): boolean {
  const message = error instanceof Error ? `${error.message} ${error.cause instanceof Error ? error.cause.message : ''}` : String(error);
  return /\block\b/i.test(message) && !/corrupt/i.test(message);
}
