import { afterAll, beforeAll, describe, expect, inject, it } from 'vitest';
import type { Admin, Kafka } from 'kafkajs';
import { silentLogger } from '../../common/logger.js';
import { createMetricsRegistry } from '../../common/metrics.js';
import { runStage, StageFailedError, type StageDefinition } from '../../streams/runtime/index.js';
import { createTopic, groupLag, testKafka, uniqueName, waitUntil } from '../helpers.js';
import { produceNumbered, readTopic } from './helpers.js';

describe('a stage on the real broker', () => {
  let kafka: Kafka;
  let admin: Admin;

  beforeAll(async () => {
    kafka = testKafka();
    admin = kafka.admin();
    await admin.connect();
  });

  afterAll(async () => {
    await admin.disconnect();
  });

  it.each(['exactly_once', 'at_least_once'] as const)('maps every input record to one output under %s', async (guarantee) => {
    const input = uniqueName('in');
    const output = uniqueName('out');
    const dlq = uniqueName('dlq');
    await createTopic(admin, input, 3);
    await createTopic(admin, output, 3);
    await createTopic(admin, dlq, 1);
    const count = 20_000;
    await produceNumbered(kafka, input, count);

    const definition: StageDefinition<string> = {
      name: 'mapper',
      inputs: [input],
      decode: (raw) => raw.value?.toString('utf8') ?? '',
      process: (record) => [{ topic: output, key: record.key, value: Buffer.from(`${record.value}:mapped`) }],
    };
    const stage = await runStage(definition, {
      brokers: inject('brokers'),
      groupId: uniqueName('mapper'),
      dlqTopic: dlq,
      guarantee,
      metrics: createMetricsRegistry(false),
      logger: silentLogger(),
      sessionTimeoutMs: 10_000,
      heartbeatIntervalMs: 1_000,
    });
    try {
      const messages = await readTopic(kafka, output, (seen) => seen.length >= count, 120_000);
      expect(messages).toHaveLength(count);
      expect(new Set(messages.map((message) => message.value)).size).toBe(count);
      expect(messages.every((message) => message.value.endsWith(':mapped'))).toBe(true);
      expect(stage.status()).toMatchObject({ ready: true, failed: false, guarantee });
    } finally {
      await stage.stop();
    }
  });

  const mapper = (input: string, output: string): StageDefinition<string> => ({
    name: 'mapper',
    inputs: [input],
    decode: (raw) => raw.value?.toString('utf8') ?? '',
    process: (record) => [{ topic: output, key: record.key, value: Buffer.from(`${record.value}:mapped`) }],
  });

  it('starts before its input topic exists: waits for the cluster to host it (retrying), then processes it', async () => {
    const input = uniqueName('late-in');
    const output = uniqueName('late-out');
    const dlq = uniqueName('dlq');
    await createTopic(admin, output, 1);
    await createTopic(admin, dlq, 1);
    let settled = false;
    const starting = runStage(mapper(input, output), {
      brokers: inject('brokers'),
      groupId: uniqueName('late'),
      dlqTopic: dlq,
      guarantee: 'at_least_once',
      metrics: createMetricsRegistry(false),
      logger: silentLogger(),
    }).finally(() => (settled = true));
    // The input appears two seconds later: until then the broker answers "does not host this topic-partition".
    await new Promise((resolve) => setTimeout(resolve, 2_000));
    expect(settled).toBe(false);
    await createTopic(admin, input, 2);
    await produceNumbered(kafka, input, 1_000);
    const stage = await starting;
    try {
      const messages = await readTopic(kafka, output, (seen) => seen.length >= 1_000, 60_000);
      expect(messages).toHaveLength(1_000);
      expect(stage.status()).toMatchObject({ failed: false });
    } finally {
      await stage.stop();
    }
  });

  it('moves past aborted transactions larger than one fetch (kafkajs skips them without handing them over)', async () => {
    const input = uniqueName('aborted-in');
    const output = uniqueName('aborted-out');
    const dlq = uniqueName('dlq');
    await createTopic(admin, input, 1);
    await createTopic(admin, output, 1);
    await createTopic(admin, dlq, 1);
    const stage = await runStage(mapper(input, output), {
      brokers: inject('brokers'),
      groupId: uniqueName('aborted'),
      dlqTopic: dlq,
      guarantee: 'exactly_once',
      // Small fetches: the aborted transaction below spans several of them.
      maxBytesPerPartition: 16 * 1024,
      metrics: createMetricsRegistry(false),
      logger: silentLogger(),
    });
    try {
      await produceNumbered(kafka, input, 100);
      await readTopic(kafka, output, (seen) => seen.length >= 100, 60_000, 0);
      // 200 KiB in a transaction that aborts, then more records: the task continues at the first
      // aborted record, which no fetch hands over.
      const producer = kafka.producer({ transactionalId: uniqueName('aborter'), idempotent: true, maxInFlightRequests: 1 });
      await producer.connect();
      const transaction = await producer.transaction();
      for (let batch = 0; batch < 10; batch++)
        await transaction.send({
          topic: input,
          messages: Array.from({ length: 20 }, (_, index) => ({ key: `aborted-${batch}-${index}`, value: Buffer.alloc(1_024, 97) })),
        });
      await transaction.abort();
      await producer.disconnect();
      await produceNumbered(kafka, input, 100);
      const messages = await readTopic(kafka, output, (seen) => seen.length >= 200, 60_000);
      expect(messages).toHaveLength(200);
      expect(messages.filter((message) => message.value.startsWith('a'))).toEqual([]);
      expect(stage.status()).toMatchObject({ failed: false });
    } finally {
      await stage.stop();
    }
  });

  it.each([
    ['admitted at once', 10_000],
    ['held beyond an in-flight bound of 10', 10],
  ])(
    'reads a transactional input live without fetching a batch twice (kafkajs resolves the marker after a batch): %s',
    async (_, maxInFlight) => {
      const input = uniqueName('txn-in');
      const output = uniqueName('txn-out');
      const dlq = uniqueName('dlq');
      await createTopic(admin, input, 1);
      await createTopic(admin, output, 1);
      await createTopic(admin, dlq, 1);
      const metrics = createMetricsRegistry(false);
      const groupId = uniqueName('txn');
      const stage = await runStage(mapper(input, output), {
        brokers: inject('brokers'),
        groupId,
        dlqTopic: dlq,
        guarantee: 'exactly_once',
        fetchMinBytes: 1,
        maxInFlight,
        metrics,
        logger: silentLogger(),
      });
      try {
        await waitUntil(() => stage.status().ready, 60_000, 'the stage to be ready');
        // 40 transactions of 25 records while the stage reads: its fetches end on their markers.
        const producer = kafka.producer({ transactionalId: uniqueName('writer'), idempotent: true, maxInFlightRequests: 1 });
        await producer.connect();
        for (let round = 0; round < 40; round++) {
          const transaction = await producer.transaction();
          await transaction.send({
            topic: input,
            messages: Array.from({ length: 25 }, (_, index) => ({ key: `k${index}`, value: `value-${round * 25 + index}` })),
          });
          await transaction.commit();
          await new Promise((resolve) => setTimeout(resolve, 20));
        }
        await producer.disconnect();
        const messages = await readTopic(kafka, output, (seen) => seen.length >= 1_000, 60_000);
        expect(messages).toHaveLength(1_000);
        const total = async (name: string): Promise<number> =>
          (await metrics.getSingleMetric(name)?.get())?.values.reduce((sum, value) => sum + value.value, 0) ?? 0;
        // Every record fetched once: a batch fetched from beyond where the task continued was fetched
        // again (and counted again).
        expect({ fetched: await total('sluice_records_fetched_total'), admitted: await total('sluice_records_in_total') }).toEqual({
          fetched: 1_000,
          admitted: 1_000,
        });
        // The group commits the position past the last transaction's marker, as Kafka Streams does:
        // no lag at the end of the input (the offset after the last record left a lag of 1).
        const [end] = await admin.fetchTopicOffsets(input);
        expect(end?.high).toBe('1040');
        let lag = Number.NaN;
        await waitUntil(
          async () => (lag = await groupLag(admin, groupId, input)) === 0,
          15_000,
          'the group to commit the end of its input',
        ).catch((error: unknown) => {
          throw new Error(`lag ${lag} at the end of the input`, { cause: error });
        });
      } finally {
        await stage.stop();
      }
    },
  );

  it('fails naming an input topic that never appears, after its wait, not with the bare broker error', async () => {
    const present = uniqueName('present');
    const missing = uniqueName('missing');
    const dlq = uniqueName('dlq');
    await createTopic(admin, present, 1);
    await createTopic(admin, dlq, 1);
    const started = Date.now();
    const starting = runStage(
      { ...mapper(present, present), inputs: [present, missing] },
      {
        brokers: inject('brokers'),
        groupId: uniqueName('missing'),
        dlqTopic: dlq,
        guarantee: 'at_least_once',
        sourceTopicTimeoutMs: 3_000,
        metrics: createMetricsRegistry(false),
        logger: silentLogger(),
      },
    );
    const error: unknown = await starting.then(
      async (stage) => {
        await stage.stop();
        return undefined;
      },
      (failure: unknown) => failure,
    );
    expect(error).toBeInstanceOf(StageFailedError);
    expect((error as Error).message).toBe(`the input topic ${missing} of mapper does not exist (waited 3 s for the cluster to host it)`);
    expect(((error as Error).cause as { type?: string } | undefined)?.type).toBe('UNKNOWN_TOPIC_OR_PARTITION');
    // It waited (retrying with backoff) rather than failing at the first answer, and no longer than asked.
    expect(Date.now() - started).toBeGreaterThanOrEqual(3_000);
    expect(Date.now() - started).toBeLessThan(20_000);
  });
});
