import type { Logger } from 'pino';
import { isObservable } from 'rxjs';
import { errorMessage } from '../../common/errors.js';
import { backoffDelay, sleep } from '../../common/retry.js';
import { isRetriableKafkaError, retryKafka } from '../../kafka/index.js';
import type { KeyValueStore, TaskLock, TaskStores } from '../../state/index.js';
import { isFenced, type CommitterFactory, type InputOffset, type PartitionCommitter, type ProducedBatch } from './committer.js';
import { DLQ_HEADERS, deadLetter } from './dead-letter.js';
import { collectOutputs, type TaskContext } from './definition.js';
import { traceCommit, traceRecord, type Tracer } from './tracing.js';
import { isRetriable, reasonOf, StageFailedError } from './errors.js';
import type { StepSpec, SubTopologySpec } from './pipeline.js';
import { SEQUENCE_HEADER, sequenceOf, type OutputRecord, type RawRecord, type StreamRecord } from './record.js';

/**
 * A task: one partition number of one sub-topology, owned by this instance — its input
 * partitions (the source's and the repartition topics'), its transactional producer, its stores
 * and its state folder. Its life is one state machine:
 *
 *   created → restoring → running ⇄ restoring (a commit failed: reopen, restore, seek back)
 *                         running → suspended (fenced by a new owner) → restoring (ours again)
 *   restoring | running | suspended → failed (the stage stops; nothing more is committed)
 *   any → closing → closed
 *
 * Ordering rules, enforced here and tested:
 * - Open: lock the state folder → open the producer (fences a zombie, aborts its transaction) →
 *   restore the stores from their changelogs → read the committed offsets and seek → running.
 * - Commit: freeze the stores' writes (their changelog records; later writes go to the next
 *   commit) → one transaction (outputs, dead letters, changelogs, input offsets) → RocksDB write
 *   (unsynced) → checkpoint (its file every 10,000 changelog records and on close, each time after
 *   a sync of RocksDB's log, then fsync'd: see TaskStores). Records keep being processed into the next commit while one is in flight; only
 *   one is in flight at a time. A failed transaction's frozen writes stay readable until the
 *   record being processed has finished (the reset, suspend, fail or close that follows drops them).
 * - Reset, suspend, fail and close first leave `running` (synchronously: no commit starts after
 *   that), then wait for the record being processed to finish, so nothing a dropped generation
 *   computed can reach the stores of the next.
 * - A record's transient failure is retried in place: stages load what they need before they
 *   change state, so a failed attempt wrote nothing (see withRetries).
 * - A failed task drops its uncommitted work at once; a drain never commits it.
 * - Close waits for whatever is opening, reopening, suspending or committing, persists what a
 *   commit in flight committed, and only then releases the producer, the stores and the lock.
 */
export type TaskState = 'created' | 'restoring' | 'running' | 'suspended' | 'failed' | 'closing' | 'closed';

const TRANSITIONS: Readonly<Record<TaskState, readonly TaskState[]>> = {
  created: ['restoring', 'closing'],
  restoring: ['running', 'failed', 'closing'],
  running: ['restoring', 'suspended', 'failed', 'closing'],
  suspended: ['restoring', 'failed', 'closing'],
  failed: ['closing'],
  closing: ['closed'],
  closed: [],
};

export class IllegalTransitionError extends Error {
  override readonly name = 'IllegalTransitionError';
}

/** Whether a state change is allowed (the table above). */
export function canTransition(from: TaskState, to: TaskState): boolean {
  return TRANSITIONS[from].includes(to);
}

/** A commit that fails this many times in a row (after resets) stops the stage; a fence (a new owner) is no such failure. */
const MAX_CONSECUTIVE_COMMIT_FAILURES = 5;
/** Fences that the group never follows with an assignment of the task here (see commit): this many stop the stage. */
const MAX_UNCONFIRMED_FENCES = 5;
/** The runtime's own store in every stateful task: arrival sequences of fused topics. */
export const RUNTIME_STORE = '__runtime';

export interface TaskOptions {
  readonly id: string;
  readonly subtopology: SubTopologySpec;
  readonly partition: number;
  /** Fused topic → its repartition topic; inputs are the source and these repartition topics. */
  readonly repartition: ReadonlyMap<string, string>;
  readonly committers: CommitterFactory;
  /** Takes the task's state folder (stateful tasks). */
  readonly lock?: () => Promise<TaskLock>;
  /** Opens and restores the task's stores (stateful tasks; includes RUNTIME_STORE). */
  readonly openStores?: () => Promise<TaskStores>;
  /** The group's committed offset of an input partition ('-1' when none), read after fencing. */
  readonly committedOffset: (topic: string) => Promise<string>;
  /** The end offset of a topic's partition p (for the first sequence of a fused topic). */
  readonly endOffset: (topic: string) => Promise<bigint>;
  /** Moves the consumer's fetch position (kafkajs seek). */
  readonly seek: (topic: string, offset: string) => void;
  /** The partition a key belongs to in a topic (the producers' murmur2). */
  readonly partitionOf: (topic: string, key: string | Buffer | null) => number;
  readonly dlqTopic: string;
  readonly commitMaxRecords: number;
  readonly commitIntervalMs: number;
  readonly maxAttempts: number;
  readonly retryInitialDelayMs: number;
  readonly retryMaxDelayMs: number;
  /** How long a fenced task waits for the group's next assignment before it takes the partition back. */
  readonly suspendTimeoutMs: number;
  /**
   * Whether the input offsets stored with the state (written in the commit's transaction) may
   * raise the group's committed offsets. Only under exactly_once: without a transaction the
   * changelog can land while the outputs of the same commit did not.
   */
  readonly trustStoredOffsets: boolean;
  readonly logger: Logger;
  /** Watermark of an input in this task (max event time − allowed lateness). */
  readonly observeEventTime: (input: string, eventTime: number) => void;
  readonly watermark: (input: string) => number;
  readonly hooks: TaskHooks;
  /** Traces each record's processing (a span per stage, W3C context in output headers) and each commit; none: no tracing work. */
  readonly tracer?: Tracer;
}

export interface TaskHooks {
  /** In-flight accounting: records admitted, and records released (committed or dropped). */
  onAdmitted(count: number): void;
  onReleased(count: number): void;
  onCommitted(summary: CommitSummary): void;
  onCommitFailed(error: unknown): void;
  /** A record failed for good while it was processed (its dead letter is counted with its transaction, in CommitSummary). */
  onRecordFailed(stage: string, topic: string, reason: string, deadLettered: boolean): void;
  onRetry(stage: string, reason: string): void;
  onFatal(error: unknown): void;
  onStateChange(): void;
  /** The task's uncommitted work was dropped: per-partition memory derived from it must go too. */
  onReset(): void;
}

export interface CommitSummary {
  readonly records: number;
  readonly outputsByTopic: ReadonlyMap<string, number>;
  /** The transaction's time (RocksDB and the checkpoint follow it). */
  readonly seconds: number;
  /** Input records of the commit per input topic. */
  readonly inputsByTopic: ReadonlyMap<string, number>;
  /** The dead letters the commit wrote, by the stage, input topic and reason in their headers. */
  readonly deadLetters: readonly DeadLetterCount[];
}

export interface DeadLetterCount {
  readonly stage: string;
  readonly topic: string;
  readonly reason: string;
  readonly count: number;
}

/** The records of a commit being built: outputs in order, the input positions they cover. */
interface OpenCommit {
  outputs: OutputRecord[];
  records: number;
  readonly offsets: Map<string, bigint>;
  readonly inputs: Map<string, number>;
  startedAt: number;
}

/** A record on its way through the steps, with the scratch shared by the steps that read it. */
interface Item {
  readonly raw: RawRecord;
  /** Made when a step first touches it (most records never do). */
  scratch?: Map<string, unknown>;
}

/** A record as a step sees it; its scratch is the item's, shared by every step that reads the item. */
class ItemRecord implements StreamRecord<unknown> {
  readonly #item: Item;

  constructor(
    readonly topic: string,
    readonly partition: number,
    readonly offset: string,
    readonly key: string | null,
    readonly value: unknown,
    readonly headers: Readonly<Record<string, string>>,
    readonly timestamp: number,
    readonly eventTime: number,
    readonly sequence: number,
    readonly raw: RawRecord,
    item: Item,
  ) {
    this.#item = item;
  }

  get scratch(): Map<string, unknown> {
    return (this.#item.scratch ??= new Map());
  }
}

/** Nothing to commit: no records, and no input position moved past records never handed over. */
function isEmpty(commit: OpenCommit): boolean {
  return commit.records === 0 && commit.offsets.size === 0;
}

function openCommit(): OpenCommit {
  return { outputs: [], records: 0, offsets: new Map(), inputs: new Map(), startedAt: performance.now() };
}

export class Task {
  private state: TaskState = 'created';
  private lock: TaskLock | undefined;
  private committer: PartitionCommitter | undefined;
  private stores: TaskStores | undefined;
  /** Bumped whenever uncommitted work is dropped: results of an older generation are ignored. */
  private generation = 0;
  /**
   * Admitted chunks in order, and where the consumer moved past records it never hands over
   * (transaction markers, aborted records): `continueAt`, the offset the commit after the chunk
   * records (an empty chunk only moves the position).
   */
  private readonly queue: { readonly topic: string; readonly records: readonly RawRecord[]; continueAt?: bigint }[] = [];
  private pumping: Promise<void> | undefined;
  /** A chunk is between its first step and its last: its state writes are not yet matched by outputs and offsets. */
  private inChunk = false;
  private current = openCommit();
  private committing: Promise<void> | undefined;
  private commitTimer: NodeJS.Timeout | undefined;
  private suspendTimer: NodeJS.Timeout | undefined;
  private consecutiveFailures = 0;
  /** Fences since the group last assigned this task here (or since its last commit). */
  private unconfirmedFences = 0;
  /** Records admitted and not yet committed or dropped. */
  private admitted = 0;
  private idleWaiters: (() => void)[] = [];
  /** Per input topic: the offset after the last admitted record (refetches below it are skipped). */
  private readonly nextOffsets = new Map<string, bigint>();
  /** Per input topic: the first offset this task ever admitted (where to return when nothing is committed). */
  private readonly firstAdmitted = new Map<string, bigint>();
  /** Per fused topic: the next arrival sequence to stamp. */
  private readonly sequences = new Map<string, bigint>();
  private opening: Promise<void> | undefined;
  /** A reset, retry or resume in progress (reopening the producer, restoring, seeking). */
  private transitioning: Promise<void> | undefined;
  /** A suspension dropping its work and its fenced producer. */
  private suspending: Promise<void> | undefined;
  /** Dropping the work of a failed task. */
  private failing: Promise<void> | undefined;
  private readonly fused: ReadonlySet<string>;
  private readonly inputTopics: readonly string[];

  constructor(private readonly options: TaskOptions) {
    this.fused = new Set(options.repartition.keys());
    this.inputTopics = [options.subtopology.source, ...options.repartition.values()];
  }

  get id(): string {
    return this.options.id;
  }

  get status(): TaskState {
    return this.state;
  }

  get accepting(): boolean {
    return this.state === 'running';
  }

  get suspended(): boolean {
    return this.state === 'suspended';
  }

  get inFlight(): number {
    return this.admitted;
  }

  get inputs(): readonly string[] {
    return this.inputTopics;
  }

  /** The task's stores, once restored (interactive queries read them). */
  get taskStores(): TaskStores | undefined {
    return this.state === 'running' ? this.stores : undefined;
  }

  private transition(to: TaskState): void {
    if (!canTransition(this.state, to))
      throw new IllegalTransitionError(`task ${this.options.id}: ${this.state} → ${to} is not a transition`);
    this.state = to;
    this.options.hooks.onStateChange();
  }

  /** A method, not a field comparison: the state may change while an await is pending. */
  private isRunning(): boolean {
    return this.state === 'running';
  }

  private isClosing(): boolean {
    return this.state === 'closing' || this.state === 'closed';
  }

  // ---- opening ---------------------------------------------------------------------------------

  /** Locks, fences, restores, then positions every input at its committed offset. */
  start(): Promise<void> {
    this.opening = this.open('opening');
    return this.opening;
  }

  private async open(what: string): Promise<void> {
    // Closed before its (deferred) start: nothing to open.
    if (this.isClosing()) return;
    this.transition('restoring');
    this.options.hooks.onReset();
    try {
      // Retriable errors (a fresh partition not hosted yet, a leader move, a state folder still
      // held by its previous owner) are retried with backoff.
      await retryKafka(
        async () => {
          if (this.options.lock) this.lock ??= await this.options.lock();
          if (this.isClosing()) return;
          this.committer ??= await this.options.committers.open(this.options.id);
          if (this.isClosing()) return;
          if (this.options.openStores && !this.stores) this.stores = await this.options.openStores();
          else await this.stores?.restore();
          if (this.isClosing()) return;
          await this.loadSequences();
          await this.positionAtCommitted();
        },
        { timeoutMs: 600_000, stillWanted: () => !this.isClosing(), onRetry: (error, attempt) => this.logRetry(what, error, attempt) },
      );
      if (this.isClosing()) return;
      this.transition('running');
      this.pump();
    } catch (error) {
      this.fail(error);
    }
  }

  private logRetry(what: string, error: unknown, attempt: number): void {
    this.options.logger.info(
      { task: this.options.id, attempt, error: errorMessage(error) },
      `retriable error while ${what} the task; retrying`,
    );
  }

  /** Fused topics get arrival sequences that continue the stored ones (or start above the topic's end). */
  private async loadSequences(): Promise<void> {
    this.sequences.clear();
    const store = this.stores?.has(RUNTIME_STORE) ? this.stores.store<KeyValueStore<number>>(RUNTIME_STORE) : undefined;
    for (const topic of this.fused) {
      const stored = await store?.get(`seq:${topic}`);
      this.sequences.set(topic, stored !== undefined ? BigInt(stored) : await this.options.endOffset(topic));
    }
  }

  private async positionAtCommitted(): Promise<void> {
    const store = this.stores?.has(RUNTIME_STORE) ? this.stores.store<KeyValueStore<number>>(RUNTIME_STORE) : undefined;
    for (const topic of this.inputTopics) {
      const fetched = await this.options.committedOffset(topic);
      if (this.isClosing()) return;
      // The offsets the last commit wrote with the state it restored: the group's answer may lag
      // behind a transaction that just completed, never ahead of it.
      const stored = await store?.get(`offset:${topic}`);
      const trusted = this.options.trustStoredOffsets ? stored : undefined;
      const committed = trusted !== undefined && (fetched === '-1' || BigInt(trusted) > BigInt(fetched)) ? String(trusted) : fetched;
      // Nothing committed yet: start again at the first record this task took, not where the consumer is now.
      const target = committed !== '-1' ? BigInt(committed) : this.firstAdmitted.get(topic);
      if (target !== undefined) {
        this.options.seek(topic, target.toString());
        this.nextOffsets.set(topic, target);
      } else {
        this.nextOffsets.delete(topic);
      }
      this.options.logger.info(
        { task: this.options.id, topic, fetched, stored, position: target?.toString() ?? 'consumer default' },
        'input positioned',
      );
    }
  }

  // ---- input -----------------------------------------------------------------------------------

  /** True when the record is a refetch of one already admitted (after a rebalance or seek). */
  isDuplicate(topic: string, offset: string): boolean {
    const next = this.nextOffsets.get(topic);
    return next !== undefined && BigInt(offset) < next;
  }

  /** Where the consumer should continue on an input (after a rebalance that kept this task, or a reset's seek). */
  resumeOffset(topic: string): string | undefined {
    return this.nextOffsets.get(topic)?.toString();
  }

  /**
   * The consumer read from where this task continues on an input and found only records no fetch
   * delivers (aborted transactions, transaction markers) up to `next`: the task continues there.
   * Only while running and still at `from`; true when it moved.
   */
  skipUnfetched(topic: string, from: string, next: string): boolean {
    const current = this.nextOffsets.get(topic);
    if (this.state !== 'running' || current === undefined || current.toString() !== from || BigInt(next) <= current) return false;
    const position = BigInt(next);
    this.nextOffsets.set(topic, position);
    // The commit after the records before the skipped ones carries the new position, as Kafka
    // Streams commits the consumer's position: a group at the end of a transactional input shows
    // no lag for its last marker. In queue order, so that no commit carries it before those records.
    const last = this.queue.at(-1);
    if (last?.topic === topic) last.continueAt = position;
    else this.queue.push({ topic, records: [], continueAt: position });
    this.pump();
    return true;
  }

  /** Takes records of one input partition in offset order (the caller has skipped duplicates). */
  admit(topic: string, records: readonly RawRecord[]): void {
    const first = records[0];
    const last = records.at(-1);
    if (!first || !last || this.state !== 'running') return;
    this.nextOffsets.set(topic, BigInt(last.offset) + 1n);
    if (!this.firstAdmitted.has(topic)) this.firstAdmitted.set(topic, BigInt(first.offset));
    this.admitted += records.length;
    this.options.hooks.onAdmitted(records.length);
    // In chunks of at most a commit's records: commits start between chunks, and timers and
    // fetches run between them.
    const size = Math.max(1, this.options.commitMaxRecords);
    if (records.length <= size) this.queue.push({ topic, records });
    else for (let start = 0; start < records.length; start += size) this.queue.push({ topic, records: records.slice(start, start + size) });
    this.pump();
  }

  // ---- processing ------------------------------------------------------------------------------

  /** Starts the processing loop unless it runs: chunks in admission order, one at a time. */
  private pump(): void {
    if (this.pumping || this.state !== 'running' || this.queue.length === 0) return;
    this.pumping = this.drainQueue()
      .catch((error: unknown) => {
        // Not awaited: failing waits for this very loop to finish.
        this.fail(error);
      })
      .finally(() => {
        this.pumping = undefined;
        // Admitted while finishing, or resumed: go on.
        this.pump();
      });
  }

  private async drainQueue(): Promise<void> {
    while (this.state === 'running') {
      const chunk = this.queue.shift();
      if (!chunk) return;
      const generation = this.generation;
      this.inChunk = true;
      let outputs: OutputRecord[];
      try {
        outputs = chunk.records.length === 0 ? [] : await this.processChunk(chunk.topic, chunk.records);
      } finally {
        this.inChunk = false;
      }
      if (generation !== this.generation || !this.isRunning()) return;
      const last = chunk.records.at(-1);
      this.current.outputs.push(...outputs);
      this.current.records += chunk.records.length;
      if (last) this.current.inputs.set(chunk.topic, (this.current.inputs.get(chunk.topic) ?? 0) + chunk.records.length);
      const next = chunk.continueAt ?? (last ? BigInt(last.offset) + 1n : undefined);
      if (next !== undefined) this.current.offsets.set(chunk.topic, next);
      this.commitIfDue();
      // Let fetches, commits and timers run between chunks.
      await new Promise<void>((resolve) => setImmediate(resolve));
    }
  }

  /** One chunk of one input partition through the steps; returns every output in order. */
  private async processChunk(topic: string, records: readonly RawRecord[]): Promise<OutputRecord[]> {
    const { subtopology, partition } = this.options;
    const outputs: OutputRecord[] = [];
    /** Records flowing on each topic of this chunk, in order: the chunk's own, then what steps write to fused topics. */
    const streams = new Map<string, Item[]>();
    const fusedTopic = [...this.options.repartition].find(([, repartition]) => repartition === topic)?.[0];
    if (fusedTopic) {
      // Records another task routed here: this task writes them to the fused topic and runs the later steps.
      const items: Item[] = [];
      for (const raw of records) {
        const stamped = this.stamp({ topic: fusedTopic, key: raw.key, value: raw.value, headers: withoutSequence(raw.headers) });
        outputs.push(stamped.output);
        items.push({ raw: stamped.raw });
      }
      streams.set(fusedTopic, items);
    } else {
      streams.set(
        topic,
        records.map((raw) => ({ raw })),
      );
    }
    for (const step of subtopology.steps) {
      const items = streams.get(step.input);
      if (!items || items.length === 0) continue;
      const results = await this.runStep(step, items);
      for (const produced of results) {
        for (const output of produced) {
          if (!this.fused.has(output.topic)) {
            outputs.push(output);
            continue;
          }
          const target = this.options.partitionOf(output.topic, output.key);
          if (target !== partition) {
            // Another task owns this key: it writes the record to the fused topic when it reads it from here.
            outputs.push({ ...output, topic: this.options.repartition.get(output.topic) ?? output.topic, partition: target });
            continue;
          }
          const stamped = this.stamp(output);
          outputs.push(stamped.output);
          let stream = streams.get(output.topic);
          if (!stream) {
            stream = [];
            streams.set(output.topic, stream);
          }
          stream.push({ raw: stamped.raw });
        }
      }
    }
    return outputs;
  }

  /** A record for this task's partition of a fused topic, with its arrival sequence, and how later steps read it. */
  private stamp(output: Pick<OutputRecord, 'topic' | 'key' | 'value' | 'headers'>): { output: OutputRecord; raw: RawRecord } {
    const sequence = this.sequences.get(output.topic) ?? 0n;
    this.sequences.set(output.topic, sequence + 1n);
    const headers: Record<string, string> = {};
    for (const [name, value] of Object.entries(output.headers ?? {}))
      headers[name] = typeof value === 'string' ? value : value.toString('utf8');
    headers[SEQUENCE_HEADER] = sequence.toString();
    const key = output.key === null ? null : Buffer.isBuffer(output.key) ? output.key : Buffer.from(output.key);
    return {
      output: { topic: output.topic, partition: this.options.partition, key, value: output.value, headers },
      raw: {
        topic: output.topic,
        partition: this.options.partition,
        offset: '-1',
        key,
        value: output.value,
        headers,
        timestamp: Date.now(),
      },
    };
  }

  private async runStep(step: StepSpec, items: readonly Item[]): Promise<(readonly OutputRecord[])[]> {
    const { stage } = step;
    const context = this.contextFor(step);
    // Decoders that answer with values (not promises) cost no promise per record.
    const maybe = items.map((item) => this.decode(step, item));
    const decoded = maybe.some(isPromiseLike) ? await Promise.all(maybe.map(async (entry) => entry)) : (maybe as Decoded[]);
    if (stage.prefetch && this.stores) {
      const wanted = new Map<string, { readonly key: string; readonly window?: number }[]>();
      for (const record of decoded) {
        if (!('record' in record)) continue;
        for (const entry of stage.prefetch(record.record)) {
          const list = wanted.get(entry.store);
          if (list) list.push(entry);
          else wanted.set(entry.store, [entry]);
        }
      }
      for (const [store, entries] of wanted) await this.stores.prefetch(`${stage.name}.${store}`, entries);
    }
    const run = (entry: Decoded): Outputs | Promise<Outputs> =>
      'record' in entry ? this.processRecord(step, entry.record, context) : entry.outputs;
    if (stage.ordering === 'parallel') return Promise.all(decoded.map(async (entry) => run(entry)));
    const results: Outputs[] = [];
    for (const entry of decoded) {
      const outputs = run(entry);
      results.push(isPromiseLike(outputs) ? await outputs : outputs);
    }
    return results;
  }

  private contextFor(step: StepSpec): TaskContext {
    const { stage, input } = step;
    const stores = new Map<string, { readonly of: TaskStores; readonly store: unknown }>();
    return {
      stage: stage.name,
      task: this.options.id,
      topic: input,
      partition: this.options.partition,
      watermark: () => this.options.watermark(input),
      // eslint-disable-next-line @typescript-eslint/no-unnecessary-type-parameters -- see TaskContext.store
      store: <S>(name: string): S => {
        if (!this.stores) throw new StageFailedError(`store ${name} of task ${this.options.id} is not open`);
        // Looked up once per chunk (stages ask for a store per record).
        let found = stores.get(name);
        if (found === undefined || found.of !== this.stores) {
          found = { of: this.stores, store: this.stores.store(`${stage.name}.${name}`) };
          stores.set(name, found);
        }
        return found.store as S;
      },
      logger: this.options.logger,
    };
  }

  /**
   * Decodes a record (retrying transient failures); an undecodable one becomes its dead letter.
   * The first attempt runs outside the retry loop, whose closures and promises cost every record
   * otherwise; a failure continues there as its attempt 1. A decoder that answers with a value
   * gets its answer without a promise.
   */
  private decode(step: StepSpec, item: Item): Decoded | Promise<Decoded> {
    try {
      const value: unknown = step.stage.decode(item.raw);
      if (!isPromiseLike(value)) return this.decoded(step, item, value);
      // decoded (the stage's eventTime) may throw too: caught like a failed decode.
      return Promise.resolve(value)
        .then((resolved) => this.decoded(step, item, resolved))
        .catch((error: unknown) => this.retryDecode(step, item, error));
    } catch (error) {
      return this.retryDecode(step, item, error);
    }
  }

  private retryDecode(step: StepSpec, item: Item, error: unknown): Promise<Decoded> {
    return this.withRetries(step, item.raw, async () => this.decoded(step, item, await step.stage.decode(item.raw)), { error });
  }

  private decoded(step: StepSpec, item: Item, value: unknown): Decoded {
    const { raw } = item;
    const eventTime = step.stage.eventTime ? step.stage.eventTime(value, raw) : raw.timestamp;
    this.options.observeEventTime(step.input, eventTime);
    const record = new ItemRecord(
      raw.topic,
      raw.partition,
      raw.offset,
      raw.key?.toString('utf8') ?? null,
      value,
      raw.headers,
      raw.timestamp,
      eventTime,
      sequenceOf(raw),
      raw,
      item,
    );
    return { record };
  }

  private processRecord(step: StepSpec, record: StreamRecord<unknown>, context: TaskContext): Outputs | Promise<Outputs> {
    return this.options.tracer
      ? traceRecord(this.options.tracer, step.stage.name, record, async () => this.process(step, record, context))
      : this.process(step, record, context);
  }

  /**
   * The stage's function over one record; as in decode, the first attempt runs outside the retry
   * loop, and a function that answers with an array gets its answer without a promise.
   */
  private process(step: StepSpec, record: StreamRecord<unknown>, context: TaskContext): Outputs | Promise<Outputs> {
    try {
      const result = step.stage.process(record, context);
      if (isObservable(result)) return collectOutputs(result).catch((error: unknown) => this.retryProcess(step, record, context, error));
      if (isPromiseLike(result)) return Promise.resolve(result).catch((error: unknown) => this.retryProcess(step, record, context, error));
      return result;
    } catch (error) {
      return this.retryProcess(step, record, context, error);
    }
  }

  private async retryProcess(step: StepSpec, record: StreamRecord<unknown>, context: TaskContext, error: unknown): Promise<Outputs> {
    const retried = await this.withRetries(step, record.raw, async () => collectOutputs(step.stage.process(record, context)), { error });
    return Array.isArray(retried) ? retried : (retried as { outputs: Outputs }).outputs;
  }

  /**
   * Runs one record's work: transient failures are retried in place with backoff (the task waits),
   * others make the record a dead letter, counted with its reason. Giving up on a transient failure
   * stops the stage. A retry runs the record again over whatever its failed attempt wrote, so a
   * stage loads what it needs (writer schemas, say) before it changes state. `failed`: the first
   * attempt already ran and failed with this error.
   */
  private async withRetries<T>(
    step: StepSpec,
    raw: RawRecord,
    work: () => Promise<T>,
    failed?: { readonly error: unknown },
  ): Promise<T | { outputs: readonly OutputRecord[] }> {
    const { stage } = step;
    for (let attempt = 1; ; attempt++) {
      let error: unknown;
      if (attempt === 1 && failed) {
        error = failed.error;
      } else {
        try {
          return await work();
        } catch (caught) {
          error = caught;
        }
      }
      const reason = reasonOf(error);
      if (isRetriable(error) || isRetriableKafkaError(error)) {
        if (attempt >= this.options.maxAttempts) {
          throw new StageFailedError(
            `stage ${stage.name} gave up on ${raw.topic}/${raw.partition}@${raw.offset} after ${attempt} attempts: ${errorMessage(error)}`,
            { cause: error },
          );
        }
        this.options.hooks.onRetry(stage.name, reason);
        const delay = backoffDelay(attempt, this.options.retryInitialDelayMs, this.options.retryMaxDelayMs);
        this.options.logger.warn(
          { err: error, stage: stage.name, offset: raw.offset, attempt, delayMs: delay },
          'transient failure; retrying',
        );
        await sleep(delay);
        continue;
      }
      this.options.hooks.onRecordFailed(stage.name, raw.topic, reason, true);
      this.options.logger.warn(
        { stage: stage.name, topic: raw.topic, partition: raw.partition, offset: raw.offset, reason, error: errorMessage(error) },
        'record dead-lettered',
      );
      return { outputs: [deadLetter(this.options.dlqTopic, stage.name, raw, error, attempt)] };
    }
  }

  // ---- committing ------------------------------------------------------------------------------

  private commitIfDue(): void {
    if (isEmpty(this.current)) return;
    const due =
      this.current.records >= this.options.commitMaxRecords || performance.now() - this.current.startedAt >= this.options.commitIntervalMs;
    if (due) this.startCommit();
    else
      this.commitTimer ??= setTimeout(
        () => {
          this.commitTimer = undefined;
          this.startCommit();
        },
        Math.max(0, this.options.commitIntervalMs - (performance.now() - this.current.startedAt)),
      );
  }

  /**
   * Starts a commit of what is processed so far, unless one is in flight (then it follows when
   * that one ends). Step 1 of the order happens here, synchronously: the stores are frozen.
   */
  private startCommit(): void {
    if (this.commitTimer) clearTimeout(this.commitTimer);
    this.commitTimer = undefined;
    // A commit holds whole chunks only: freezing mid-chunk would commit state without its offsets.
    if (this.inChunk || this.committing || this.state !== 'running' || isEmpty(this.current) || !this.committer) return;
    const batch = this.current;
    this.current = openCommit();
    const generation = this.generation;
    this.saveRuntimeState(batch.offsets);
    const changelog = this.stores?.freeze() ?? [];
    const sideEffects = this.options.subtopology.steps.flatMap((step) => step.stage.beforeCommit?.(this.options.id) ?? []);
    const offsets: InputOffset[] = [...batch.offsets].map(([topic, next]) => ({
      topic,
      partition: this.options.partition,
      offset: next.toString(),
    }));
    const committer = this.committer;
    const stores = this.stores;
    this.committing = this.commit(committer, stores, batch, changelog, offsets, generation, sideEffects)
      .catch((error: unknown) => this.fail(error))
      .finally(() => {
        this.committing = undefined;
        if (this.state === 'running' && !isEmpty(this.current)) this.commitIfDue();
      });
  }

  /** The runtime's state of a commit, written with it: fused topics' sequences and the input offsets it covers. */
  private saveRuntimeState(offsets: ReadonlyMap<string, bigint>): void {
    if (!this.stores?.has(RUNTIME_STORE)) return;
    const store = this.stores.store<KeyValueStore<number>>(RUNTIME_STORE);
    for (const [topic, next] of this.sequences) store.put(`seq:${topic}`, Number(next));
    for (const [topic, next] of offsets) store.put(`offset:${topic}`, Number(next));
  }

  /** Steps 2–4 of the order: the transaction, then RocksDB, then the checkpoint. */
  private async commit(
    committer: PartitionCommitter,
    stores: TaskStores | undefined,
    batch: OpenCommit,
    changelog: readonly OutputRecord[],
    offsets: readonly InputOffset[],
    generation: number,
    sideEffects: readonly (() => Promise<void>)[],
  ): Promise<void> {
    const started = performance.now();
    let produced: readonly ProducedBatch[];
    try {
      const transaction = async (): Promise<readonly ProducedBatch[]> => {
        for (const effect of sideEffects) await effect();
        return committer.commit([...batch.outputs, ...changelog], offsets);
      };
      produced = this.options.tracer
        ? await traceCommit(this.options.tracer, this.options.id, batch.records, transaction)
        : await transaction();
    } catch (error) {
      // The frozen writes stay readable until the processing loop has stopped: every path below
      // drops them after it (reset and suspend discard them; a failed task keeps them, unread, until
      // close drops the stores). Dropping
      // them here would let the chunk being processed read a key's newer part from the object
      // cache and an older part from RocksDB, and dead-letter a record over state it made up.
      this.options.hooks.onCommitFailed(error);
      if (generation !== this.generation || !this.isRunning()) {
        // Someone else is already resetting, retrying, failing or closing the task: the producer
        // of this unknown outcome must not be reused (the reopen opens a new one, fencing it).
        if (this.committer === committer) this.committer = undefined;
        await committer.close();
        return;
      }
      if (isFenced(error)) {
        // A fence is no failure of this task's commits but (usually) a change of owner: it does not
        // count towards MAX_CONSECUTIVE_COMMIT_FAILURES. The same Task object is fenced again each
        // time the group hands its partition back and forth (a zombie thawed, members dropping out
        // under load); counting those fences stopped a healthy stage that had lost nothing. Fences
        // the group never follows with an assignment are counted apart: the broker also answers so
        // when it expired the transaction (transaction timeout), and two instances that both claim
        // the task fence each other; neither is a change of owner, and both would loop forever.
        this.unconfirmedFences++;
        if (this.unconfirmedFences >= MAX_UNCONFIRMED_FENCES) {
          this.fail(
            new StageFailedError(
              `task ${this.options.id} was fenced ${this.unconfirmedFences} times without the group assigning it here again: the broker may be expiring its transactions (transaction timeout), or another instance claims it; last: ${errorMessage(error)}`,
              { cause: error },
            ),
          );
          return;
        }
        // Reopening now would fence the new owner in turn: wait for the group to say who owns it.
        this.options.logger.warn(
          { err: error, task: this.options.id },
          'fenced (another instance took this task over, or the broker expired its transaction); its uncommitted work is dropped',
        );
        await this.suspend(committer);
        return;
      }
      this.consecutiveFailures++;
      if (this.consecutiveFailures >= MAX_CONSECUTIVE_COMMIT_FAILURES) {
        this.fail(
          new StageFailedError(
            `${this.consecutiveFailures} commits of task ${this.options.id} failed in a row; last: ${errorMessage(error)}`,
            { cause: error },
          ),
        );
        return;
      }
      this.options.logger.warn(
        { err: error, task: this.options.id },
        `commit failed (${errorMessage(error)}); resetting the task to its committed offsets`,
      );
      await this.reset(committer);
      return;
    }
    // Committed in Kafka: counted now, even when the task is closing or failing meanwhile (its
    // outputs and dead letters are in the log whatever happens to the task next).
    const outputsByTopic = new Map<string, number>();
    for (const output of batch.outputs) outputsByTopic.set(output.topic, (outputsByTopic.get(output.topic) ?? 0) + 1);
    this.options.hooks.onCommitted({
      records: batch.records,
      outputsByTopic,
      inputsByTopic: batch.inputs,
      seconds: (performance.now() - started) / 1000,
      deadLetters: outputsByTopic.has(this.options.dlqTopic) ? countDeadLetters(batch.outputs, this.options.dlqTopic) : [],
    });
    this.consecutiveFailures = 0;
    this.unconfirmedFences = 0;
    // Persist locally even when the task is closing meanwhile.
    try {
      if (stores) await stores.commitLocal(changelogEnds(produced, changelog));
    } catch (error) {
      // The transaction holds the state (its changelog): the next owner restores it from there.
      this.fail(
        new StageFailedError(`task ${this.options.id} committed but could not write its local state: ${errorMessage(error)}`, {
          cause: error,
        }),
      );
      return;
    }
    if (generation !== this.generation) return;
    this.release(batch.records);
  }

  /** Everything not committed is dropped and the processing loop has stopped: safe to touch the stores. */
  private async dropUncommitted(options: { readonly keepInFlightCommit: boolean }): Promise<void> {
    this.generation++;
    if (this.commitTimer) clearTimeout(this.commitTimer);
    this.commitTimer = undefined;
    this.queue.length = 0;
    this.current = openCommit();
    this.nextOffsets.clear();
    await this.pumping;
    if (options.keepInFlightCommit) this.stores?.discardUncommitted();
    else this.stores?.discard();
    this.release(this.admitted);
    this.options.hooks.onReset();
  }

  /** After a commit of unknown outcome: a new producer (fencing the old one), the stores brought up to their changelogs, back to the committed offsets. */
  private async reset(failed: PartitionCommitter): Promise<void> {
    this.transition('restoring');
    if (this.committer === failed) this.committer = undefined;
    await this.whileTransitioning(async () => {
      await this.dropUncommitted({ keepInFlightCommit: false });
      await failed.close();
      await this.reopen('resetting');
    });
  }

  /** Runs a reopening path so that close() can wait for it. */
  private async whileTransitioning(work: () => Promise<void>): Promise<void> {
    const done = work();
    this.transitioning = done;
    try {
      await done;
    } finally {
      if (this.transitioning === done) this.transitioning = undefined;
    }
  }

  private async reopen(what: string): Promise<void> {
    try {
      await retryKafka(
        async () => {
          this.committer ??= await this.options.committers.open(this.options.id);
          if (this.isClosing()) return;
          await this.stores?.restore();
          await this.loadSequences();
          await this.positionAtCommitted();
        },
        { timeoutMs: 600_000, stillWanted: () => !this.isClosing(), onRetry: (error, attempt) => this.logRetry(what, error, attempt) },
      );
      if (this.isClosing() || this.state === 'failed') return;
      this.transition('running');
      this.pump();
    } catch (error) {
      this.fail(error);
    }
  }

  /** Fenced by a new owner: drops everything uncommitted and the producer, takes no records. */
  private async suspend(fenced: PartitionCommitter): Promise<void> {
    this.transition('suspended');
    if (this.committer === fenced) this.committer = undefined;
    const suspending = (async () => {
      await this.dropUncommitted({ keepInFlightCommit: false });
      await fenced.close();
    })();
    this.suspending = suspending;
    await suspending;
    if (this.suspending === suspending) this.suspending = undefined;
    // Closed or failed meanwhile (a method: the state changed during the awaits).
    if (!this.suspended) return;
    this.suspendTimer = setTimeout(() => void this.resume('timer'), this.options.suspendTimeoutMs);
    this.suspendTimer.unref();
  }

  /**
   * The group assigned the task here again after a fence ('group'), or nobody said otherwise for
   * suspendTimeoutMs ('timer'): take it back. Only the group's word clears the count of fences.
   */
  async resume(by: 'group' | 'timer' = 'group'): Promise<void> {
    if (this.state !== 'suspended') return;
    if (by === 'group') this.unconfirmedFences = 0;
    // A suspension still dropping its work finishes first, so it cannot drop the resumed task's.
    await this.suspending;
    if (!this.suspended) return;
    if (this.suspendTimer) clearTimeout(this.suspendTimer);
    this.suspendTimer = undefined;
    this.transition('restoring');
    await this.whileTransitioning(() => this.reopen('resuming'));
  }

  /**
   * The task cannot go on: it leaves running at once (no drain or timer commits it after this),
   * drops its uncommitted work (a commit in flight keeps its own), and the stage is told.
   */
  private fail(error: unknown): void {
    if (this.isClosing() || this.state === 'failed') return;
    this.transition('failed');
    if (this.suspendTimer) clearTimeout(this.suspendTimer);
    this.suspendTimer = undefined;
    this.failing = this.dropUncommitted({ keepInFlightCommit: true });
    this.options.hooks.onFatal(error);
  }

  // ---- stopping --------------------------------------------------------------------------------

  /** Processes what is queued, commits it, and resolves once nothing is in flight (or on timeout). */
  async drain(timeoutMs: number): Promise<boolean> {
    const timeout = new Promise<void>((resolve) => setTimeout(resolve, timeoutMs).unref());
    if (this.admitted === 0) {
      // Nothing in flight, but perhaps a position past skipped records not yet committed: commit it
      // now (a stopped idle group shows no lag), within the same time limit.
      const committed = (async (): Promise<void> => {
        await this.pumping;
        await this.committing;
        this.startCommit();
        await this.committing;
      })();
      await Promise.race([committed.catch(() => undefined), timeout]);
      return true;
    }
    const idle = new Promise<void>((resolve) => this.idleWaiters.push(resolve));
    const deadline = Date.now() + timeoutMs;
    const commitSoon = async (): Promise<void> => {
      while (this.admitted > 0 && Date.now() < deadline && this.state === 'running') {
        await this.pumping;
        await this.committing;
        this.startCommit();
        await new Promise((resolve) => setTimeout(resolve, 5));
      }
    };
    await Promise.race([Promise.all([idle, commitSoon()]), timeout]);
    return this.admitted === 0;
  }

  /**
   * The task moved away (or the stage stops): drops what is not in a commit, waits for the record
   * being processed and for a commit in flight (persisting what it committed), then releases the
   * producer, the stores and the state folder.
   */
  async close(): Promise<void> {
    if (this.isClosing()) return;
    const wasOpen = this.state !== 'created';
    const failed = this.state === 'failed';
    this.transition('closing');
    if (this.suspendTimer) clearTimeout(this.suspendTimer);
    if (failed) await this.failing;
    else if (wasOpen) await this.dropUncommitted({ keepInFlightCommit: true });
    await this.opening?.catch(() => undefined);
    await this.suspending?.catch(() => undefined);
    await this.transitioning?.catch(() => undefined);
    await this.committing?.catch(() => undefined);
    await this.committer?.close();
    this.committer = undefined;
    await this.stores?.close();
    this.stores = undefined;
    await this.lock?.release();
    this.lock = undefined;
    this.transition('closed');
  }

  private release(count: number): void {
    if (count === 0) return;
    this.admitted -= count;
    this.options.hooks.onReleased(count);
    if (this.admitted === 0) for (const resolve of this.idleWaiters.splice(0)) resolve();
  }
}

type Decoded = { readonly record: StreamRecord<unknown> } | { readonly outputs: readonly OutputRecord[] };
type Outputs = readonly OutputRecord[];

/** A promise or another thenable (what `await` would wait for). */
function isPromiseLike(value: unknown): value is PromiseLike<unknown> {
  return typeof (value as { then?: unknown } | null | undefined)?.then === 'function';
}

/** The dead letters among a commit's outputs, counted by their stage, input topic and reason. */
function countDeadLetters(outputs: readonly OutputRecord[], dlqTopic: string): DeadLetterCount[] {
  const counts = new Map<string, DeadLetterCount>();
  for (const output of outputs) {
    if (output.topic !== dlqTopic) continue;
    const header = (name: string): string => {
      const value = output.headers?.[name];
      return value === undefined ? '' : typeof value === 'string' ? value : value.toString('utf8');
    };
    const stage = header(DLQ_HEADERS.stage);
    const topic = header(DLQ_HEADERS.topic);
    const reason = header(DLQ_HEADERS.errorCode);
    const id = `${stage}\u0000${topic}\u0000${reason}`;
    const known = counts.get(id);
    counts.set(id, { stage, topic, reason, count: (known?.count ?? 0) + 1 });
  }
  return [...counts.values()];
}

function withoutSequence(headers: Readonly<Record<string, string>>): Record<string, string> {
  const rest: Record<string, string> = { ...headers };
  Reflect.deleteProperty(rest, SEQUENCE_HEADER);
  return rest;
}

/**
 * The changelog offsets after a commit: per changelog topic (this task writes one partition of
 * each), the highest end of the produce requests that carried its records — a commit's records of
 * one partition may span several requests, each with its own base offset and count.
 */
export function changelogEnds(
  produced: readonly ProducedBatch[],
  changelog: readonly { topic: string; partition?: number }[],
): Map<string, bigint> {
  const topics = new Set<string>();
  let previous: { topic: string; partition?: number } | undefined;
  for (const record of changelog) {
    // A store's records come one after the other: one key string per run, not per record.
    if (previous?.topic === record.topic && previous.partition === record.partition) continue;
    previous = record;
    topics.add(`${record.topic}\u0000${record.partition ?? 0}`);
  }
  const ends = new Map<string, bigint>();
  for (const batch of produced) {
    if (!topics.has(`${batch.topic}\u0000${batch.partition}`) || batch.baseOffset < 0n || batch.records === undefined) continue;
    const end = batch.baseOffset + BigInt(batch.records);
    const known = ends.get(batch.topic);
    if (known === undefined || end > known) ends.set(batch.topic, end);
  }
  return ends;
}
