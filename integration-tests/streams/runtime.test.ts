import { afterAll, beforeAll, describe, expect, inject, it } from 'vitest';
import type { Admin, Kafka } from 'kafkajs';
import { silentLogger } from '../../common/logger.js';
import { createMetricsRegistry } from '../../common/metrics.js';
import { runStage, type StageDefinition } from '../../streams/runtime/index.js';
import { createTopic, testKafka, uniqueName } from '../helpers.js';
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
});
