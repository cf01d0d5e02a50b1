import kafkajs, { type Consumer, type EachBatchPayload, type Producer } from 'kafkajs';
import type { Logger } from 'pino';
import { errorMessage } from '../../common/errors.js';
import { retry } from '../../common/retry.js';
import { createKafka } from '../../kafka/index.js';
import { stageMetrics } from '../runtime/metrics.js';
import { type MetricsRegistry } from '../../common/metrics.js';
import { ClickHouseError } from '../../offline/errors.js';
import { insertNew, type TableSpec } from '../../offline/tables.js';
import type { OfflineStore } from '../../offline/store.js';
import { AvroSerde } from '../../schemas/index.js';
import { deadLetter, headersOf, reasonOf, type RawRecord } from '../runtime/index.js';

const { Partitioners } = kafkajs;

/**
 * The sink: every table's topic → ClickHouse, in batches. Delivery is at-least-once (offsets are
 * committed after the insert) and writes are idempotent (rows whose natural key is present are
 * skipped), so a crash between insert and commit, a reset consumer group or a replayed topic never
 * double-counts. Records that do not decode go to the dead-letter topic, counted.
 */
export interface SinkOptions {
  readonly brokers: readonly string[];
  readonly groupId: string;
  readonly topicPrefix: string;
  readonly tables: readonly TableSpec[];
  readonly store: OfflineStore;
  readonly registryUrl: string;
  readonly dlqTopic: string;
  readonly metrics: MetricsRegistry;
  readonly logger: Logger;
  readonly maxBytesPerPartition?: number;
}

export interface RunningSink {
  /** Rows inserted and duplicates skipped so far. */
  status(): { readonly inserted: number; readonly duplicates: number; readonly deadLetters: number; readonly joined: boolean };
  stop(): Promise<void>;
  readonly done: Promise<void>;
}

export async function runSink(options: SinkOptions): Promise<RunningSink> {
  const stage = 'sink';
  const logger = options.logger.child({ stage });
  const metrics = stageMetrics(options.metrics);
  const kafka = createKafka({ brokers: options.brokers, clientId: 'sluice-sink', logger });
  const serde = new AvroSerde(options.registryUrl);
  const byTopic = new Map(options.tables.map((table) => [`${options.topicPrefix}${table.topic}`, table]));
  const consumer: Consumer = kafka.consumer({
    groupId: options.groupId,
    readUncommitted: false,
    maxWaitTimeInMs: 250,
    maxBytesPerPartition: options.maxBytesPerPartition ?? 4 * 1024 * 1024,
    allowAutoTopicCreation: false,
  });
  const producer: Producer = kafka.producer({ idempotent: true, createPartitioner: Partitioners.DefaultPartitioner });
  let inserted = 0;
  let duplicates = 0;
  let deadLetters = 0;
  let joined = false;
  let stopping = false;
  let resolveDone!: () => void;
  let rejectDone!: (error: unknown) => void;
  const done = new Promise<void>((resolve, reject) => {
    resolveDone = resolve;
    rejectDone = reject;
  });
  done.catch(() => undefined);

  // ---- inputs ------------------------------------------------------------------------------

  const eachBatch = async (payload: EachBatchPayload): Promise<void> => {
    const { batch } = payload;
    const table = byTopic.get(batch.topic);
    if (!table || batch.messages.length === 0 || payload.isStale() || stopping) return;

    // ---- transformation: records → rows (undecodable ones → dead letters) ----------------
    const rows: Record<string, unknown>[] = [];
    const failed: RawRecord[] = [];
    const errors: unknown[] = [];
    for (const message of batch.messages) {
      const headers = headersOf(message.headers);
      const meta = { partition: batch.partition, offset: message.offset, timestamp: Number(message.timestamp), key: message.key, headers };
      try {
        const value = table.avro
          ? message.value
            ? ((await serde.decode(message.value)) as Record<string, unknown>)
            : undefined
          : { bytes: message.value };
        if (value) rows.push(table.toRow(value, meta));
      } catch (error) {
        failed.push({
          topic: batch.topic,
          partition: batch.partition,
          offset: message.offset,
          key: message.key,
          value: message.value,
          headers,
          timestamp: Number(message.timestamp),
        });
        errors.push(error);
      }
    }
    metrics.recordsIn.inc({ stage, topic: batch.topic }, batch.messages.length);

    // ---- outputs: the insert, dead letters, then the offsets ----------------------------
    // The store may be briefly unavailable (a ClickHouse server restarting): retried with backoff.
    const fresh = await retry(() => insertNew(options.store, table, rows), {
      attempts: 5,
      initialDelayMs: 200,
      maxDelayMs: 5_000,
      // Syntax and schema errors (4xx) will not heal; connection problems and server errors may.
      isRetriable: (error: unknown) => !(error instanceof ClickHouseError) || error.httpStatus >= 500,
      onRetry: (error: unknown, attempt: number) => logger.warn({ err: error, table: table.name, attempt }, 'insert failed; retrying'),
    });
    inserted += fresh;
    duplicates += rows.length - fresh;
    metrics.sinkRows.inc({ table: table.name }, fresh);
    if (rows.length > fresh) metrics.sinkDuplicates.inc({ table: table.name }, rows.length - fresh);
    if (failed.length > 0) {
      const letters = failed.map((raw, index) => deadLetter(options.dlqTopic, stage, raw, errors[index], 1));
      await producer.send({
        topic: options.dlqTopic,
        acks: -1,
        messages: letters.map((letter) => ({ key: letter.key, value: letter.value, headers: letter.headers ?? {} })),
      });
      deadLetters += failed.length;
      failed.forEach((raw, index) => {
        const reason = reasonOf(errors[index]);
        metrics.deadLetters.inc({ stage, topic: raw.topic, reason });
        metrics.errors.inc({ stage, reason });
        logger.warn(
          { topic: raw.topic, partition: raw.partition, offset: raw.offset, reason, error: errorMessage(errors[index]) },
          'record dead-lettered',
        );
      });
    }
    await consumer.commitOffsets([
      { topic: batch.topic, partition: batch.partition, offset: (BigInt(batch.lastOffset()) + 1n).toString() },
    ]);
    metrics.consumerLag.set({ stage, topic: batch.topic, partition: String(batch.partition) }, Number(batch.offsetLag()));
    await payload.heartbeat();
  };

  // ---- lifecycle ---------------------------------------------------------------------------

  consumer.on(consumer.events.GROUP_JOIN, () => {
    joined = true;
  });
  consumer.on(consumer.events.CRASH, ({ payload }) => {
    if (!payload.restart) {
      logger.error({ err: payload.error }, 'the sink crashed');
      void shutdown().finally(() => rejectDone(payload.error));
    }
  });

  async function shutdown(): Promise<void> {
    stopping = true;
    await consumer.disconnect().catch(() => undefined);
    await producer.disconnect().catch(() => undefined);
  }

  await producer.connect();
  await consumer.connect();
  for (const topic of byTopic.keys()) await consumer.subscribe({ topic, fromBeginning: true });
  await consumer.run({ autoCommit: false, partitionsConsumedConcurrently: 1, eachBatch });
  logger.info({ tables: options.tables.length, store: options.store.description }, 'sink started');

  return {
    done,
    status: () => ({ inserted, duplicates, deadLetters, joined }),
    async stop() {
      if (stopping) return;
      await shutdown();
      resolveDone();
    },
  };
}
