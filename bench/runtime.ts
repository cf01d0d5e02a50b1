import { randomBytes } from 'node:crypto';
import { loadConfig } from '../common/config.js';
import { createLogger } from '../common/logger.js';
import { createKafka, startEphemeralKafka } from '../kafka/index.js';
import { createMetricsRegistry } from '../common/metrics.js';
import { AvroSerde, avroType, RegistryHttpClient, startSchemaRegistry } from '../schemas/index.js';
import { transactions } from '../examples/fraud/sources.js';
import { runStage, type Guarantee } from '../streams/runtime/index.js';
import { printTable } from './report.js';
import { retryKafka } from '../kafka/index.js';

/**
 * Records/s through a decode → map → encode stage (Avro, Confluent wire format) under each
 * guarantee, beside kafkajs' raw consume and produce rates on the same data. One stage process,
 * in this process; the broker is a throw-away local one.
 */
const RECORDS = 100_000;
const PARTITIONS = 6;

export async function main(): Promise<void> {
  const config = loadConfig();
  const logger = createLogger('warn', 'bench');
  const cluster = await startEphemeralKafka(config, logger, '1g');
  const registry = await startSchemaRegistry({ brokers: cluster.brokers, topic: '_schemas', host: '127.0.0.1', port: 0, logger });
  const kafka = createKafka({ brokers: cluster.brokers, clientId: 'bench-runtime' });
  const rows: Record<string, string | number>[] = [];
  try {
    const schema = transactions.eventsSchema;
    const type = avroType(schema);
    const id = await new RegistryHttpClient(registry.url).register('bench-value', schema);
    const serde = new AvroSerde(registry.url, type);
    const input = `bench-in-${randomBytes(3).toString('hex')}`;
    const admin = kafka.admin();
    await admin.connect();
    const topics = [input, 'dlq', ...(['exactly_once', 'at_least_once'] as const).map((guarantee) => `${input}-${guarantee}`)];
    await retryKafka(() =>
      admin.createTopics({
        waitForLeaders: true,
        topics: topics.map((topic) => ({ topic, numPartitions: PARTITIONS, replicationFactor: 1 })),
      }),
    );

    // Input: RECORDS Avro-encoded transactions.
    const producer = kafka.producer({ idempotent: true, maxInFlightRequests: 1 });
    await producer.connect();
    let started = performance.now();
    for (let start = 0; start < RECORDS; start += 2_000) {
      const messages = [];
      for (let i = start; i < Math.min(RECORDS, start + 2_000); i++) {
        const value = {
          transaction_id: `tx-${i}`,
          card_id: `card-${i % 5_000}`,
          merchant_id: `m-${i % 700}`,
          merchant_category: '5411',
          amount: (i % 10_000) / 100,
          currency: 'EUR',
          country: 'NL',
          channel: 'ONLINE',
          timestamp: 1_795_000_000_000 + i,
          event_id: `transactions:tx-${i}`,
          event_time: 1_795_000_000_000 + i,
          ingest_time: 1_795_000_000_000 + i,
        };
        messages.push({ key: value.card_id, value: await serde.encode(id, value) });
      }
      await producer.send({ topic: input, acks: -1, messages });
    }
    const produceSeconds = (performance.now() - started) / 1000;
    await producer.disconnect();
    rows.push({
      pipeline: 'kafkajs produce (raw, acks=all, idempotent)',
      records: RECORDS,
      seconds: produceSeconds.toFixed(2),
      'records/s': Math.round(RECORDS / produceSeconds),
    });

    // kafkajs raw consume of the same topic.
    const consumer = kafka.consumer({ groupId: `${input}-raw` });
    await consumer.connect();
    await consumer.subscribe({ topic: input, fromBeginning: true });
    let consumed = 0;
    await new Promise<void>((resolve) => {
      consumer.on(consumer.events.GROUP_JOIN, () => {
        started = performance.now();
      });
      void consumer.run({
        eachBatch: async ({ batch }) => {
          consumed += batch.messages.length;
          if (consumed >= RECORDS) resolve();
          await Promise.resolve();
        },
      });
    });
    const consumeSeconds = (performance.now() - started) / 1000;
    await consumer.disconnect();
    rows.push({
      pipeline: 'kafkajs consume (raw)',
      records: RECORDS,
      seconds: consumeSeconds.toFixed(2),
      'records/s': Math.round(RECORDS / consumeSeconds),
    });

    for (const guarantee of ['exactly_once', 'at_least_once'] as Guarantee[]) {
      const output = `${input}-${guarantee}`;
      const groupId = `${input}-${guarantee}-group`;
      const metrics = createMetricsRegistry(false);
      let joinedAt = 0;
      const stage = await runStage<Record<string, unknown>>(
        {
          name: `bench-${guarantee}`,
          inputs: [input],
          decode: async (raw) => (await serde.decode(raw.value ?? Buffer.alloc(0))) as Record<string, unknown>,
          eventTime: (value) => Number(value.event_time),
          process: async (record) => [
            {
              topic: output,
              key: record.key,
              value: await serde.encode(id, { ...record.value, amount: Number(record.value.amount) * 1.1 }),
            },
          ],
        },
        { brokers: cluster.brokers, groupId, dlqTopic: 'dlq', guarantee, metrics, logger },
      );
      const poll = setInterval(() => {
        if (joinedAt === 0 && stage.status().ready) joinedAt = performance.now();
      }, 5);
      while (
        (await admin.fetchOffsets({ groupId, topics: [input] }))[0]?.partitions.reduce(
          (sum, entry) => sum + Math.max(0, Number(entry.offset)),
          0,
        ) !== RECORDS
      ) {
        await new Promise((resolve) => setTimeout(resolve, 50));
      }
      const seconds = (performance.now() - joinedAt) / 1000;
      clearInterval(poll);
      await stage.stop();
      rows.push({
        pipeline: `stage decode→map→encode, ${guarantee}`,
        records: RECORDS,
        seconds: seconds.toFixed(2),
        'records/s': Math.round(RECORDS / seconds),
      });
    }
    await admin.disconnect();
  } finally {
    await registry.stop();
    await cluster.stop();
  }
  printTable(`Stream runtime on one Node.js process (${PARTITIONS} partitions, Avro events.transactions records, local broker)`, rows);
}
