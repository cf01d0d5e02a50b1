import type { Admin, Consumer, EachBatchPayload, Kafka, PartitionMetadata } from 'kafkajs';
import { isObservable, lastValueFrom, toArray, defaultIfEmpty, type Observable } from 'rxjs';
import type { Logger } from 'pino';
import { errorMessage } from '../../common/errors.js';
import { backoffDelay, sleep } from '../../common/retry.js';
import kafkajs from 'kafkajs';
import { createKafka, ensureTopics, retryKafka, type TopicSpec } from '../../kafka/index.js';
import { TaskStores, changelogTopicName, type KeyValueStore, type StoreSpec, type WindowStore } from '../../state/index.js';
import { stageMetrics } from './metrics.js';
import { type MetricsRegistry } from '../../common/metrics.js';
import { AtLeastOnceCommitterFactory, TransactionalCommitterFactory, type CommitterFactory, type Guarantee } from './committer.js';
import { deadLetter } from './dead-letter.js';
import { isRetriable, reasonOf, StageFailedError } from './errors.js';
import { PartitionTask, type ProcessedRecord } from './partition-task.js';
import { headersOf, type OutputRecord, type RawRecord, type StreamRecord } from './record.js';
import { WatermarkTracker } from './watermarks.js';

/** What a stage's function sees besides the record. */
export interface TaskContext {
  readonly stage: string;
  readonly topic: string;
  readonly partition: number;
  /** This partition's watermark: max event time seen minus allowed lateness. */
  watermark(): number;
  /** This partition's instance of a declared store (KeyValueStore or WindowStore). */
  // eslint-disable-next-line @typescript-eslint/no-unnecessary-type-parameters -- the caller names the store type it declared
  store<S>(name: string): S;
  readonly logger: Logger;
}

/**
 * A stage, declared: which topics it reads, how a message becomes a value, where its event
 * time is, and the function from one record to its outputs. The runtime does the rest: offsets,
 * transactions, backpressure, retries, dead letters, rebalances, metrics.
 */
export interface StageDefinition<V> {
  readonly name: string;
  readonly inputs: readonly string[];
  /** Throws (DeserializationError, ValidationError, ...) for bytes that are not a valid value. */
  readonly decode: (record: RawRecord) => V | Promise<V>;
  /** Event time of a value; defaults to the Kafka timestamp. */
  readonly eventTime?: (value: V, record: RawRecord) => number;
  /** One record to zero or more outputs: an array, a promise of one, or an Observable of outputs. */
  readonly process: (record: StreamRecord<V>, context: TaskContext) => ProcessOutput;
  /**
   * Called when a partition starts fresh on this instance, moves away, or drops uncommitted work
   * after a failed commit: per-partition in-memory state must be cleared, since the records
   * behind it will be processed again.
   */
  readonly onPartitionReset?: (topic: string, partition: number) => void;
  /** State stores, one instance per input partition, restored from changelogs on assignment. */
  readonly stores?: readonly StoreSpec[];
}

export type ProcessOutput = readonly OutputRecord[] | Promise<readonly OutputRecord[]> | Observable<OutputRecord>;

/** Collects what a process function returned; an Observable must complete (its error fails the record). */
async function collectOutputs(result: ProcessOutput): Promise<readonly OutputRecord[]> {
  if (isObservable(result)) return lastValueFrom(result.pipe(toArray(), defaultIfEmpty([] as OutputRecord[])));
  return result;
}

export interface StageOptions {
  readonly brokers: readonly string[];
  readonly groupId: string;
  readonly dlqTopic: string;
  readonly guarantee?: Guarantee;
  /** Records admitted and not yet committed, at most; partitions pause at the bound. */
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
  /**
   * Most bytes fetched per partition per request. Records beyond the in-flight bound are dropped
   * from a fetched batch and fetched again later, so smaller fetches waste less under backpressure.
   */
  readonly maxBytesPerPartition?: number;
  /** Where a new group starts: the earliest offset (default) or only new records. */
  readonly fromBeginning?: boolean;
  /** Where state stores keep their RocksDB directories (required when the stage has stores). */
  readonly stateDir?: string;
  /** Prefix of changelog topic names (the topology's topic prefix). */
  readonly topicPrefix?: string;
  readonly metrics: MetricsRegistry;
  readonly logger: Logger;
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
  readonly rebalances: number;
}

export interface RunningStage {
  status(): StageStatus;
  /**
   * Interactive query: a key's value in a key-value store, if this instance owns the key's
   * partition (of `topic`, by default the stage's first input); otherwise says which partition and member does.
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
  /** Every entry of a store across the partitions this instance owns. */
  entries<V>(store: string): Promise<[string, V][]>;
  /** Finishes in-flight records, commits, leaves the group. */
  stop(): Promise<void>;
  /** Resolves when the stage stops; rejects when it fails. */
  readonly done: Promise<void>;
}

// kafkajs is CommonJS: its values come through the default export under Node's ESM loader.
const { Partitioners, AssignerProtocol } = kafkajs;

const key = (topic: string, partition: number): string => `${topic}:${partition}`;

export type QueryResult<V> =
  | { readonly owned: true; readonly partition: number; readonly value: V | undefined }
  | {
      readonly owned: false;
      readonly partition: number;
      readonly owner: { readonly memberId: string; readonly clientId: string; readonly host: string } | undefined;
    };

/** Starts a stage: joins its consumer group and processes until stopped or failed. */
export async function runStage<V>(definition: StageDefinition<V>, options: StageOptions): Promise<RunningStage> {
  const guarantee = options.guarantee ?? 'exactly_once';
  const maxInFlight = options.maxInFlight ?? 10_000;
  const logger = options.logger.child({ stage: definition.name });
  const metrics = stageMetrics(options.metrics);
  const labels = { stage: definition.name };
  const kafka: Kafka = createKafka({ brokers: options.brokers, clientId: `sluice-${definition.name}`, logger });
  const admin: Admin = kafka.admin();
  const consumer: Consumer = kafka.consumer({
    groupId: options.groupId,
    sessionTimeout: options.sessionTimeoutMs ?? 30_000,
    heartbeatInterval: options.heartbeatIntervalMs ?? 3_000,
    rebalanceTimeout: options.rebalanceTimeoutMs ?? 60_000,
    maxWaitTimeInMs: 250,
    maxBytesPerPartition: options.maxBytesPerPartition ?? 256 * 1024,
    readUncommitted: false,
    allowAutoTopicCreation: false,
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
  const tasks = new Map<string, PartitionTask>();
  /** Tasks of partitions that moved away, still closing: shutdown waits for them, and so does a new task of the same partition. */
  const closing = new Map<string, Promise<void>>();
  let inFlight = 0;
  let backpressurePaused = false;
  let joined = false;
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

  // ---- inputs: the consumer group ----------------------------------------------------------

  const assignedPartitions = (): { topic: string; partition: number }[] =>
    [...tasks.keys()].map((entry) => {
      const separator = entry.lastIndexOf(':');
      return { topic: entry.slice(0, separator), partition: Number(entry.slice(separator + 1)) };
    });

  /** Called on every admission and release: cheap unless the backpressure state flips. */
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

  /** Pauses partitions under backpressure or not yet ready, resumes the others. */
  const pauseState = (): void => {
    for (const { topic, partition } of assignedPartitions()) {
      const task = tasks.get(key(topic, partition));
      const shouldPause = backpressurePaused || !task?.accepting;
      const isPaused = consumer.paused().some((entry) => entry.topic === topic && entry.partitions.includes(partition));
      if (shouldPause && !isPaused) consumer.pause([{ topic, partitions: [partition] }]);
      if (!shouldPause && isPaused) consumer.resume([{ topic, partitions: [partition] }]);
    }
    metrics.pausedPartitions.set(
      labels,
      consumer.paused().reduce((sum, entry) => sum + entry.partitions.length, 0),
    );
  };

  const committedOffset = async (topic: string, partition: number): Promise<string> => {
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

  const createTask = (topic: string, partition: number): PartitionTask => {
    const partitionKey = key(topic, partition);
    const context: TaskContext = {
      stage: definition.name,
      topic,
      partition,
      watermark: () => watermarks.partitionWatermark(partitionKey),
      // eslint-disable-next-line @typescript-eslint/no-unnecessary-type-parameters -- see TaskContext.store
      store: <S>(name: string): S => {
        const stores = task.taskStores;
        if (!stores) throw new StageFailedError(`store ${name} of ${partitionKey} is not open`);
        return stores.store<S>(name);
      },
      logger: logger.child({ topic, partition }),
    };
    const specs = definition.stores ?? [];
    const task: PartitionTask = new PartitionTask({
      ...(specs.length > 0
        ? {
            openStores: () =>
              TaskStores.open({
                specs,
                stateDir: requireStateDir(),
                groupId: options.groupId,
                partition,
                // Tasks of different input topics with the same partition number keep separate state.
                taskName: definition.inputs.length > 1 ? `${topic}.${partition}` : String(partition),
                changelogTopic: (store) => changelogTopic(store, topic),
                kafka,
                logger: context.logger,
                onRestored: (store, records, seconds) => {
                  metrics.restoredRecords.inc({ ...labels, store }, records);
                  metrics.restoreSeconds.observe({ ...labels, store }, seconds);
                },
                onSkipped: (store) => metrics.changelogSkipped.inc({ ...labels, store }),
              }),
          }
        : {}),
      topic,
      partition,
      process: (raw) => processRecord(raw, context, partitionKey),
      committers,
      committedOffset: () => committedOffset(topic, partition),
      seek: (offset) => consumer.seek({ topic, partition, offset }),
      commitMaxRecords: options.commitMaxRecords ?? 2_000,
      commitIntervalMs: options.commitIntervalMs ?? 100,
      logger: context.logger,
      onAdmitted: (count) => {
        inFlight += count;
        updateBackpressure();
      },
      onReleased: (count) => {
        inFlight -= count;
        updateBackpressure();
      },
      onCommitted: (records, seconds) => {
        metrics.transactions.inc({ ...labels, outcome: 'commit' });
        metrics.commitSeconds.observe(labels, seconds);
        for (const record of records) for (const output of record.outputs) metrics.recordsOut.inc({ ...labels, topic: output.topic });
      },
      onCommitFailed: () => metrics.transactions.inc({ ...labels, outcome: 'abort' }),
      onFatal: fail,
      onStateChange: pauseState,
      onReset: () => definition.onPartitionReset?.(topic, partition),
    });
    return task;
  };

  const requireStateDir = (): string => {
    if (!options.stateDir) throw new StageFailedError(`stage ${definition.name} has state stores but no stateDir`);
    return options.stateDir;
  };
  /** One changelog per store (and per input topic when there are several inputs). */
  const changelogTopic = (store: string, inputTopic: string): string =>
    changelogTopicName(options.topicPrefix ?? '', options.groupId, store, definition.inputs.length > 1 ? inputTopic : undefined);

  /** Moves tasks to the new assignment: closes lost partitions, starts new ones, resumes kept ones. */
  const reconcile = (assignment: Record<string, number[]>): void => {
    const wanted = new Set(
      Object.entries(assignment).flatMap(([topic, partitions]) => partitions.map((partition) => key(topic, partition))),
    );
    for (const [partitionKey, task] of tasks) {
      if (wanted.has(partitionKey)) continue;
      tasks.delete(partitionKey);
      watermarks.remove(partitionKey);
      const closed = task.close();
      closing.set(partitionKey, closed);
      void closed.finally(() => {
        if (closing.get(partitionKey) === closed) closing.delete(partitionKey);
      });
    }
    for (const [topic, partitions] of Object.entries(assignment)) {
      for (const partition of partitions) {
        const existing = tasks.get(key(topic, partition));
        if (existing) {
          // Fenced earlier, and the group still says it is ours: take it back.
          if (existing.suspended) {
            void existing.resume();
            continue;
          }
          // The group re-read committed offsets; continue after what we already admitted.
          const resume = existing.resumeOffset;
          if (resume !== undefined && existing.accepting) consumer.seek({ topic, partition, offset: resume });
          continue;
        }
        const task = createTask(topic, partition);
        tasks.set(key(topic, partition), task);
        // The partition's previous task (moved away and back) releases its state folder first.
        void (closing.get(key(topic, partition)) ?? Promise.resolve()).then(() => task.start());
      }
    }
    metrics.assignedPartitions.set(labels, tasks.size);
    pauseState();
  };

  // ---- transformation: one record ------------------------------------------------------------

  const maxAttempts = options.maxAttempts ?? 8;
  async function processRecord(raw: RawRecord, context: TaskContext, partitionKey: string): Promise<ProcessedRecord> {
    const started = performance.now();
    for (let attempt = 1; ; attempt++) {
      try {
        const value = await definition.decode(raw);
        const eventTime = definition.eventTime ? definition.eventTime(value, raw) : raw.timestamp;
        watermarks.observe(partitionKey, eventTime);
        const record: StreamRecord<V> = {
          topic: raw.topic,
          partition: raw.partition,
          offset: raw.offset,
          key: raw.key?.toString('utf8') ?? null,
          value,
          headers: raw.headers,
          timestamp: raw.timestamp,
          eventTime,
          raw,
        };
        const outputs = await collectOutputs(definition.process(record, context));
        metrics.processingSeconds.observe(labels, (performance.now() - started) / 1000);
        metrics.eventTimeLagSeconds.set(
          { ...labels, topic: raw.topic, partition: String(raw.partition) },
          Math.max(0, (Date.now() - eventTime) / 1000),
        );
        return { raw, outputs };
      } catch (error) {
        const reason = reasonOf(error);
        if (isRetriable(error)) {
          if (attempt >= maxAttempts) {
            throw new StageFailedError(
              `gave up on ${raw.topic}/${raw.partition}@${raw.offset} after ${attempt} attempts: ${errorMessage(error)}`,
              { cause: error },
            );
          }
          metrics.retries.inc({ ...labels, reason });
          const delay = backoffDelay(attempt, options.retryInitialDelayMs ?? 100, options.retryMaxDelayMs ?? 10_000);
          context.logger.warn({ err: error, offset: raw.offset, attempt, delayMs: delay }, 'transient failure; retrying');
          await sleep(delay);
          continue;
        }
        metrics.errors.inc({ ...labels, reason });
        metrics.deadLetters.inc({ ...labels, topic: raw.topic, reason });
        context.logger.warn(
          { topic: raw.topic, partition: raw.partition, offset: raw.offset, reason, error: errorMessage(error) },
          'record dead-lettered',
        );
        return { raw, outputs: [deadLetter(options.dlqTopic, definition.name, raw, error, attempt)] };
      }
    }
  }

  const eachBatch = async (payload: EachBatchPayload): Promise<void> => {
    const { batch } = payload;
    const task = tasks.get(key(batch.topic, batch.partition));
    if (!task?.accepting || payload.isStale() || stopping) return;
    metrics.consumerLag.set({ ...labels, topic: batch.topic, partition: String(batch.partition) }, Number(batch.offsetLag()));
    let capacity = maxInFlight - inFlight;
    let consumedUpTo: string | undefined;
    const admitted: RawRecord[] = [];
    for (const message of batch.messages) {
      if (task.isDuplicate(message.offset)) {
        consumedUpTo = message.offset;
        continue;
      }
      if (capacity <= 0) break;
      admitted.push({
        topic: batch.topic,
        partition: batch.partition,
        offset: message.offset,
        key: message.key,
        value: message.value,
        headers: headersOf(message.headers),
        timestamp: Number(message.timestamp),
      });
      capacity--;
      consumedUpTo = message.offset;
    }
    task.admit(admitted);
    if (admitted.length > 0) metrics.recordsIn.inc({ ...labels, topic: batch.topic }, admitted.length);
    // The rest of the batch (beyond capacity) is fetched again once partitions resume.
    if (consumedUpTo !== undefined) payload.resolveOffset(consumedUpTo);
    await Promise.resolve();
  };

  // ---- lifecycle ---------------------------------------------------------------------------

  consumer.on(consumer.events.GROUP_JOIN, ({ payload }) => {
    joined = true;
    rebalances++;
    if (rebalances > 1) metrics.rebalances.inc(labels);
    logger.info({ assignment: payload.memberAssignment, generation: rebalances }, 'joined the consumer group');
    reconcile(payload.memberAssignment);
  });
  consumer.on(consumer.events.REBALANCING, () => {
    joined = false;
  });
  consumer.on(consumer.events.CRASH, ({ payload }) => {
    if (!payload.restart) fail(new StageFailedError(`the consumer crashed: ${errorMessage(payload.error)}`, { cause: payload.error }));
  });

  async function shutdown(): Promise<void> {
    stopping = true;
    const drained = await Promise.all([...tasks.values()].map((task) => task.drain(10_000)));
    if (drained.some((ok) => !ok)) logger.warn('some in-flight records were not committed before stopping; they will be processed again');
    await consumer.disconnect().catch(() => undefined);
    await Promise.all([...tasks.values()].map((task) => task.close()));
    await Promise.all(closing.values());
    tasks.clear();
    await committers.close();
    await admin.disconnect().catch(() => undefined);
  }

  await retryKafka(() => admin.connect());
  if ((definition.stores ?? []).length > 0) {
    const metadata = await retryKafka(() => admin.fetchTopicMetadata({ topics: [...definition.inputs] }));
    const changelogs: TopicSpec[] = (definition.stores ?? []).flatMap((store) =>
      metadata.topics.map((input) => ({
        name: changelogTopic(store.name, input.name),
        partitions: input.partitions.length,
        config: changelogConfig(store),
      })),
    );
    await retryKafka(() => ensureTopics(admin, changelogs, logger));
  }
  await retryKafka(() => consumer.connect());
  for (const topic of definition.inputs) await consumer.subscribe({ topic, fromBeginning: options.fromBeginning ?? true });
  await consumer.run({ autoCommit: false, eachBatchAutoResolve: false, eachBatch });
  logger.info({ inputs: definition.inputs, guarantee, groupId: options.groupId, maxInFlight }, 'stage started');

  const partitioner = Partitioners.DefaultPartitioner();
  const partitionMetadataCache = new Map<string, { at: number; partitions: PartitionMetadata[] }>();
  const partitionOf = async (entityKey: string, inputTopic?: string): Promise<{ topic: string; partition: number }> => {
    const topic = inputTopic ?? definition.inputs[0] ?? '';
    // Partition counts change rarely (and only upwards): cached for a few seconds per topic.
    let cached = partitionMetadataCache.get(topic);
    if (!cached || cached.at < Date.now() - 5_000) {
      const metadata = await admin.fetchTopicMetadata({ topics: [topic] });
      cached = { at: Date.now(), partitions: metadata.topics[0]?.partitions ?? [] };
      partitionMetadataCache.set(topic, cached);
    }
    const partitionMetadata = cached.partitions;
    // The producers' partitioner (murmur2, as Kafka's Java client): the key's partition exactly.
    return { topic, partition: partitioner({ topic, partitionMetadata, message: { key: entityKey, value: null } }) };
  };

  return {
    done,
    async query<V>(store: string, entityKey: string, inputTopic?: string): Promise<QueryResult<V>> {
      const { topic, partition } = await partitionOf(entityKey, inputTopic);
      const stores = tasks.get(key(topic, partition))?.taskStores;
      if (stores) return { owned: true, partition, value: await stores.store<KeyValueStore<V>>(store).get(entityKey) };
      const described = await admin.describeGroups([options.groupId]);
      const owner = described.groups[0]?.members.find((member) => {
        const assignment = AssignerProtocol.MemberAssignment.decode(member.memberAssignment);
        return assignment?.assignment[topic]?.includes(partition) ?? false;
      });
      return {
        owned: false,
        partition,
        owner: owner ? { memberId: owner.memberId, clientId: owner.clientId, host: owner.clientHost } : undefined,
      };
    },
    // eslint-disable-next-line @typescript-eslint/no-unnecessary-type-parameters -- see RunningStage.windows
    async windows<V>(store: string, entityKey: string, from: number, to: number) {
      const { topic, partition } = await partitionOf(entityKey);
      const stores = tasks.get(key(topic, partition))?.taskStores;
      if (!stores) return { owned: false, partition, windows: [] };
      return { owned: true, partition, windows: await stores.store<WindowStore<V>>(store).fetch(entityKey, from, to) };
    },
    async entries<V>(store: string): Promise<[string, V][]> {
      const all: [string, V][] = [];
      for (const task of tasks.values()) {
        const stores = task.taskStores;
        if (stores) all.push(...(await stores.store<KeyValueStore<V>>(store).range()));
      }
      return all;
    },
    status: () => ({
      stage: definition.name,
      guarantee,
      joined,
      ready: joined && failure === undefined && [...tasks.values()].every((task) => task.status === 'running'),
      failed: failure !== undefined,
      inFlight,
      maxInFlight,
      paused: backpressurePaused,
      assigned: [...tasks.keys()],
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

/** Key-value changelogs are compacted; window changelogs also expire after the store's retention. */
function changelogConfig(store: StoreSpec): Record<string, string> {
  // A commit's changelog batch can hold many large values (entity histories): allow 16 MiB batches.
  const size = { 'max.message.bytes': String(16 * 1024 * 1024) };
  if (store.kind === 'window')
    return { 'cleanup.policy': 'compact,delete', 'retention.ms': String(store.retentionMs + 86_400_000), ...size };
  return { 'cleanup.policy': 'compact', ...size };
}
