import { randomBytes } from 'node:crypto';
import { createRequire } from 'node:module';
import { loadConfig } from '../common/config.js';
import { createLogger } from '../common/logger.js';
import { createKafka, startEphemeralKafka } from '../kafka/index.js';
import { printTable } from './report.js';
import { retryKafka } from '../kafka/index.js';

/**
 * kafkajs produce and consume throughput against the local broker (or KAFKA_BROKERS): acks=all,
 * idempotent producer, batched sends; a consumer group reading the same topic from the start.
 */
const MESSAGE_SIZES = [100, 1024];
const TOTAL_BYTES = 64 * 1024 * 1024;
const MAX_MESSAGES = 300_000;
const SEND_BATCH = 1_000;
const PARTITIONS = 6;

interface Row {
  readonly [column: string]: string | number;
}

export async function main(): Promise<void> {
  const config = loadConfig();
  const logger = createLogger('warn', 'bench');
  const cluster = await startEphemeralKafka(config, logger, '1g');
  const kafka = createKafka({ brokers: cluster.brokers, clientId: 'sluice-bench' });
  const rows: Row[] = [];
  try {
    for (const size of MESSAGE_SIZES) {
      const count = Math.min(MAX_MESSAGES, Math.floor(TOTAL_BYTES / size));
      const topic = `bench-kafka-${size}-${randomBytes(3).toString('hex')}`;
      const admin = kafka.admin();
      await admin.connect();
      await retryKafka(() =>
        admin.createTopics({ waitForLeaders: true, topics: [{ topic, numPartitions: PARTITIONS, replicationFactor: 1 }] }),
      );
      await admin.disconnect();

      const produced = await produce(kafka, topic, count, size);
      rows.push(row('produce', size, count, produced));
      const consumed = await consume(kafka, topic, count);
      rows.push(row('consume', size, count, consumed));
    }
  } finally {
    await cluster.stop();
  }
  printTable(
    `kafkajs ${kafkaVersion()} against Kafka ${config.kafka.externalBrokers ? 'at KAFKA_BROKERS' : config.kafka.version} (local, ${PARTITIONS} partitions, acks=all, idempotent producer, ${SEND_BATCH}-message sends)`,
    rows,
  );
}

function row(operation: string, size: number, count: number, seconds: number): Row {
  return {
    operation,
    'message bytes': size,
    messages: count,
    seconds: seconds.toFixed(2),
    'messages/s': Math.round(count / seconds),
    'MB/s': ((count * size) / seconds / 1e6).toFixed(1),
  };
}

async function produce(kafka: ReturnType<typeof createKafka>, topic: string, count: number, size: number): Promise<number> {
  const producer = kafka.producer({ idempotent: true, maxInFlightRequests: 1 });
  await producer.connect();
  const payload = randomBytes(size);
  const started = process.hrtime.bigint();
  for (let sent = 0; sent < count; sent += SEND_BATCH) {
    const messages = [];
    for (let i = sent; i < Math.min(count, sent + SEND_BATCH); i++) messages.push({ key: `key-${i % 10_000}`, value: payload });
    await producer.send({ topic, acks: -1, messages });
  }
  const seconds = Number(process.hrtime.bigint() - started) / 1e9;
  await producer.disconnect();
  return seconds;
}

async function consume(kafka: ReturnType<typeof createKafka>, topic: string, count: number): Promise<number> {
  const consumer = kafka.consumer({ groupId: `${topic}-group`, maxBytes: 50 * 1024 * 1024, maxBytesPerPartition: 4 * 1024 * 1024 });
  await consumer.connect();
  await consumer.subscribe({ topic, fromBeginning: true });
  let received = 0;
  let started = process.hrtime.bigint();
  // Timed from joining the group, so the join itself is not counted against throughput.
  consumer.on(consumer.events.GROUP_JOIN, () => {
    started = process.hrtime.bigint();
  });
  const done = new Promise<void>((resolve) => {
    void consumer.run({
      eachBatch: async ({ batch }) => {
        received += batch.messages.length;
        if (received >= count) resolve();
        await Promise.resolve();
      },
    });
  });
  await done;
  const seconds = Number(process.hrtime.bigint() - started) / 1e9;
  await consumer.disconnect();
  return seconds;
}

function kafkaVersion(): string {
  return (createRequire(import.meta.url)('kafkajs/package.json') as { version: string }).version;
}
