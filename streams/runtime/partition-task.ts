import { Subject, concatMap, from, type Subscription } from 'rxjs';
import type { Logger } from 'pino';
import { errorMessage } from '../../common/errors.js';
import type { TaskStores } from '../../state/index.js';
import type { CommitterFactory, PartitionCommitter, ProducedBatch } from './committer.js';
import { retryKafka } from '../../kafka/index.js';
import { StageFailedError } from './errors.js';
import type { OutputRecord, RawRecord } from './record.js';

/** A record and everything it produced (outputs and dead letters), not yet committed. */
export interface ProcessedRecord {
  readonly raw: RawRecord;
  readonly outputs: readonly OutputRecord[];
}

export interface PartitionTaskOptions {
  readonly topic: string;
  readonly partition: number;
  /** Decodes and processes one record; rejects only when the stage must stop. */
  readonly process: (raw: RawRecord) => Promise<ProcessedRecord>;
  readonly committers: CommitterFactory;
  /** Opens (and restores) the partition's state stores; undefined for stateless stages. */
  readonly openStores?: () => Promise<TaskStores>;
  /** The group's committed offset for this partition ('-1' when none), read after fencing. */
  readonly committedOffset: () => Promise<string>;
  /** How long a fenced task waits for the group's next assignment before it takes the partition back. */
  readonly suspendTimeoutMs?: number;
  /** Moves the consumer's fetch position (kafkajs seek). */
  readonly seek: (offset: string) => void;
  readonly commitMaxRecords: number;
  readonly commitIntervalMs: number;
  readonly logger: Logger;
  /** In-flight accounting: records admitted, and records released (committed or dropped). */
  readonly onAdmitted: (count: number) => void;
  readonly onReleased: (count: number) => void;
  readonly onCommitted: (records: readonly ProcessedRecord[], seconds: number) => void;
  readonly onCommitFailed: (error: unknown) => void;
  readonly onFatal: (error: unknown) => void;
  readonly onStateChange: () => void;
  /** The partition's uncommitted work was dropped: in-memory state derived from it must go too. */
  readonly onReset: () => void;
}

/**
 * initializing → running ⇄ resetting (a commit failed: reopen, restore, seek back);
 * running → suspended (fenced: another instance took the partition over) → running when the group
 * assigns the partition here again (or after `suspendTimeoutMs`); any → closed.
 */
type TaskState = 'initializing' | 'running' | 'resetting' | 'suspended' | 'closed';

/** A commit that fails this many times in a row (after resets) stops the stage. */
const MAX_CONSECUTIVE_COMMIT_FAILURES = 5;

type Item =
  | { readonly kind: 'record'; readonly raw: RawRecord; readonly generation: number }
  | { readonly kind: 'commit'; readonly generation: number };

/**
 * One input partition owned by this instance: records are processed in offset order through an
 * RxJS pipeline (concatMap), their results collected, and committed in batches (by count or
 * time). While initializing or resetting, the task takes no records: it first opens its
 * committer (fencing zombies under exactly_once), restores its state stores, then reads the
 * committed offset and seeks to it, so processing always resumes exactly after the last
 * committed record. With state stores, commits run inside the pipeline, between records, so a
 * commit's changelog holds exactly the writes of the records it commits.
 */
export class PartitionTask {
  private state: TaskState = 'initializing';
  private committer: PartitionCommitter | undefined;
  private stores: TaskStores | undefined;
  private input = new Subject<Item>();
  private subscription: Subscription | undefined;
  private generation = 0;
  /** The first offset this task ever admitted: where to go back to when nothing is committed yet. */
  private firstAdmitted: bigint | undefined;
  /** Offset after the last admitted record; records below it are refetches, skipped. */
  private nextOffset: bigint | undefined;
  private pending: ProcessedRecord[] = [];
  private committing: Promise<unknown> | undefined;
  private timer: NodeJS.Timeout | undefined;
  /** Records admitted and not yet committed or dropped. */
  private admitted = 0;
  private idleWaiters: (() => void)[] = [];
  /** Commits that failed in a row; a failure that keeps coming back is not transient. */
  private consecutiveFailures = 0;

  constructor(private readonly options: PartitionTaskOptions) {}

  get accepting(): boolean {
    return this.state === 'running';
  }

  get inFlight(): number {
    return this.admitted;
  }

  get status(): TaskState {
    return this.state;
  }

  /** The partition's stores, once restored (interactive queries read them). */
  get taskStores(): TaskStores | undefined {
    return this.state === 'running' ? this.stores : undefined;
  }

  private get stateful(): boolean {
    return this.options.openStores !== undefined;
  }

  /** Opens the committer, restores the stores, then positions the consumer at the committed offset. */
  start(): Promise<void> {
    this.opening = this.open();
    return this.opening;
  }

  private opening: Promise<void> | undefined;

  private async open(): Promise<void> {
    this.options.onReset();
    try {
      // Retriable client errors (a fresh topic's partition not hosted yet, a leader move) are retried.
      await retryKafka(
        async () => {
          this.committer ??= await this.options.committers.open(this.options.topic, this.options.partition);
          if (this.isClosed()) return;
          if (this.options.openStores) this.stores ??= await this.options.openStores();
          if (this.isClosed()) return;
          await this.positionAtCommitted();
        },
        { stillWanted: () => !this.isClosed(), onRetry: (error, attempt) => this.logRetry('opening', error, attempt) },
      );
    } catch (error) {
      if (!this.isClosed()) this.options.onFatal(error);
    }
  }

  private logRetry(what: string, error: unknown, attempt: number): void {
    this.options.logger.info(
      { topic: this.options.topic, partition: this.options.partition, attempt, error: errorMessage(error) },
      `retriable error while ${what} the partition; retrying`,
    );
  }

  /** True when the record is a refetch of one already admitted (after a rebalance or seek). */
  isDuplicate(offset: string): boolean {
    return this.nextOffset !== undefined && BigInt(offset) < this.nextOffset;
  }

  /** Takes records in offset order (the caller has skipped duplicates). */
  admit(records: readonly RawRecord[]): void {
    const last = records.at(-1);
    if (!last) return;
    this.nextOffset = BigInt(last.offset) + 1n;
    this.firstAdmitted ??= BigInt(records[0]?.offset ?? last.offset);
    this.admitted += records.length;
    this.options.onAdmitted(records.length);
    for (const raw of records) this.input.next({ kind: 'record', raw, generation: this.generation });
  }

  /** Where the consumer should continue after a rebalance that kept this partition. */
  get resumeOffset(): string | undefined {
    return this.nextOffset?.toString();
  }

  /** Commits everything processed so far and resolves once nothing is in flight. */
  async drain(timeoutMs: number): Promise<boolean> {
    if (this.admitted === 0) return true;
    const idle = new Promise<void>((resolve) => this.idleWaiters.push(resolve));
    const timeout = new Promise<void>((resolve) => setTimeout(resolve, timeoutMs).unref());
    this.commitSoon(0);
    await Promise.race([idle, timeout]);
    return this.admitted === 0;
  }

  /**
   * The partition moved away: drops what is not yet in a commit, waits for a commit in flight to
   * finish (its RocksDB write and checkpoint included, so committed state is never lost), then
   * releases the committer and stores.
   */
  async close(): Promise<void> {
    if (this.state === 'closed') return;
    this.state = 'closed';
    if (this.suspendTimer) clearTimeout(this.suspendTimer);
    this.discardUncommitted({ keepInFlightCommit: true });
    // An open (restore) still under way finishes first: its committer and stores are closed below.
    await this.opening?.catch(() => undefined);
    await this.committing?.catch(() => undefined);
    await this.committer?.close();
    this.committer = undefined;
    await this.stores?.close();
    this.stores = undefined;
  }

  /** A method, not a field comparison: close() may run while an await is pending. */
  private isClosed(): boolean {
    return this.state === 'closed';
  }

  // ---- processing ----------------------------------------------------------------------------

  private startPipeline(): void {
    this.subscription?.unsubscribe();
    this.input = new Subject();
    this.subscription = this.input.pipe(concatMap((item) => from(this.handle(item)))).subscribe({
      error: (error: unknown) => {
        if (!this.isClosed()) this.options.onFatal(error);
      },
    });
  }

  private async handle(item: Item): Promise<void> {
    if (item.generation !== this.generation || this.isClosed()) return;
    if (item.kind === 'commit') {
      await this.commitNow();
      return;
    }
    const result = await this.options.process(item.raw);
    if (item.generation !== this.generation || this.isClosed()) return;
    this.pending.push(result);
    if (this.pending.length >= this.options.commitMaxRecords) {
      // With stores, commit right here, between records; without, let processing run on.
      if (this.stateful) await this.commitNow();
      else this.commitSoon(0);
    } else {
      this.commitSoon(this.options.commitIntervalMs);
    }
  }

  private commitSoon(delayMs: number): void {
    const run = (): void => {
      this.timer = undefined;
      if (this.stateful) this.input.next({ kind: 'commit', generation: this.generation });
      else void this.commitNow();
    };
    if (delayMs === 0) {
      if (this.timer) clearTimeout(this.timer);
      run();
      return;
    }
    this.timer ??= setTimeout(run, delayMs);
  }

  private commitNow(): Promise<void> {
    if (this.committing || this.pending.length === 0 || this.state !== 'running' || !this.committer) return Promise.resolve();
    const work = this.commitPending(this.committer);
    // `committing` covers the whole commit, its local RocksDB write and checkpoint included: close() waits for it.
    this.committing = work;
    return work.finally(() => {
      this.committing = undefined;
      if (this.isClosed()) return;
      if (this.pending.length >= this.options.commitMaxRecords) this.commitSoon(0);
      else if (this.pending.length > 0) this.commitSoon(this.options.commitIntervalMs);
    });
  }

  /**
   * One commit, in this order: freeze the stores' writes (their changelog records) → the Kafka
   * transaction (outputs, changelogs, input offset) → RocksDB write (synced) → checkpoint (fsync'd).
   */
  private async commitPending(committer: PartitionCommitter): Promise<void> {
    const batch = this.pending;
    this.pending = [];
    const generation = this.generation;
    const last = batch.at(-1);
    if (!last) return;
    const next = (BigInt(last.raw.offset) + 1n).toString();
    const stores = this.stores;
    const changelog = stores?.freeze() ?? [];
    const outputs = [...batch.flatMap((record) => record.outputs), ...changelog];
    const started = performance.now();
    let produced: readonly ProducedBatch[];
    try {
      produced = await committer.commit(outputs, next);
    } catch (error) {
      stores?.abortFrozen();
      this.options.onCommitFailed(error);
      this.consecutiveFailures++;
      if (this.consecutiveFailures >= MAX_CONSECUTIVE_COMMIT_FAILURES) {
        this.options.onFatal(
          new StageFailedError(
            `${this.consecutiveFailures} commits of ${this.options.topic}/${this.options.partition} failed in a row; last: ${errorMessage(error)}`,
            { cause: error },
          ),
        );
        return;
      }
      if (generation === this.generation && !this.isClosed()) {
        if (isFenced(error)) {
          // Reopening now would fence the new owner in turn: wait for the group to say who owns it.
          this.options.logger.warn(
            { topic: this.options.topic, partition: this.options.partition, offset: last.raw.offset },
            'fenced: another instance took this partition over; its uncommitted work is dropped until the group assigns it here again',
          );
          await this.suspend(committer);
        } else {
          this.options.logger.warn(
            { err: error, topic: this.options.topic, partition: this.options.partition, offset: last.raw.offset },
            `commit failed (${errorMessage(error)}); resetting the partition to its committed offset`,
          );
          await this.reset(committer);
        }
      }
      return;
    }
    this.consecutiveFailures = 0;
    // Committed in Kafka: persist locally even when the partition is closing meanwhile.
    if (stores) await stores.commitLocal(changelogEnds(produced, changelog));
    if (generation === this.generation) {
      this.release(batch.length);
      this.options.onCommitted(batch, (performance.now() - started) / 1000);
    }
  }

  /** Fenced by a new owner: drops everything uncommitted and the producer, takes no records. */
  private async suspend(fenced: PartitionCommitter): Promise<void> {
    this.state = 'suspended';
    this.options.onStateChange();
    this.discardUncommitted();
    await fenced.close();
    this.committer = undefined;
    this.suspendTimer = setTimeout(() => void this.resume(), this.options.suspendTimeoutMs ?? 30_000);
    this.suspendTimer.unref();
  }

  private suspendTimer: NodeJS.Timeout | undefined;

  get suspended(): boolean {
    return this.state === 'suspended';
  }

  /** The group assigned the partition here again after a fence (or nobody said otherwise for a while): take it back. */
  async resume(): Promise<void> {
    if (this.state !== 'suspended') return;
    if (this.suspendTimer) clearTimeout(this.suspendTimer);
    this.suspendTimer = undefined;
    this.state = 'resetting';
    this.options.onStateChange();
    try {
      await retryKafka(
        async () => {
          this.committer ??= await this.options.committers.open(this.options.topic, this.options.partition);
          await this.stores?.restore();
          await this.positionAtCommitted();
        },
        { stillWanted: () => !this.isClosed(), onRetry: (error, attempt) => this.logRetry('resuming', error, attempt) },
      );
    } catch (error) {
      if (!this.isClosed()) this.options.onFatal(error);
    }
  }

  /**
   * After a commit of unknown outcome: drop the producer (a new one fences the old and aborts
   * its transaction), drop everything uncommitted, bring the stores up to their changelogs (the
   * commit may have succeeded after all), and start again from the committed offset.
   */
  private async reset(failed: PartitionCommitter): Promise<void> {
    this.state = 'resetting';
    this.options.onStateChange();
    this.discardUncommitted();
    await failed.close();
    this.committer = undefined;
    try {
      await retryKafka(
        async () => {
          this.committer ??= await this.options.committers.open(this.options.topic, this.options.partition);
          await this.stores?.restore();
          await this.positionAtCommitted();
        },
        { stillWanted: () => !this.isClosed(), onRetry: (error, attempt) => this.logRetry('resetting', error, attempt) },
      );
    } catch (error) {
      if (!this.isClosed()) this.options.onFatal(error);
    }
  }

  private async positionAtCommitted(): Promise<void> {
    const committed = await this.options.committedOffset();
    if (this.isClosed()) return;
    // Nothing committed yet: start again at the first record this task took, not where the consumer is now.
    const target = committed !== '-1' ? BigInt(committed) : this.firstAdmitted;
    if (target !== undefined) this.options.seek(target.toString());
    this.nextOffset = target;
    this.startPipeline();
    this.state = 'running';
    this.options.onStateChange();
  }

  private discardUncommitted(options: { readonly keepInFlightCommit?: boolean } = {}): void {
    this.generation++;
    this.subscription?.unsubscribe();
    this.subscription = undefined;
    if (this.timer) clearTimeout(this.timer);
    this.timer = undefined;
    this.pending = [];
    this.nextOffset = undefined;
    if (options.keepInFlightCommit) this.stores?.discardUncommitted();
    else this.stores?.discard();
    this.release(this.admitted);
    this.options.onReset();
  }

  private release(count: number): void {
    if (count === 0) return;
    this.admitted -= count;
    this.options.onReleased(count);
    if (this.admitted === 0) for (const resolve of this.idleWaiters.splice(0)) resolve();
  }
}

/** The changelog offsets after a commit: each changelog partition's first offset plus its records. */
function changelogEnds(
  produced: readonly ProducedBatch[],
  changelog: readonly { topic: string; partition: number }[],
): Map<string, bigint> {
  const counts = new Map<string, number>();
  for (const record of changelog)
    counts.set(`${record.topic}:${record.partition}`, (counts.get(`${record.topic}:${record.partition}`) ?? 0) + 1);
  const ends = new Map<string, bigint>();
  for (const batch of produced) {
    const count = counts.get(`${batch.topic}:${batch.partition}`);
    if (count !== undefined && batch.baseOffset >= 0n) ends.set(batch.topic, batch.baseOffset + BigInt(count));
  }
  return ends;
}

/** A commit refused because a newer producer with the same transactional id exists (a new owner fenced this one). */
function isFenced(error: unknown): boolean {
  const seen = new Set<unknown>();
  for (let current: unknown = error; typeof current === 'object' && current !== null && !seen.has(current);) {
    seen.add(current);
    if ('type' in current && (current.type === 'INVALID_PRODUCER_EPOCH' || current.type === 'PRODUCER_FENCED')) return true;
    const next = ('originalError' in current && current.originalError) || ('cause' in current && current.cause);
    current = next || undefined;
  }
  return false;
}
