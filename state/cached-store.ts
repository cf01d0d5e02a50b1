import type { RangeOptions, RocksDatabase } from './rocksdb.js';

/** A `peek`'s answer for a key that is not in memory: only a read of RocksDB can tell. */
export const NOT_LOADED: unique symbol = Symbol('not loaded');

/** One uncommitted write: a value, or null for a delete. */
export interface PendingChange {
  readonly key: Buffer;
  readonly value: Buffer | null;
}

/**
 * The caching layer over RocksDB: writes stay in memory until the stage's commit succeeds, so
 * RocksDB only ever holds committed state (an aborted transaction just discards the cache).
 *
 * Two layers sit over RocksDB: `dirty` (writes since the last commit began) and `frozen` (the
 * writes of the commit in flight, fixed when it began). Reads see dirty, then frozen, then
 * RocksDB. The order of a commit is: `freeze()` (its changelog records) → the Kafka transaction
 * → `persistFrozen()` (RocksDB) → checkpoint. When the transaction failed, the frozen layer stays
 * readable until processing has stopped; `discard()` drops it then (a failed task's, at its close).
 */
export class CachedBytesStore {
  private dirty = new Map<string, PendingChange>();
  private frozen: Map<string, PendingChange> | undefined;
  /**
   * RocksDB values read ahead for a batch of records (null: absent), consulted after the pending
   * layers. Cleared whenever RocksDB changes under it (a commit persisted, a restore, a discard).
   */
  private readAhead = new Map<string, Buffer | null>();

  constructor(readonly db: RocksDatabase) {}

  async get(key: Buffer): Promise<Buffer | undefined> {
    const hex = key.toString('hex');
    const pending = this.dirty.get(hex) ?? this.frozen?.get(hex);
    if (pending) return pending.value ?? undefined;
    const ahead = this.readAhead.get(hex);
    if (ahead !== undefined) return ahead ?? undefined;
    return this.db.get(key);
  }

  /**
   * `get` without a promise: the value (undefined: none) where the pending writes or the read-ahead
   * know it, NOT_LOADED where only RocksDB can tell.
   */
  peek(key: Buffer): Buffer | undefined | typeof NOT_LOADED {
    const hex = key.toString('hex');
    const pending = this.dirty.get(hex) ?? this.frozen?.get(hex);
    if (pending) return pending.value ?? undefined;
    const ahead = this.readAhead.get(hex);
    if (ahead !== undefined) return ahead ?? undefined;
    return NOT_LOADED;
  }

  /** Reads keys from RocksDB in one call so that the gets of a batch that follow answer from memory. */
  async readAheadOf(keys: readonly Buffer[]): Promise<void> {
    const wanted = keys.filter((key) => {
      const hex = key.toString('hex');
      return !this.dirty.has(hex) && !this.frozen?.has(hex) && !this.readAhead.has(hex);
    });
    if (wanted.length === 0) return;
    const values = await this.db.getMany(wanted);
    wanted.forEach((key, index) => this.readAhead.set(key.toString('hex'), values[index] ?? null));
  }

  /** RocksDB changed (restored into): what was read ahead may be stale. */
  forgetReadAhead(): void {
    this.readAhead = new Map();
  }

  /** Several keys: pending writes answer first, the rest come from RocksDB in one call. */
  async getMany(keys: readonly Buffer[]): Promise<(Buffer | undefined)[]> {
    const results: (Buffer | undefined)[] = new Array<Buffer | undefined>(keys.length);
    const fromDb: number[] = [];
    keys.forEach((key, index) => {
      const hex = key.toString('hex');
      const pending = this.dirty.get(hex) ?? this.frozen?.get(hex);
      if (pending) results[index] = pending.value ?? undefined;
      else fromDb.push(index);
    });
    const stored = await this.db.getMany(fromDb.map((index) => keys[index] as Buffer));
    fromDb.forEach((index, position) => {
      results[index] = stored[position];
    });
    return results;
  }

  put(key: Buffer, value: Buffer): void {
    const hex = key.toString('hex');
    this.dirty.delete(hex); // re-insert: the changelog keeps the order of last writes
    this.dirty.set(hex, { key, value });
  }

  delete(key: Buffer): void {
    const hex = key.toString('hex');
    this.dirty.delete(hex);
    this.dirty.set(hex, { key, value: null });
  }

  /** Entries with keys in [gte, lt), committed and pending merged, in key order. */
  async range(gte: Buffer, lt: Buffer): Promise<[Buffer, Buffer][]> {
    // The pending layers as they are when the scan begins, not when it ends: the commit in flight
    // may persist its writes and drop the frozen layer while RocksDB is read (processing overlaps
    // commits), and the iterator reads a snapshot taken before those writes landed.
    const layers = [this.frozen, this.dirty];
    const merged = new Map<string, [Buffer, Buffer] | null>();
    const options: RangeOptions = { gte, lt };
    for await (const [key, value] of this.db.entries(options)) merged.set(key.toString('hex'), [key, value]);
    for (const layer of layers) {
      if (!layer) continue;
      for (const [hex, change] of layer) {
        if (Buffer.compare(change.key, gte) < 0 || Buffer.compare(change.key, lt) >= 0) continue;
        merged.set(hex, change.value === null ? null : [change.key, change.value]);
      }
    }
    return [...merged.entries()]
      .filter((entry): entry is [string, [Buffer, Buffer]] => entry[1] !== null)
      .sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0))
      .map(([, entry]) => entry);
  }

  /** The writes not yet handed to a commit. */
  pending(): PendingChange[] {
    return [...this.dirty.values()];
  }

  get pendingCount(): number {
    return this.dirty.size;
  }

  /** Hands the writes so far to a commit: returns them (for the changelog) and keeps them readable. */
  freeze(): PendingChange[] {
    if (this.frozen) throw new Error('a commit is already in flight for this store');
    this.frozen = this.dirty;
    this.dirty = new Map();
    return [...this.frozen.values()];
  }

  /**
   * After the commit succeeded: writes the frozen writes to RocksDB, unsynced (on disk once
   * `db.syncWal()` follows: before a checkpoint file says RocksDB holds them).
   */
  async persistFrozen(): Promise<void> {
    const frozen = this.frozen;
    if (!frozen) return;
    await this.db.write(
      [...frozen.values()].map((change) =>
        change.value === null ? { type: 'del' as const, key: change.key } : { type: 'put' as const, key: change.key, value: change.value },
      ),
      { sync: false },
    );
    this.frozen = undefined;
    this.readAhead = new Map();
  }

  /** Freezes and persists at once: for callers without a transaction around the write (tools, benchmarks). */
  async persistNow(): Promise<void> {
    this.freeze();
    await this.persistFrozen();
  }

  /** Forgets the writes not yet handed to a commit (a commit in flight keeps its own). */
  discardUncommitted(): void {
    this.dirty = new Map();
  }

  /** Forgets every write not in RocksDB, in flight or not. */
  discard(): void {
    this.dirty = new Map();
    this.frozen = undefined;
    this.readAhead = new Map();
  }
}
