import { afterAll, beforeAll, describe, expect, inject, it } from 'vitest';
import type { Admin, Kafka } from 'kafkajs';
import { silentLogger } from '../../common/logger.js';
import { createMetricsRegistry, type MetricsRegistry } from '../../common/metrics.js';
import {
  AvroSerde,
  platformSubjects,
  sourceSubjects,
  registerSchemas,
  startSchemaRegistry,
  type RunningSchemaRegistry,
} from '../../schemas/index.js';
import { ingestStage } from '../../streams/ingest/stage.js';
import { DLQ_HEADERS, runStage, type RunningStage } from '../../streams/runtime/index.js';
import { createTopic, removeTempDirs, tempDir, testKafka, uniqueName, waitUntil } from '../helpers.js';
import { readTopic } from './helpers.js';
import demo from '../../examples/fraud/sluice.config.js';
import { transactions } from '../../examples/fraud/sources.js';

const VALID = 1_000;
const PER_BAD_KIND = 20;
const DUPLICATES = 50;

describe('ingest: poison pills, quality problems and duplicates on the real broker', () => {
  const prefix = `${uniqueName('ingest')}.`;
  let kafka: Kafka;
  let admin: Admin;
  let registry: RunningSchemaRegistry;
  let stage: RunningStage;
  let metrics: MetricsRegistry;
  let ids: Map<string, number>;

  beforeAll(async () => {
    kafka = testKafka();
    admin = kafka.admin();
    await admin.connect();
    for (const topic of ['raw.transactions', 'events.transactions', 'dlq', 'monitoring.quality'])
      await createTopic(admin, `${prefix}${topic}`, 3);
    registry = await startSchemaRegistry({
      brokers: inject('brokers'),
      topic: `${prefix}_schemas`,
      host: '127.0.0.1',
      port: 0,
      logger: silentLogger(),
    });
    ids = await registerSchemas(
      registry.url,
      [...platformSubjects(prefix), ...sourceSubjects(prefix, 'transactions', transactions.rawSchema, transactions.eventsSchema)],
      silentLogger(),
    );
  });

  afterAll(async () => {
    await stage.stop();
    await registry.stop();
    await admin.disconnect();
    await removeTempDirs();
  });

  const metricTotal = async (name: string): Promise<number> => {
    const metric = (await metrics.getMetricsAsJSON()).find((entry) => entry.name === name);
    return (metric?.values ?? []).reduce((sum, value) => sum + value.value, 0);
  };

  it('processes every valid record once, dead-letters every bad one with its reason, and keeps running', async () => {
    const rawId = ids.get(`${prefix}raw.transactions-value`)!;
    const serde = new AvroSerde(registry.url);
    const now = Date.now();
    const transaction = (i: number) => ({
      transaction_id: `tx-${i}`,
      card_id: `card-${i % 37}`,
      merchant_id: `m-${i % 13}`,
      merchant_category: '5411',
      amount: 10 + (i % 500) / 100,
      currency: 'EUR',
      country: 'NL',
      channel: 'ONLINE',
      timestamp: now - 60_000 + i,
    });
    const valid: { key: string; value: Buffer }[] = [];
    for (let i = 0; i < VALID; i++) {
      const value = transaction(i);
      valid.push({ key: value.card_id, value: i % 2 === 0 ? await serde.encode(rawId, value) : Buffer.from(JSON.stringify(value)) });
    }
    const good = await serde.encode(rawId, transaction(5));
    const badKinds: [string, (i: number) => Buffer][] = [
      ['SLUICE_UNDECODABLE', (i) => Buffer.concat([Buffer.from([7, 0, 0, 0, 1]), Buffer.from(`x${i}`)])], // bad magic byte
      ['SLUICE_UNKNOWN_SCHEMA_ID', (i) => Buffer.concat([Buffer.from([0, 0x7f, 0xff, 0xff, 0xf0]), Buffer.from(`body${i}`)])],
      ['SLUICE_AVRO_BODY', () => good.subarray(0, good.length - 6)], // truncated Avro
      ['SLUICE_JSON_NOT_OBJECT', (i) => Buffer.from(JSON.stringify([i, 'not', 'an', 'object']))],
      ['SLUICE_SCHEMA_VIOLATION', (i) => Buffer.from(JSON.stringify({ ...transaction(i), amount: 'ten euros' }))], // wrong field type
      ['SLUICE_VALIDATION_OUT_OF_RANGE', (i) => Buffer.from(JSON.stringify({ ...transaction(i), amount: -3 }))], // quality rule
      ['Error', (i) => Buffer.from(JSON.stringify({ ...transaction(VALID + i), merchant_id: 'm-explode' }))], // the user function throws
    ];
    const bad: { key: string; value: Buffer; reason: string }[] = [];
    for (const [reason, make] of badKinds) for (let i = 0; i < PER_BAD_KIND; i++) bad.push({ key: `card-${i}`, value: make(i), reason });
    const duplicates = valid.slice(0, DUPLICATES);

    // Interleave: bad records and duplicates spread between the valid ones.
    const messages: { key: string; value: Buffer }[] = [];
    const extra = [...bad, ...duplicates];
    const step = Math.floor(valid.length / extra.length);
    valid.forEach((message, index) => {
      messages.push(message);
      const interleaved = index % step === 0 ? extra[index / step] : undefined;
      if (interleaved) messages.push(interleaved);
    });
    messages.push(...extra.slice(Math.ceil(valid.length / step)));
    expect(messages).toHaveLength(VALID + bad.length + DUPLICATES);

    const producer = kafka.producer({ idempotent: true, maxInFlightRequests: 1 });
    await producer.connect();
    await producer.send({ topic: `${prefix}raw.transactions`, acks: -1, messages });
    await producer.disconnect();

    metrics = createMetricsRegistry(false);
    const definition = ingestStage({
      sources: demo.sources.filter((source) => source.name === 'transactions'),
      topicPrefix: prefix,
      serdeFor: (reader) => new AvroSerde(registry.url, reader),
      schemaIds: {
        events: { transactions: ids.get(`${prefix}events.transactions-value`)! },
        quality: ids.get(`${prefix}monitoring.quality-value`)!,
      },
      metrics,
      qualityWindowMs: 1_000,
    });
    stage = await runStage(
      {
        ...definition,
        process: (record, context) => {
          if (record.value.merchant_id === 'm-explode')
            throw new Error(`merchant ${record.value.merchant_id as string} makes the user function throw`);
          return definition.process(record, context);
        },
      },
      {
        brokers: inject('brokers'),
        groupId: `${prefix}ingest`,
        dlqTopic: `${prefix}dlq`,
        metrics,
        logger: silentLogger(),
        stateDir: await tempDir('sluice-ingest-state-'),
        topicPrefix: prefix,
      },
    );

    const events = await readTopic(kafka, `${prefix}events.transactions`, (seen) => seen.length >= VALID, 60_000, 1_500);
    const deadLetters = await readTopic(kafka, `${prefix}dlq`, (seen) => seen.length >= bad.length, 60_000, 1_000);

    expect(events).toHaveLength(VALID);
    expect(new Set(events.map((event) => event.headers['sluice.event_id'])).size).toBe(VALID);
    expect(deadLetters).toHaveLength(bad.length);
    const reasons = new Map<string, number>();
    for (const letter of deadLetters) {
      const reason = letter.headers[DLQ_HEADERS.errorCode]!;
      reasons.set(reason, (reasons.get(reason) ?? 0) + 1);
      expect(letter.headers[DLQ_HEADERS.stage]).toBe('ingest');
      expect(letter.headers[DLQ_HEADERS.topic]).toBe(`${prefix}raw.transactions`);
      expect(letter.headers[DLQ_HEADERS.errorMessage]).toBeTruthy();
      expect(Number(letter.headers[DLQ_HEADERS.offset])).toBeGreaterThanOrEqual(0);
    }
    expect(Object.fromEntries(reasons)).toEqual(Object.fromEntries(badKinds.map(([reason]) => [reason, PER_BAD_KIND])));

    await waitUntil(async () => (await metricTotal('sluice_dead_letters_total')) === bad.length, 10_000, 'dead-letter counters');
    expect(await metricTotal('sluice_dead_letters_total')).toBe(bad.length);
    expect(await metricTotal('sluice_duplicates_dropped_total')).toBe(DUPLICATES);
    expect(await metricTotal('sluice_quality_violations_total')).toBeGreaterThanOrEqual(PER_BAD_KIND * 4);
    expect(stage.status()).toMatchObject({ ready: true, failed: false });

    // Still running: a record produced now goes through.
    const late = await serde.encode(rawId, transaction(VALID + 500));
    const again = kafka.producer();
    await again.connect();
    await again.send({ topic: `${prefix}raw.transactions`, messages: [{ key: 'card-x', value: late }] });
    await again.disconnect();
    const after = await readTopic(kafka, `${prefix}events.transactions`, (seen) => seen.length >= VALID + 1, 30_000, 500);
    expect(after).toHaveLength(VALID + 1);
    // Quality reports for closed one-second windows reached monitoring.quality.
    const reports = await readTopic(kafka, `${prefix}monitoring.quality`, (seen) => seen.length > 0, 30_000, 500);
    expect(reports.length).toBeGreaterThan(0);
  });
});
