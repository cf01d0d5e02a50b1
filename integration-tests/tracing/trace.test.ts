import fs from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { InMemorySpanExporter, type ReadableSpan } from '@opentelemetry/sdk-trace-base';
import type { Admin, Consumer, Kafka, KafkaMessage } from 'kafkajs';
import { afterAll, beforeAll, describe, expect, inject, it } from 'vitest';
import { launch, type Launched } from '../../app/launch.js';
import { loadConfig } from '../../common/config.js';
import { silentLogger } from '../../common/logger.js';
import { createMetricsRegistry } from '../../common/metrics.js';
import { startTracing, type Tracing } from '../../common/tracing-sdk.js';
import demo from '../../examples/fraud/sluice.config.js';
import { setUpDemo, type DemoSetup } from '../pipeline/demo-setup.js';
import { testKafka, uniqueName, waitUntil } from '../helpers.js';

/**
 * One event produced with a W3C traceparent header goes through the fused pipeline: ingest,
 * features and inference each leave a span under the producer's trace (with state-read and
 * scoring spans inside), spans are collected by an in-memory exporter, and the prediction record
 * carries the trace context on.
 */
describe('tracing across topics', () => {
  const prefix = `${uniqueName('trace')}.`;
  const exporter = new InMemorySpanExporter();
  let tracing: Tracing;
  let kafka: Kafka;
  let admin: Admin;
  let consumer: Consumer | undefined;
  let setup: DemoSetup;
  let launched: Launched | undefined;
  let dataDir: string;

  beforeAll(async () => {
    tracing = startTracing({ serviceName: 'sluice-trace-test', exporter, simple: true });
    kafka = testKafka();
    admin = kafka.admin();
    await admin.connect();
    dataDir = await fs.mkdtemp(path.join(os.tmpdir(), 'sluice-trace-'));
    const modelsDir = path.join(dataDir, 'models');
    setup = await setUpDemo({ kafka, admin, brokers: inject('brokers'), prefix, partitions: 1, modelsDir });
    const config = loadConfig({ SLUICE_DATA_DIR: dataDir, SLUICE_TOPIC_PREFIX: prefix, KAFKA_BROKERS: inject('brokers').join(',') });
    launched = await launch('pipeline', {
      config,
      topology: demo,
      brokers: inject('brokers'),
      registryUrl: setup.registry.url,
      schemaIds: setup.ids,
      metrics: createMetricsRegistry(false),
      logger: silentLogger(),
      modelsDir,
      tracer: tracing.tracer,
    });
    const running = launched;
    await waitUntil(
      () => running.stage.status().ready && running.watchers.get('fraud')?.watcher.current() !== undefined,
      120_000,
      'the pipeline to run with its champion loaded',
    );
  });

  afterAll(async () => {
    await consumer?.disconnect();
    await launched?.stop();
    await setup.registry.stop();
    await admin.disconnect();
    await tracing.shutdown();
    await fs.rm(dataDir, { recursive: true, force: true });
  });

  it('yields ingest, features and inference spans under the producer trace id, and the prediction carries it', async () => {
    const traceId = 'a1b2c3d4e5f60718293a4b5c6d7e8f90';
    const producerSpan = '1122334455667788';
    const producer = kafka.producer();
    await producer.connect();
    await producer.send({
      topic: `${prefix}raw.transactions`,
      messages: [
        {
          key: 'card-traced',
          value: JSON.stringify({
            transaction_id: 'traced-1',
            card_id: 'card-traced',
            merchant_id: 'm1',
            merchant_category: '5411',
            amount: 42.5,
            currency: 'EUR',
            country: 'NL',
            timestamp: Date.now(),
          }),
          headers: { traceparent: `00-${traceId}-${producerSpan}-01` },
        },
      ],
    });
    await producer.disconnect();

    const predictions: KafkaMessage[] = [];
    consumer = kafka.consumer({ groupId: `${prefix}reader`, readUncommitted: false });
    await consumer.connect();
    await consumer.subscribe({ topic: `${prefix}predictions.fraud`, fromBeginning: true });
    await consumer.run({ eachMessage: ({ message }) => Promise.resolve(void predictions.push(message)) });
    await waitUntil(() => predictions.length > 0, 60_000, 'the prediction');

    const prediction = predictions[0]!;
    const carried = prediction.headers?.traceparent?.toString() ?? '';
    expect(carried).toMatch(new RegExp(`^00-${traceId}-[0-9a-f]{16}-01$`));

    await waitUntil(() => exporter.getFinishedSpans().some((span) => span.name === 'inference-fraud'), 10_000, 'the inference span');
    const spans = exporter.getFinishedSpans().filter((span) => span.spanContext().traceId === traceId);
    const named = (name: string): ReadableSpan => {
      const found = spans.find((span) => span.name === name);
      if (!found) throw new Error(`no ${name} span in trace ${traceId}: ${spans.map((span) => span.name).join(', ')}`);
      return found;
    };
    const ingest = named('ingest');
    const features = named('features');
    const inference = named('inference-fraud');
    // The chain: producer → ingest → (events record) → features and inference.
    expect(ingest.parentSpanContext?.spanId).toBe(producerSpan);
    expect(features.parentSpanContext?.spanId).toBe(ingest.spanContext().spanId);
    expect(inference.parentSpanContext?.spanId).toBe(ingest.spanContext().spanId);
    expect(named('state read').parentSpanContext?.spanId).toBe(features.spanContext().spanId);
    expect(named('score').parentSpanContext?.spanId).toBe(inference.spanContext().spanId);
    // The prediction record names the inference span as its parent.
    expect(carried.split('-')[2]).toBe(inference.spanContext().spanId);
    // Commits are spans of their own.
    expect(exporter.getFinishedSpans().some((span) => span.name === 'commit')).toBe(true);
  });
});
