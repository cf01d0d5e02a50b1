import { randomUUID } from 'node:crypto';
import path from 'node:path';
import type { Admin, Consumer, EachBatchPayload, Kafka, PartitionMetadata } from 'kafkajs';
import kafkajs from 'kafkajs';
import type { Logger } from 'pino';
import { errorMessage } from '../../common/errors.js';
import { DEFAULT_MAX_IN_FLIGHT, DEFAULT_STATE_CACHE_MB } from '../../common/config.js';
import type { MetricsRegistry } from '../../common/metrics.js';
import { createKafka, ensureTopics, hasKafkaErrorType, retryKafka, type TopicSpec } from '../../kafka/index.js';
import {
  CacheBudget,
  changelogTopicName,
  int64Serde,
  KeyValueStore,
  TaskLock,
  TaskStores,
  WindowStore,
  type StoreSpec,
} from '../../state/index.js';
import { copartitionedAssigner } from './assignor.js';
import { AtLeastOnceCommitterFactory, TransactionalCommitterFactory, type CommitterFactory, type Guarantee } from './committer.js';
import { StageFailedError } from './errors.js';
import { stageMetrics, watchRocksDb, watchStateCache } from './metrics.js';
import { fusedTopics, repartitionTopicName, validatePipeline, type PipelineSpec, type SubTopologySpec } from './pipeline.js';
import { headersOf, type RawRecord } from './record.js';
import { RUNTIME_STORE, Task, type TaskHooks } from './task.js';
import { WatermarkTracker } from './watermarks.js';
import type { Tracer } from './tracing.js';

// kafkajs is CommonJS: its values come through the default export under Node's ESM loader.
const { Partitioners, AssignerProtocol } = kafkajs;

export interface StageOptions {
  readonly brokers: readonly string[];
  readonly groupId: string;
  readonly dlqTopic: string;
  readonly guarantee?: Guarantee;
  /**
   * Records admitted and not yet committed, at most (default DEFAULT_MAX_IN_FLIGHT, common/config); input
   * partitions pause at the bound. A fetched batch's records beyond the free capacity are held
   * (its partition paused; so at most one fetch per partition is held besides) and admitted as
   * commits free capacity, in turns over the partitions, not fetched again.
   */
  readonly maxInFlight?: number;
  readonly commitMaxRecords?: number;
  readonly commitIntervalMs?: number;
  readonly allowedLatenessMs?: number;
  /** Attempts for a transient failure before the stage gives up. */
  readonly maxAttempts?: number;
  readonly retryInitialDelayMs?: number;
  readonly retryMaxDelayMs?: number;
  readonly sessionTimeoutMs?: number;
  readonly heartbeatIntervalMs?: number;
  readonly rebalanceTimeoutMs?: number;
  readonly transactionTimeoutMs?: number;
  readonly transactionalIdPrefix?: string;
  /** Most bytes fetched per partition per request (default DEFAULT_MAX_BYTES_PER_PARTITION). */
  readonly maxBytesPerPartition?: number;
  /** A fetch returns once it has this many bytes (default DEFAULT_FETCH_MIN_BYTES)… */
  readonly fetchMinBytes?: number;
  /** …or has waited this long (default DEFAULT_FETCH_MAX_WAIT_MS). */
  readonly fetchMaxWaitMs?: number;
  /** Where a new group starts: the earliest offset (default) or only new records. */
  readonly fromBeginning?: boolean;
  /** Where tasks keep their state folders (required when a stage has stores). */
  readonly stateDir?: string;
  /**
   * The bound on the bytes (serialized) that the key-value stores' object caches hold, shared by
   * every stage given the same budget (a process's stages share one); by default the stage's own,
   * of DEFAULT_STATE_CACHE_MB (common/config).
   */
  readonly stateCache?: CacheBudget;
  /** The topology's topic prefix (internal topics are named after the group id, which carries it). */
  readonly topicPrefix?: string;
  /** How long a fenced task waits for the group before it takes its partition back. */
  readonly suspendTimeoutMs?: number;
  /**
   * How long start-up waits for a source topic the cluster does not host (yet), retrying with
   * backoff, before the stage fails naming it (default 120 s).
   */
  readonly sourceTopicTimeoutMs?: number;
  readonly metrics: MetricsRegistry;
  readonly logger: Logger;
  /** OpenTelemetry tracing of records and commits (see tracing.ts); none: off, at no cost. */
  readonly tracer?: Tracer;
}

export interface StageStatus {
  readonly stage: string;
  readonly guarantee: Guarantee;
  readonly joined: boolean;
  readonly ready: boolean;
  readonly failed: boolean;
  readonly inFlight: number;
  readonly maxInFlight: number;
  readonly paused: boolean;
  readonly assigned: readonly string[];
  readonly tasks: readonly { readonly id: string; readonly state: string }[];
  readonly rebalances: number;
}

export type QueryResult<V> =
  | { readonly owned: true; readonly partition: number; readonly value: V | undefined }
  | {
      readonly owned: false;
      readonly partition: number;
      readonly owner: { readonly memberId: string; readonly clientId: string; readonly host: string } | undefined;
    };

export interface RunningStage {
  status(): StageStatus;
  /**
   * Interactive query: a key's value in a key-value store, if this instance owns the key's task
   * (the partition of `topic` — by default the first source — the key belongs to); otherwise which
   * partition and member does. `store` is a stage's store name (qualified as `<stage>.<store>`
   * when several stages of the pipeline declare one by that name).
   */
  query<V>(store: string, key: string, topic?: string): Promise<QueryResult<V>>;
  /** A key's windows with start in [from, to] from a window store, when this instance owns the key. */
  // eslint-disable-next-line @typescript-eslint/no-unnecessary-type-parameters -- the caller names the value type of the store it declared
  windows<V>(
    store: string,
    key: string,
    from: number,
    to: number,
  ): Promise<{ owned: boolean; partition: number; windows: { start: number; value: V }[] }>;
  /** Every entry of a store across the tasks this instance owns. */
  entries<V>(store: string): Promise<[string, V][]>;
  /** Finishes in-flight records, commits, leaves the group. */
  stop(): Promise<void>;
  /** Resolves when the stage stops; rejects when it fails. */
  readonly done: Promise<void>;
}

interface SubTopologyPlan {
  readonly spec: SubTopologySpec;
  /** Fused topic → its repartition topic. */
  readonly repartition: ReadonlyMap<string, string>;
  /** Store specs of the tasks, qualified `<stage>.<store>`, plus the runtime's own when there are fused topics. */
  readonly stores: readonly StoreSpec[];
}

/**
 * The admission bound and the fetch size. A fetch of small records brings more than the bound
 * (about 30,000 records per partition at 1 MiB): what cannot be admitted is held, with its
 * partition paused, and admitted as capacity frees (as the Java consumer buffers a fetch), so no
 * record is fetched and decoded twice. Before the hold, the remainder was fetched again: the
 * keyed-aggregate benchmark ran at 13,900 records per CPU-second with this bound, and at 42,700
 * with 100,000. The fetch size cannot shrink instead: it must hold the largest record batch the
 * broker accepts (message.max.bytes, 1 MiB by default), or a partition holding a larger batch can
 * stall, as Kafka documents for max.partition.fetch.bytes. At 256 KiB the feature-store test stalled
 * (before the runtime followed fetches that deliver nothing, a stall of that shape: see the
 * START_BATCH_PROCESS listener; not measured again since).
 */
export const DEFAULT_MAX_BYTES_PER_PARTITION = 1024 * 1024;
/**
 * A fetch returns once it has this many bytes or has waited DEFAULT_FETCH_MAX_WAIT_MS (Kafka's
 * fetch.min.bytes and fetch.max.wait.ms). Every batch costs this runtime a fixed share (a state
 * prefetch per store, a turn of the task loop, promises), and with fetch.min.bytes at 1 a live
 * stream arrives in batches of one or two records per partition: at 1,000 events/s the pipeline
 * made 115 fetches a second. Waiting up to 50 ms (half a commit interval) for a fuller batch cut
 * the pipeline's CPU at that rate by a quarter (`npm run bench -- pipeline --live=1000`: 42.9 and
 * 43.3 CPU-seconds, then 31.4 at 50 ms and 34.3 at 30 ms). A backlog fills a fetch at once, so
 * neither setting slows it.
 */
export const DEFAULT_FETCH_MAX_WAIT_MS = 50;
export const DEFAULT_FETCH_MIN_BYTES = 1024 * 1024;

/** Starts a pipeline: joins its consumer group and processes until stopped or failed. */
export async function runPipeline(spec: PipelineSpec, options: StageOptions): Promise<RunningStage> {
  validatePipeline(spec);
  const guarantee = options.guarantee ?? 'exactly_once';
  const maxInFlight = options.maxInFlight ?? DEFAULT_MAX_IN_FLIGHT;
  const instanceId = randomUUID();
  const cacheBudget = options.stateCache ?? new CacheBudget(DEFAULT_STATE_CACHE_MB * 1024 * 1024);
  const logger = options.logger.child({ stage: spec.name });
  const metrics = stageMetrics(options.metrics);
  const labels = { stage: spec.name };

  // ---- the plan: sub-topologies, their internal topics and stores -----------------------------
  const plans = new Map<string, SubTopologyPlan>();
  const subOfTopic = new Map<string, SubTopologyPlan>();
  for (const sub of spec.subtopologies) {
    const repartition = new Map([...fusedTopics(sub)].map((topic) => [topic, repartitionTopicName(options.groupId, topic)]));
    const stores: StoreSpec[] = sub.steps.flatMap((step) =>
      (step.stage.stores ?? []).map((store) => ({ ...store, name: `${step.stage.name}.${store.name}` })),
    );
    // The runtime's own store: arrival sequences of fused topics, and the input offsets each commit
    // covers (a floor under the group's committed offsets, which a new owner can read stale).
    if (repartition.size > 0 || stores.length > 0) stores.push({ name: RUNTIME_STORE, kind: 'key-value', serde: int64Serde });
    const plan: SubTopologyPlan = { spec: sub, repartition, stores };
    plans.set(sub.name, plan);
    subOfTopic.set(sub.source, plan);
    for (const topic of repartition.values()) subOfTopic.set(topic, plan);
  }
  const inputTopics = [...subOfTopic.keys()];
  const taskId = (sub: string, partition: number): string => `${sub}.${partition}`;
  const taskOfInput = (topic: string, partition: number): string => taskId(subOfTopic.get(topic)?.spec.name ?? topic, partition);

  const kafka: Kafka = createKafka({ brokers: options.brokers, clientId: `sluice-${spec.name}`, logger });
  const admin: Admin = kafka.admin();
  const tasks = new Map<string, Task>();
  const consumer: Consumer = kafka.consumer({
    groupId: options.groupId,
    sessionTimeout: options.sessionTimeoutMs ?? 30_000,
    heartbeatInterval: options.heartbeatIntervalMs ?? 3_000,
    rebalanceTimeout: options.rebalanceTimeoutMs ?? 60_000,
    maxWaitTimeInMs: options.fetchMaxWaitMs ?? DEFAULT_FETCH_MAX_WAIT_MS,
    minBytes: options.fetchMinBytes ?? DEFAULT_FETCH_MIN_BYTES,
    maxBytesPerPartition: options.maxBytesPerPartition ?? DEFAULT_MAX_BYTES_PER_PARTITION,
    readUncommitted: false,
    allowAutoTopicCreation: false,
    partitionAssigners: [copartitionedAssigner({ taskOf: taskOfInput }, () => [...tasks.keys()])],
  });
  const committers: CommitterFactory =
    guarantee === 'exactly_once'
      ? new TransactionalCommitterFactory(
          kafka,
          options.groupId,
          options.transactionalIdPrefix ?? 'sluice-',
          options.transactionTimeoutMs ?? 60_000,
        )
      : new AtLeastOnceCommitterFactory(kafka, consumer);
  const watermarks = new WatermarkTracker(options.allowedLatenessMs ?? 0);
  /** Tasks that moved away, still closing: shutdown waits for them, and so does a new task of the same id. */
  const closing = new Map<string, Promise<void>>();
  let inFlight = 0;
  let backpressurePaused = false;
  /**
   * Per input partition (`topic:partition`): the rest of a fetched batch beyond the bound, for its
   * task. `expected` is where the task continues when the held records are next (undefined: before
   * its first record): they are admitted only while it still is (anything that repositions the
   * task drops them, and the consumer, which has moved past them, is sent back to where the task
   * continues).
   */
  const held = new Map<
    string,
    {
      readonly task: Task;
      readonly topic: string;
      readonly partition: number;
      expected: string | undefined;
      readonly records: readonly RawRecord[];
      /** How many of them were admitted so far (an index, not a splice: fetches hold tens of thousands). */
      taken: number;
      /** Where the consumer continues after them (past the fetch's trailing markers: see eachBatch). */
      readonly fetchedUpTo: string;
    }
  >();
  let drainScheduled = false;
  let joined = false;
  /** Between a consumer crash and kafkajs' restart of it: no group to pause in (the next join sets pauses again). */
  let consumerStopped = false;
  let rebalances = 0;
  let stopping = false;
  let failure: unknown;
  let resolveDone!: () => void;
  let rejectDone!: (error: unknown) => void;
  const done = new Promise<void>((resolve, reject) => {
    resolveDone = resolve;
    rejectDone = reject;
  });
  done.catch(() => undefined);
  // The process's budget stays watched; a budget of this pipeline's own goes with it.
  const unwatchCache = watchStateCache(options.metrics, cacheBudget);
  if (!options.stateCache) void done.then(unwatchCache, unwatchCache);
  // RocksDB's memory is the process's, whoever opened the databases: watched once per registry, never unwatched.
  watchRocksDb(options.metrics);

  // ---- topic metadata (partition counts) for routing and queries ------------------------------
  // Cached a few seconds per topic (counts change rarely, and only upwards). One fetch at a time:
  // lookups that arrive while it runs share it, so an expiry under load is not a herd of fetches.
  interface CachedPartitions {
    at: number;
    readonly fetching: Promise<PartitionMetadata[]>;
    /** The latest answer (the previous one while a refresh runs): what routing reads synchronously. */
    partitions: PartitionMetadata[] | undefined;
  }
  const partitionMetadata = new Map<string, CachedPartitions>();
  const partitionsOf = (topic: string, timeoutMs?: number): Promise<PartitionMetadata[]> => {
    const cached = partitionMetadata.get(topic);
    if (cached && cached.at >= Date.now() - 5_000) return cached.fetching;
    const entry: CachedPartitions = {
      at: Date.now(),
      fetching: retryKafka(() => admin.fetchTopicMetadata({ topics: [topic] }), timeoutMs === undefined ? {} : { timeoutMs }).then(
        (metadata) => metadata.topics[0]?.partitions ?? [],
      ),
      partitions: cached?.partitions,
    };
    partitionMetadata.set(topic, entry);
    entry.fetching.then(
      (partitions) => (entry.partitions = partitions),
      () => (entry.at = 0), // failed: the next lookup fetches again
    );
    return entry.fetching;
  };
  const partitioner = Partitioners.DefaultPartitioner();
  /** The producers' partitioner (murmur2, as Kafka's Java client) over known metadata: synchronous for the hot path. */
  const partitionOfKey = (topic: string, key: string | Buffer | null): number => {
    const partitions = partitionMetadata.get(topic)?.partitions;
    if (!partitions) throw new StageFailedError(`no partition metadata for ${topic}`);
    return partitioner({ topic, partitionMetadata: partitions, message: { key, value: null } });
  };

  // ---- inputs: the consumer group -------------------------------------------------------------

  const heldKey = (topic: string, partition: number): string => `${topic}:${partition}`;

  /**
   * Forgets held records of a task that is still ours and has not moved: its input goes back to
   * where it continues (or, before its first record, to the first held one).
   */
  const dropHeld = (key: string): void => {
    const entry = held.get(key);
    if (!entry) return;
    held.delete(key);
    const resume = entry.task.resumeOffset(entry.topic) ?? entry.records[entry.taken]?.offset;
    if (resume !== undefined && !stopping && !consumerStopped)
      consumer.seek({ topic: entry.topic, partition: entry.partition, offset: resume });
  };

  /** Admits held records while there is capacity (after the current call stack: hooks call it). */
  const scheduleDrain = (): void => {
    if (drainScheduled || held.size === 0) return;
    drainScheduled = true;
    setImmediate(() => {
      drainScheduled = false;
      drainHeld();
    });
  };

  /**
   * Admits held records while there is capacity, in turns over the held partitions (each gets a
   * share, so every task keeps working). Not while the group rebalances or the consumer restarts:
   * the join that follows repositions every task, which drops what they held.
   */
  const drainHeld = (): void => {
    if (stopping || !joined || consumerStopped) return;
    let resumed = false;
    for (const [key, entry] of held) {
      // Closed or replaced: its partition was revoked, or a new task repositions it.
      if (tasks.get(entry.task.id) !== entry.task) held.delete(key);
      else if (entry.task.accepting && entry.task.resumeOffset(entry.topic) !== entry.expected) {
        dropHeld(key);
        resumed = true;
      }
    }
    // A task restoring, suspended or failing keeps its records until what it does next repositions it.
    let ready = [...held].filter(([, entry]) => entry.task.accepting);
    while (ready.length > 0 && inFlight < maxInFlight) {
      const share = Math.max(1, Math.floor((maxInFlight - inFlight) / ready.length));
      for (const [key, entry] of ready) {
        const free = maxInFlight - inFlight;
        if (free <= 0) break;
        const admitted = entry.records.slice(entry.taken, entry.taken + Math.min(share, free));
        entry.taken += admitted.length;
        entry.task.admit(entry.topic, admitted);
        metrics.recordsIn.inc({ ...labels, topic: entry.topic }, admitted.length);
        entry.expected = entry.task.resumeOffset(entry.topic) ?? entry.expected;
        if (entry.taken >= entry.records.length) {
          // All taken: continue where the consumer does, past the fetch's trailing markers.
          if (entry.expected !== undefined) entry.task.skipUnfetched(entry.topic, entry.expected, entry.fetchedUpTo);
          held.delete(key);
          resumed = true;
        }
      }
      ready = ready.filter(([key]) => held.has(key));
    }
    if (resumed) pauseState();
  };

  const updateBackpressure = (): void => {
    metrics.inFlight.set(labels, inFlight);
    // Pause everything at the bound; resume once half drained (hysteresis avoids flapping).
    if (!backpressurePaused && inFlight >= maxInFlight) {
      backpressurePaused = true;
      pauseState();
    } else if (backpressurePaused && inFlight <= maxInFlight / 2) {
      backpressurePaused = false;
      pauseState();
    }
  };

  /** Pauses input partitions under backpressure or of tasks not running, resumes the others. */
  const pauseState = (): void => {
    // Shutting down, or kafkajs restarting the consumer after a crash: nothing to pause or resume
    // (kafkajs throws), and reconcile sets the pauses again when the group is joined.
    if (stopping || consumerStopped) return;
    let paused = 0;
    const pausedNow = consumer.paused();
    for (const task of tasks.values()) {
      const partition = Number(task.id.slice(task.id.lastIndexOf('.') + 1));
      for (const topic of task.inputs) {
        const shouldPause = backpressurePaused || !task.accepting || held.has(heldKey(topic, partition));
        const isPaused = pausedNow.some((entry) => entry.topic === topic && entry.partitions.includes(partition));
        if (shouldPause && !isPaused) consumer.pause([{ topic, partitions: [partition] }]);
        if (!shouldPause && isPaused) consumer.resume([{ topic, partitions: [partition] }]);
        if (shouldPause) paused++;
      }
    }
    metrics.pausedPartitions.set(labels, paused);
  };

  const committedOffsets = async (topic: string, partition: number): Promise<string> => {
    const offsets = await admin.fetchOffsets({ groupId: options.groupId, topics: [topic] });
    return offsets.find((entry) => entry.topic === topic)?.partitions.find((entry) => entry.partition === partition)?.offset ?? '-1';
  };

  const fail = (error: unknown): void => {
    if (failure !== undefined || stopping) return;
    failure = error;
    logger.error({ err: error }, `stage failed: ${errorMessage(error)}`);
    void shutdown().then(
      () => rejectDone(error),
      () => rejectDone(error),
    );
  };

  const requireStateDir = (): string => {
    if (!options.stateDir) throw new StageFailedError(`pipeline ${spec.name} has state stores but no stateDir`);
    return options.stateDir;
  };

  const createTask = (plan: SubTopologyPlan, partition: number): Task => {
    const id = taskId(plan.spec.name, partition);
    const taskLogger = logger.child({ task: id });
    const stateful = plan.stores.length > 0;
    // The watermark tracker's partition names, made once per input (event times are seen per record).
    const watermarkKeys = new Map<string, string>();
    const watermarkKey = (input: string): string => {
      let key = watermarkKeys.get(input);
      if (key === undefined) {
        key = `${id}:${input}`;
        watermarkKeys.set(input, key);
      }
      return key;
    };
    const dir = stateful ? path.join(requireStateDir(), options.groupId, id) : '';
    const hooks: TaskHooks = {
      onAdmitted: (count) => {
        inFlight += count;
        updateBackpressure();
      },
      onReleased: (count) => {
        inFlight -= count;
        updateBackpressure();
        scheduleDrain();
      },
      onCommitted: (summary) => {
        metrics.transactions.inc({ ...labels, outcome: 'commit' });
        metrics.commitSeconds.observe(labels, summary.seconds);
        for (const [topic, count] of summary.outputsByTopic) metrics.recordsOut.inc({ ...labels, topic }, count);
        // Counted when committed: a dead letter of a transaction that aborted is written again (and counted) on the retry.
        for (const { stage, topic, reason, count } of summary.deadLetters) metrics.deadLetters.inc({ stage, topic, reason }, count);
      },
      onCommitFailed: () => metrics.transactions.inc({ ...labels, outcome: 'abort' }),
      onRecordFailed: (stage, _topic, reason) => metrics.errors.inc({ stage, reason }),
      onRetry: (stage, reason) => metrics.retries.inc({ stage, reason }),
      onFatal: fail,
      onStateChange: () => {
        pauseState();
        scheduleDrain();
      },
      onReset: () => {
        for (const step of plan.spec.steps) for (const input of task.inputs) step.stage.onPartitionReset?.(input, partition);
        for (const input of task.inputs) watermarks.remove(`${id}:${input}`);
      },
    };
    const task: Task = new Task({
      id,
      subtopology: plan.spec,
      partition,
      repartition: plan.repartition,
      committers,
      ...(stateful
        ? {
            lock: () => TaskLock.acquire(dir, id, { instanceId }),
            openStores: () =>
              TaskStores.open({
                specs: plan.stores,
                dir,
                partition,
                changelogTopic: (store) => changelogTopicName('', options.groupId, store, plan.spec.name),
                kafka,
                logger: taskLogger,
                onRestored: (store, records, seconds) => {
                  metrics.restoredRecords.inc({ ...labels, store }, records);
                  metrics.restoreSeconds.observe({ ...labels, store }, seconds);
                },
                onSkipped: (store) => metrics.changelogSkipped.inc({ ...labels, store }),
                cacheBudget,
              }),
          }
        : {}),
      committedOffset: (topic) => committedOffsets(topic, partition),
      endOffset: async (topic) => {
        const offsets = await admin.fetchTopicOffsets(topic);
        return BigInt(offsets.find((entry) => entry.partition === partition)?.high ?? '0');
      },
      seek: (topic, offset) => {
        // The task moves: what was held for it no longer follows on.
        held.delete(heldKey(topic, partition));
        consumer.seek({ topic, partition, offset });
      },
      partitionOf: partitionOfKey,
      dlqTopic: options.dlqTopic,
      commitMaxRecords: options.commitMaxRecords ?? 5_000,
      commitIntervalMs: options.commitIntervalMs ?? 100,
      maxAttempts: options.maxAttempts ?? 8,
      ...(options.tracer ? { tracer: options.tracer } : {}),
      retryInitialDelayMs: options.retryInitialDelayMs ?? 100,
      retryMaxDelayMs: options.retryMaxDelayMs ?? 10_000,
      suspendTimeoutMs: options.suspendTimeoutMs ?? 30_000,
      trustStoredOffsets: guarantee === 'exactly_once',
      logger: taskLogger,
      observeEventTime: (input, eventTime) => watermarks.see(watermarkKey(input), eventTime),
      watermark: (input) => watermarks.partitionWatermark(watermarkKey(input)),
      hooks,
    });
    return task;
  };

  /** Moves tasks to the new assignment: closes lost ones, starts new ones, resumes kept ones. */
  const reconcile = (assignment: Record<string, number[]>): void => {
    // A join restarts every partition's position at the group's committed offset (kafkajs starts
    // a new offset manager): nothing held follows on any more. Kept tasks are re-seeked below;
    // the others reposition when they open.
    held.clear();
    const wanted = new Map<string, { plan: SubTopologyPlan; partition: number }>();
    for (const [topic, partitions] of Object.entries(assignment)) {
      const plan = subOfTopic.get(topic);
      if (!plan) continue;
      for (const partition of partitions) wanted.set(taskId(plan.spec.name, partition), { plan, partition });
    }
    for (const [id, task] of tasks) {
      if (wanted.has(id)) continue;
      tasks.delete(id);
      const closed = task.close();
      closing.set(id, closed);
      void closed.finally(() => {
        if (closing.get(id) === closed) closing.delete(id);
      });
    }
    for (const [id, { plan, partition }] of wanted) {
      const existing = tasks.get(id);
      if (existing) {
        // Fenced earlier, and the group still says it is ours: take it back.
        if (existing.suspended) {
          void existing.resume('group');
          continue;
        }
        // The group re-read committed offsets; continue after what we already admitted.
        if (existing.accepting) {
          for (const topic of existing.inputs) {
            const resume = existing.resumeOffset(topic);
            if (resume !== undefined) consumer.seek({ topic, partition, offset: resume });
          }
        }
        continue;
      }
      const task = createTask(plan, partition);
      tasks.set(id, task);
      // The task's previous incarnation here (moved away and back) releases its state folder first.
      void (closing.get(id) ?? Promise.resolve()).then(() => task.start()).catch(fail);
    }
    metrics.assignedPartitions.set(labels, tasks.size);
    pauseState();
  };

  const eachBatch = async (payload: EachBatchPayload): Promise<void> => {
    const { batch } = payload;
    const task = tasks.get(taskOfInput(batch.topic, batch.partition));
    metrics.recordsFetched.inc({ ...labels, topic: batch.topic }, batch.messages.length);
    if (!task?.accepting || payload.isStale() || stopping) return;
    // Records are held for this partition (it is paused; this batch came from a fetch already under
    // way, from after them): left unresolved, it is fetched again once they are admitted.
    if (held.has(heldKey(batch.topic, batch.partition))) return;
    // A batch fetched from beyond where the task continues was fetched before the task's seek back
    // (a reset): kafkajs may still hand it over. Admitting it would skip the records in between.
    const expected = task.resumeOffset(batch.topic);
    const fetched = fetchedOffsetOf(batch);
    if (expected !== undefined && fetched !== undefined && BigInt(fetched) > BigInt(expected)) {
      logger.debug({ topic: batch.topic, partition: batch.partition, fetched, expected }, 'a batch fetched before a seek; seeking again');
      consumer.seek({ topic: batch.topic, partition: batch.partition, offset: expected });
      return;
    }
    metrics.consumerLag.set({ ...labels, topic: batch.topic, partition: String(batch.partition) }, Number(batch.offsetLag()));
    let capacity = maxInFlight - inFlight;
    /** The last record taken: admitted, or skipped as a refetch. */
    let takenUpTo: string | undefined;
    const admitted: RawRecord[] = [];
    const rest: RawRecord[] = [];
    for (const message of batch.messages) {
      if (task.isDuplicate(batch.topic, message.offset)) {
        takenUpTo = message.offset;
        continue;
      }
      const record: RawRecord = {
        topic: batch.topic,
        partition: batch.partition,
        offset: message.offset,
        key: message.key,
        value: message.value,
        headers: headersOf(message.headers),
        timestamp: Number(message.timestamp),
      };
      if (capacity > 0) {
        admitted.push(record);
        capacity--;
        takenUpTo = message.offset;
      } else {
        rest.push(record);
      }
    }
    task.admit(batch.topic, admitted);
    if (admitted.length > 0) metrics.recordsIn.inc({ ...labels, topic: batch.topic }, admitted.length);
    // What the bound leaves over is held, its partition paused, and admitted as commits free
    // capacity: the consumer moves past it.
    let consumedUpTo = takenUpTo;
    if (rest.length > 0) {
      held.set(heldKey(batch.topic, batch.partition), {
        task,
        topic: batch.topic,
        partition: batch.partition,
        expected: task.resumeOffset(batch.topic),
        records: rest,
        taken: 0,
        fetchedUpTo: (BigInt(batch.lastOffset()) + 1n).toString(),
      });
      consumedUpTo = rest.at(-1)?.offset;
      pauseState();
    }
    if (consumedUpTo !== undefined) payload.resolveOffset(consumedUpTo);
    // Resolving a batch's last record, kafkajs resolves what follows it in the fetch too (a
    // transaction's marker, aborted records: nothing it delivers) and fetches on after that: the
    // task continues there as well, or its next batch would read as fetched beyond it and be
    // fetched again (once per transaction on a transactional input). Held records do so once
    // they are all admitted (drainHeld).
    const lastDelivered = batch.messages.at(-1)?.offset;
    const resume = task.resumeOffset(batch.topic);
    if (rest.length === 0 && lastDelivered !== undefined && consumedUpTo === lastDelivered && resume !== undefined)
      task.skipUnfetched(batch.topic, resume, (BigInt(batch.lastOffset()) + 1n).toString());
    await Promise.resolve();
  };

  // ---- lifecycle ------------------------------------------------------------------------------

  consumer.on(consumer.events.GROUP_JOIN, ({ payload }) => {
    joined = true;
    consumerStopped = false;
    rebalances++;
    if (rebalances > 1) metrics.rebalances.inc(labels);
    logger.info({ assignment: payload.memberAssignment, generation: rebalances }, 'joined the consumer group');
    reconcile(payload.memberAssignment);
  });
  // A fetch of only aborted and control records is never handed to eachBatch: kafkajs resolves it
  // itself and fetches on after it. A task continuing where that fetch began continues after it
  // too; otherwise the next batch (fetched from beyond where the task continues) reads as fetched
  // before a seek and is sent back to the same records, for ever once they fill a whole fetch.
  consumer.on(consumer.events.START_BATCH_PROCESS, ({ payload }) => {
    if (payload.batchSize !== 0 || stopping) return;
    const fetched = fetchedOffsetOf(payload);
    if (fetched === undefined || held.has(heldKey(payload.topic, payload.partition))) return;
    const task = tasks.get(taskOfInput(payload.topic, payload.partition));
    const next = (BigInt(payload.lastOffset) + 1n).toString();
    if (task?.skipUnfetched(payload.topic, fetched, next))
      logger.debug({ topic: payload.topic, partition: payload.partition, from: fetched, to: next }, 'past records no fetch delivers');
  });
  consumer.on(consumer.events.REBALANCING, () => {
    joined = false;
  });
  consumer.on(consumer.events.STOP, () => {
    consumerStopped = true;
  });
  consumer.on(consumer.events.CRASH, ({ payload }) => {
    if (!payload.restart) fail(new StageFailedError(`the consumer crashed: ${errorMessage(payload.error)}`, { cause: payload.error }));
  });

  async function shutdown(): Promise<void> {
    stopping = true;
    held.clear();
    const drained = await Promise.all([...tasks.values()].map((task) => task.drain(10_000)));
    if (drained.some((ok) => !ok)) logger.warn('some in-flight records were not committed before stopping; they will be processed again');
    await consumer.disconnect().catch(() => undefined);
    await Promise.all([...tasks.values()].map((task) => task.close()));
    await Promise.all(closing.values());
    tasks.clear();
    await committers.close();
    await admin.disconnect().catch(() => undefined);
  }

  /**
   * A source topic's partitions at start-up. A topic created a moment ago may not be hosted by its
   * leader yet ("does not host this topic-partition", retriable): retried with backoff. One that
   * stays unknown fails the stage with its name, not with the bare broker error.
   */
  const sourcePartitions = async (topic: string): Promise<PartitionMetadata[]> => {
    const timeoutMs = options.sourceTopicTimeoutMs ?? 120_000;
    let partitions: PartitionMetadata[] = [];
    let unknown: unknown;
    try {
      partitions = await partitionsOf(topic, timeoutMs);
    } catch (error) {
      if (!isUnknownTopic(error)) throw error;
      unknown = error;
    }
    if (partitions.length === 0)
      throw new StageFailedError(
        `the input topic ${topic} of ${spec.name} does not exist (waited ${Math.round(timeoutMs / 1000)} s for the cluster to host it)`,
        { context: { topic, stage: spec.name }, ...(unknown === undefined ? {} : { cause: unknown }) },
      );
    return partitions;
  };

  /** Connects, creates the internal topics and joins the group; a failure leaves no client connected. */
  const start = async (): Promise<void> => {
    await retryKafka(() => admin.connect());
    // Internal topics: changelogs (compacted) and repartition topics, partitioned like their source.
    const internal: TopicSpec[] = [];
    for (const plan of plans.values()) {
      const partitions = (await sourcePartitions(plan.spec.source)).length;
      for (const store of plan.stores) {
        internal.push({
          name: changelogTopicName('', options.groupId, store.name, plan.spec.name),
          partitions,
          config: changelogConfig(store),
        });
      }
      for (const [fused, repartition] of plan.repartition) {
        const fusedPartitions = (await sourcePartitions(fused)).length;
        if (fusedPartitions !== partitions) {
          throw new StageFailedError(
            `${fused} has ${fusedPartitions} partitions but ${plan.spec.source} has ${partitions}: a fused pipeline needs co-partitioned topics`,
          );
        }
        internal.push({ name: repartition, partitions, config: { 'retention.ms': String(7 * 86_400_000) } });
      }
    }
    if (internal.length > 0) await retryKafka(() => ensureTopics(admin, internal, logger));
    for (const topic of inputTopics) await sourcePartitions(topic);
    await retryKafka(() => consumer.connect());
    // kafkajs gives up on a subscription at once when the metadata it fetches does not know the
    // topic yet (UNKNOWN_TOPIC_OR_PARTITION: on a cluster of several brokers, one that has not
    // caught up with a fresh topic's creation): retriable, so retried; a failed subscribe adds nothing.
    for (const topic of inputTopics) await retryKafka(() => consumer.subscribe({ topic, fromBeginning: options.fromBeginning ?? true }));
    await consumer.run({ autoCommit: false, eachBatchAutoResolve: false, eachBatch });
  };
  try {
    await start();
  } catch (error) {
    await consumer.disconnect().catch(() => undefined);
    await admin.disconnect().catch(() => undefined);
    throw error;
  }
  logger.info({ inputs: inputTopics, guarantee, groupId: options.groupId, maxInFlight }, 'stage started');

  // ---- interactive queries --------------------------------------------------------------------

  const planForTopic = (topic: string | undefined): SubTopologyPlan => {
    const plan =
      topic === undefined
        ? plans.values().next().value
        : [...plans.values()].find(
            (candidate) => candidate.spec.source === topic || candidate.spec.steps.some((step) => step.input === topic),
          );
    if (!plan) throw new StageFailedError(`pipeline ${spec.name} does not read ${topic ?? 'anything'}`);
    return plan;
  };
  const qualify = (plan: SubTopologyPlan, store: string): string => {
    if (plan.stores.some((candidate) => candidate.name === store)) return store;
    const matches = plan.stores.filter((candidate) => candidate.name.endsWith(`.${store}`));
    if (matches.length !== 1)
      throw new StageFailedError(
        `no single store named ${store} in ${plan.spec.name}: ${plan.stores.map((candidate) => candidate.name).join(', ')}`,
      );
    return matches[0]?.name ?? store;
  };
  const locate = async (store: string, key: string, topic: string | undefined) => {
    const plan = planForTopic(topic);
    const routed = topic ?? plan.spec.source;
    const partition = partitioner({ topic: routed, partitionMetadata: await partitionsOf(routed), message: { key, value: null } });
    return { plan, partition, stores: tasks.get(taskId(plan.spec.name, partition))?.taskStores, name: qualify(plan, store) };
  };

  return {
    done,
    async query<V>(store: string, entityKey: string, topic?: string): Promise<QueryResult<V>> {
      const { plan, partition, stores, name } = await locate(store, entityKey, topic);
      if (stores) return { owned: true, partition, value: await stores.store<KeyValueStore<V>>(name).get(entityKey) };
      const described = await admin.describeGroups([options.groupId]);
      const owner = described.groups[0]?.members.find((member) => {
        const assignment = AssignerProtocol.MemberAssignment.decode(member.memberAssignment);
        return assignment?.assignment[plan.spec.source]?.includes(partition) ?? false;
      });
      return {
        owned: false,
        partition,
        owner: owner ? { memberId: owner.memberId, clientId: owner.clientId, host: owner.clientHost } : undefined,
      };
    },
    // eslint-disable-next-line @typescript-eslint/no-unnecessary-type-parameters -- see RunningStage.windows
    async windows<V>(store: string, entityKey: string, from: number, to: number) {
      const { partition, stores, name } = await locate(store, entityKey, undefined);
      if (!stores) return { owned: false, partition, windows: [] };
      return { owned: true, partition, windows: await stores.store<WindowStore<V>>(name).fetch(entityKey, from, to) };
    },
    async entries<V>(store: string): Promise<[string, V][]> {
      const all: [string, V][] = [];
      for (const task of tasks.values()) {
        const stores = task.taskStores;
        if (!stores) continue;
        const name = stores.names.find((candidate) => candidate === store || candidate.endsWith(`.${store}`));
        if (name) all.push(...(await stores.store<KeyValueStore<V>>(name).range()));
      }
      return all;
    },
    status: () => ({
      stage: spec.name,
      guarantee,
      joined,
      ready: joined && failure === undefined && [...tasks.values()].every((task) => task.status === 'running'),
      failed: failure !== undefined,
      inFlight,
      maxInFlight,
      paused: backpressurePaused,
      assigned: [...tasks.values()].flatMap((task) =>
        task.inputs.map((topic) => `${topic}:${task.id.slice(task.id.lastIndexOf('.') + 1)}`),
      ),
      tasks: [...tasks.values()].map((task) => ({ id: task.id, state: task.status })),
      rebalances: Math.max(0, rebalances - 1),
    }),
    async stop() {
      if (stopping) return done.catch(() => undefined);
      await shutdown();
      logger.info('stage stopped');
      resolveDone();
      return undefined;
    },
  };
}

/** Whether a Kafka failure (or the one it wraps) says the cluster does not host the topic. */
function isUnknownTopic(error: unknown): boolean {
  return hasKafkaErrorType(error, 'UNKNOWN_TOPIC_OR_PARTITION');
}

/** Key-value changelogs are compacted; window changelogs also expire after the store's retention. */
function changelogConfig(store: StoreSpec): Record<string, string> {
  // A commit's changelog batch can hold many large values (entity histories): allow 16 MiB batches.
  const size = { 'max.message.bytes': String(16 * 1024 * 1024) };
  if (store.kind === 'window')
    return { 'cleanup.policy': 'compact,delete', 'retention.ms': String(store.retentionMs + 86_400_000), ...size };
  return { 'cleanup.policy': 'compact', ...size };
}

/**
 * The offset a batch was fetched from: kafkajs keeps it on the batch without typing it, and the
 * patched kafkajs adds it to the batch events' payload (see patches/).
 */
function fetchedOffsetOf(batch: object): string | undefined {
  const fetched = (batch as { fetchedOffset?: unknown }).fetchedOffset;
  return typeof fetched === 'string' || typeof fetched === 'number' ? String(fetched) : undefined;
}
