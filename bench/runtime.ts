import { randomBytes } from 'node:crypto';
import { loadConfig } from '../common/config.js';
import { createLogger } from '../common/logger.js';
import { createKafka, startEphemeralKafka } from '../kafka/index.js';
import { createMetricsRegistry } from '../common/metrics.js';
import { AvroSerde, avroType, RegistryHttpClient, startSchemaRegistry } from '../schemas/index.js';
import { transactions } from '../examples/fraud/sources.js';
import { runStage, type Guarantee, type OutputRecord, type StreamRecord } from '../streams/runtime/index.js';
import path from 'node:path';
import { PROJECT_ROOT } from '../common/config.js';
import { printTable } from './report.js';
import { retryKafka } from '../kafka/index.js';
import { eventsArgument } from './arguments.js';
import { COMMITTED_POLL_MS, DEADLINE_MS, runToEnd } from './run-to-end.js';

/**
 * Records/s through a decode → map → encode stage (Avro, Confluent wire format) under each
 * guarantee, beside kafkajs on the same records: producing them (encoded before the timing),
 * consuming them, and a raw pipe consuming and producing them (one output per input, idempotent,
 * acks=all; without and with a transaction per fetched batch, `bench/fixtures/raw-pipe.ts`), and
 * the exactly-once stage's rate as a share of the pipes'. The stage runs in this process, each pipe
 * as its own; both are timed from their group's first committed offset to the last (start-up left
 * out; `runToEnd`), on a throw-away local broker. `--events=<n>` sets the records (1,000,000: the pipes take about 3 s of it).
 */
const RECORDS = eventsArgument(1_000_000);
const PARTITIONS = 6;
/** The raw pipes (`bench/fixtures/raw-pipe.ts` modes): no transactions, and one per fetched batch. */
const PIPES = [
  { mode: 'plain', label: 'kafkajs consume → produce (raw pipe, offsets committed after)', short: 'raw pipe' },
  { mode: 'exactly-once', label: 'kafkajs consume → produce (raw pipe, a transaction per batch)', short: 'transactional raw pipe' },
] as const;
/** The stage's runs: async functions under each guarantee, and the serde's synchronous path exactly-once. */
const STAGES: readonly { name: string; guarantee: Guarantee; synchronous: boolean; label: string; short: string }[] = [
  {
    name: 'exactly_once',
    guarantee: 'exactly_once',
    synchronous: false,
    label: 'stage decode→map→encode, exactly_once',
    short: 'exactly-once stage',
  },
  {
    name: 'at_least_once',
    guarantee: 'at_least_once',
    synchronous: false,
    label: 'stage decode→map→encode, at_least_once',
    short: 'at-least-once stage',
  },
  {
    name: 'exactly_once-sync',
    guarantee: 'exactly_once',
    synchronous: true,
    label: 'stage decode→map→encode, exactly_once, synchronous serde',
    short: 'exactly-once stage, synchronous serde',
  },
];

export async function main(): Promise<void> {
  const config = loadConfig();
  const logger = createLogger('warn', 'bench');
  const cluster = await startEphemeralKafka(config, logger, '1g');
  const registry = await startSchemaRegistry({ brokers: cluster.brokers, topic: '_schemas', host: '127.0.0.1', port: 0, logger });
  const kafka = createKafka({ brokers: cluster.brokers, clientId: 'bench-runtime' });
  const rows: Record<string, string | number>[] = [];
  const admin = kafka.admin();
  try {
    const schema = transactions.eventsSchema;
    const type = avroType(schema);
    const id = await new RegistryHttpClient(registry.url).register('bench-value', schema);
    const serde = new AvroSerde(registry.url, type);
    const input = `bench-in-${randomBytes(3).toString('hex')}`;
    await admin.connect();
    const stageOutputs = STAGES.map((variant) => `${input}-${variant.name}`);
    const pipeOutputs = PIPES.map((pipe) => `${input}-raw-${pipe.mode}`);
    const topics = [input, ...stageOutputs, ...STAGES.map((variant) => `${input}-${variant.name}-dlq`), ...pipeOutputs];
    await retryKafka(() =>
      admin.createTopics({
        waitForLeaders: true,
        topics: topics.map((topic) => ({ topic, numPartitions: PARTITIONS, replicationFactor: 1 })),
      }),
    );

    // Input: RECORDS Avro-encoded transactions, encoded before the produce is timed.
    const batches: { key: string; value: Buffer }[][] = [];
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
      batches.push(messages);
    }
    const producer = kafka.producer({ idempotent: true, maxInFlightRequests: 1 });
    await producer.connect();
    let started = performance.now();
    for (const messages of batches) await producer.send({ topic: input, acks: -1, messages });
    // Not kept through the stages' runs (in this process): their collector would carry it.
    batches.length = 0;
    const produceSeconds = (performance.now() - started) / 1000;
    await producer.disconnect();
    rows.push({
      pipeline: 'kafkajs produce (raw, acks=all, idempotent; encoded before)',
      records: RECORDS,
      seconds: produceSeconds.toFixed(2),
      'records/s': Math.round(RECORDS / produceSeconds),
    });

    // kafkajs raw consume of the same topic.
    const consumer = kafka.consumer({ groupId: `${input}-raw` });
    await consumer.connect();
    await consumer.subscribe({ topic: input, fromBeginning: true });
    let consumed = 0;
    await new Promise<void>((resolve, reject) => {
      consumer.on(consumer.events.GROUP_JOIN, () => {
        started = performance.now();
      });
      // A crashed consumer fails the benchmark instead of leaving it waiting.
      consumer.on(consumer.events.CRASH, (event) => reject(new Error(`the raw consumer crashed: ${String(event.payload.error)}`)));
      consumer
        .run({
          eachBatch: async ({ batch }) => {
            consumed += batch.messages.length;
            if (consumed >= RECORDS) resolve();
            await Promise.resolve();
          },
        })
        .catch(reject);
    });
    const consumeSeconds = (performance.now() - started) / 1000;
    await consumer.disconnect();
    rows.push({
      pipeline: 'kafkajs consume (raw)',
      records: RECORDS,
      seconds: consumeSeconds.toFixed(2),
      'records/s': Math.round(RECORDS / consumeSeconds),
    });

    // kafkajs consuming and producing the same records, each pipe in its own process.
    const pipeRates = new Map<string, number>();
    for (const pipe of PIPES) {
      const group = `${input}-raw-${pipe.mode}-group`;
      const { seconds } = await runToEnd(admin, {
        name: `the raw kafkajs pipe (${pipe.mode})`,
        input,
        records: RECORDS,
        group,
        command: process.execPath,
        args: [
          // This process's flags (the stages run in it): the same young generation, tsx.
          ...process.execArgv.filter((flag) => !flag.startsWith('--cpu-prof')),
          path.join(PROJECT_ROOT, 'bench', 'fixtures', 'raw-pipe.ts'),
          cluster.brokers.join(','),
          group,
          input,
          `${input}-raw-${pipe.mode}`,
          pipe.mode,
        ],
      });
      pipeRates.set(pipe.mode, RECORDS / seconds);
      rows.push({ pipeline: pipe.label, records: RECORDS, seconds: seconds.toFixed(2), 'records/s': Math.round(RECORDS / seconds) });
    }

    // The stage as a user might write it (async functions: a promise per record), under each
    // guarantee, and exactly-once with the serde's synchronous path, as the built-in stages take it
    // (`decodeNow`/`encodeNow` answer without a promise once the schema is loaded).
    const stageRates = new Map<string, number>();
    for (const variant of STAGES) {
      const output = `${input}-${variant.name}`;
      const groupId = `${input}-${variant.name}-group`;
      const metrics = createMetricsRegistry(false);
      const outputOf = (record: StreamRecord<Record<string, unknown>>, value: Buffer): OutputRecord[] => [
        { topic: output, key: record.key, value },
      ];
      const mapped = (value: Record<string, unknown>): Record<string, unknown> => ({ ...value, amount: Number(value.amount) * 1.1 });
      const stage = await runStage<Record<string, unknown>>(
        {
          name: `bench-${variant.name}`,
          inputs: [input],
          eventTime: (value) => Number(value.event_time),
          ...(variant.synchronous
            ? {
                decode: (raw) =>
                  serde.decodeNow(raw.value ?? Buffer.alloc(0)) as Record<string, unknown> | Promise<Record<string, unknown>>,
                process: (record) => {
                  const encoded = serde.encodeNow(id, mapped(record.value));
                  return encoded instanceof Promise ? encoded.then((value) => outputOf(record, value)) : outputOf(record, encoded);
                },
              }
            : {
                decode: async (raw) => (await serde.decode(raw.value ?? Buffer.alloc(0))) as Record<string, unknown>,
                process: async (record) => outputOf(record, await serde.encode(id, mapped(record.value))),
              }),
        },
        { brokers: cluster.brokers, groupId, dlqTopic: `${output}-dlq`, guarantee: variant.guarantee, metrics, logger },
      );
      // Timed as the pipes are (`runToEnd`): from the group's first committed offset to the last,
      // scaled to the whole input, read as often; a failed or hung stage fails the benchmark.
      let seconds: number;
      try {
        const committed = async (): Promise<number> =>
          (await admin.fetchOffsets({ groupId, topics: [input] }))[0]?.partitions.reduce(
            (sum, entry) => sum + Math.max(0, Number(entry.offset)),
            0,
          ) ?? 0;
        const deadline = performance.now() + DEADLINE_MS;
        let first: { time: number; records: number } | undefined;
        for (;;) {
          if (stage.status().failed) throw new Error(`the ${variant.label} stage failed`);
          if (performance.now() > deadline) throw new Error(`the ${variant.label} stage did not commit the whole input in time`);
          const done = await committed();
          if (!first && done > 0) first = { time: performance.now(), records: done };
          if (done >= RECORDS) break;
          await new Promise((resolve) => setTimeout(resolve, COMMITTED_POLL_MS));
        }
        const processed = RECORDS - (first?.records ?? 0);
        if (!(processed > 0))
          throw new Error(`the ${variant.label} stage committed the whole input before it was first seen: too few records to time`);
        seconds = ((performance.now() - (first?.time ?? performance.now())) / 1000 / processed) * RECORDS;
      } finally {
        await stage.stop();
      }
      // Every record was committed; none may have been committed as a dead letter instead of an output.
      const deadLetters = (await admin.fetchTopicOffsets(`${output}-dlq`)).reduce((sum, partition) => sum + Number(partition.high), 0);
      if (deadLetters > 0) throw new Error(`the ${variant.label} stage dead-lettered ${deadLetters} records`);
      stageRates.set(variant.name, RECORDS / seconds);
      rows.push({ pipeline: variant.label, records: RECORDS, seconds: seconds.toFixed(2), 'records/s': Math.round(RECORDS / seconds) });
    }
    for (const variant of STAGES.filter((candidate) => candidate.guarantee === 'exactly_once'))
      for (const pipe of PIPES)
        rows.push({
          pipeline: `${variant.short} ÷ ${pipe.short}`,
          'records/s': `${((stageRates.get(variant.name) ?? Number.NaN) / (pipeRates.get(pipe.mode) ?? Number.NaN)).toFixed(3)}×`,
        });
  } finally {
    await admin.disconnect();
    await registry.stop();
    await cluster.stop();
  }
  printTable(`Stream runtime on one Node.js process (${PARTITIONS} partitions, Avro events.transactions records, local broker)`, rows);
}
