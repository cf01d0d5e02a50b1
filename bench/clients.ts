import path from 'node:path';
import { loadConfig, PROJECT_ROOT } from '../common/config.js';
import { createLogger } from '../common/logger.js';
import { createKafka, ensureTopics, startEphemeralKafka } from '../kafka/index.js';
import { eventsArgument, numberArgument } from './arguments.js';
import { runToEnd, type Measured } from './run-to-end.js';
import { RDKAFKA_PACKAGE, RDKAFKA_VERSION, rdkafkaModule } from './rdkafka.js';
import { median, printTable } from './report.js';

/**
 * What the Kafka client costs, kafkajs against a librdkafka-based one
 * (@confluentinc/kafka-javascript, librdkafka 2.15.1 inside): the same pipe, consume a topic and
 * produce one record per input (idempotent producer, acks=all), no state, with each client's two
 * APIs where it has two, with and without a transaction per batch (its records and its input
 * offsets, Kafka's consume-transform-produce loop). Each pipe runs as its own process over the same
 * input; time and CPU-seconds (from /proc) count from its first committed offset to the end of the
 * input. Every pipe commits (or ends a transaction) after at most `--batch` records: kafkajs and the
 * compatible API per partition, the own API's `consume` over all. Rounds alternate the pipes; the
 * table shows the better of the rounds. The librdkafka client is installed into the cache folder
 * on first use (bench/rdkafka.ts).
 *
 * `--events=<n>` records (default 1,000,000), `--value-bytes=<n>` per value (default 100, about a
 * demo event: a demo transaction event is 86 bytes of Avro in the Confluent wire format),
 * `--batch=<n>` (default 2,000), 6 partitions.
 */
const RECORDS = eventsArgument(1_000_000);
const VALUE_BYTES = numberArgument('value-bytes', 100);
const BATCH = numberArgument('batch', 2_000);
const KEYS = 10_000;
const PARTITIONS = 6;
const ROUNDS = 2;

/** The pipes, by name: their fixture, their mode, and their row's label. */
const RDKAFKA = `${RDKAFKA_PACKAGE} ${RDKAFKA_VERSION}`;
const PIPES: readonly { name: string; fixture: string; mode: 'plain' | 'exactly-once'; label: string }[] = [
  { name: 'kafkajs', fixture: 'raw-pipe.ts', mode: 'plain', label: 'kafkajs 2.2.4 (patched), no transactions' },
  { name: 'kafkajs-eos', fixture: 'raw-pipe.ts', mode: 'exactly-once', label: 'kafkajs 2.2.4 (patched), a transaction per batch' },
  { name: 'compat', fixture: 'raw-pipe-rdkafka.ts', mode: 'plain', label: `${RDKAFKA}, kafkajs-compatible API, no transactions` },
  {
    name: 'compat-eos',
    fixture: 'raw-pipe-rdkafka.ts',
    mode: 'exactly-once',
    label: `${RDKAFKA}, kafkajs-compatible API, a transaction per batch`,
  },
  { name: 'native', fixture: 'raw-pipe-rdkafka-native.ts', mode: 'plain', label: `${RDKAFKA}, its own API, no transactions` },
  {
    name: 'native-eos',
    fixture: 'raw-pipe-rdkafka-native.ts',
    mode: 'exactly-once',
    label: `${RDKAFKA}, its own API, a transaction per batch`,
  },
];

export async function main(): Promise<void> {
  const config = loadConfig();
  // The librdkafka pipes find the client there.
  const env = { BENCH_RDKAFKA_DIR: await rdkafkaModule(config.cacheDir) };
  const cluster = await startEphemeralKafka(config, createLogger('warn', 'bench'), '1g');
  const kafka = createKafka({ brokers: cluster.brokers, clientId: 'bench-clients' });
  const admin = kafka.admin();
  const results = new Map<string, Measured[]>();
  try {
    await admin.connect();
    const input = 'clients-in';
    await ensureTopics(admin, [{ name: input, partitions: PARTITIONS }]);
    const producer = kafka.producer({ idempotent: true, maxInFlightRequests: 1 });
    await producer.connect();
    // Values of VALUE_BYTES, 16 different ones (neither client compresses by default).
    const pattern = Buffer.alloc(VALUE_BYTES + 16, 'abcdefghijklmnopqrstuvwxyz0123456789');
    const slice = Math.max(1, Math.floor(500_000 / (VALUE_BYTES + 32)));
    for (let start = 0; start < RECORDS; start += slice) {
      const messages = [];
      for (let i = start; i < Math.min(RECORDS, start + slice); i++)
        messages.push({ key: `k${i % KEYS}`, value: pattern.subarray(i % 16, (i % 16) + VALUE_BYTES) });
      await producer.send({ topic: input, acks: -1, messages });
    }
    await producer.disconnect();

    for (let round = 0; round < ROUNDS; round++) {
      for (const pipe of PIPES) {
        const output = `clients-out-${pipe.name}-${round}`;
        const group = `clients-${pipe.name}-${round}`;
        await ensureTopics(admin, [{ name: output, partitions: PARTITIONS }]);
        const measured = await runToEnd(admin, {
          name: pipe.name,
          input,
          records: RECORDS,
          group,
          command: process.execPath,
          args: [
            '--import',
            'tsx',
            path.join(PROJECT_ROOT, 'bench', 'fixtures', pipe.fixture),
            cluster.brokers.join(','),
            group,
            input,
            output,
            pipe.mode,
            String(BATCH),
          ],
          env,
        });
        results.set(pipe.name, [...(results.get(pipe.name) ?? []), measured]);
      }
    }
  } finally {
    try {
      await admin.disconnect();
    } finally {
      await cluster.stop();
    }
  }
  const perCpu = (name: string): number => median((results.get(name) ?? []).map((result) => RECORDS / result.cpuSeconds));
  printTable(
    `Kafka clients in one pipe, ${RECORDS.toLocaleString('en')} records of ${VALUE_BYTES} bytes, ${PARTITIONS} partitions, at most ${BATCH.toLocaleString('en')} records per commit, the better of ${ROUNDS} interleaved rounds`,
    PIPES.map((pipe) => {
      // Against kafkajs in the same mode (with or without transactions).
      const kafkajs = perCpu(pipe.mode === 'exactly-once' ? 'kafkajs-eos' : 'kafkajs');
      return {
        pipe: pipe.label,
        'records/s': Math.round(median((results.get(pipe.name) ?? []).map((result) => RECORDS / result.seconds))),
        'records per CPU-s': Math.round(perCpu(pipe.name)),
        'µs CPU per record': (1e6 / perCpu(pipe.name)).toFixed(2),
        'CPU per record, × kafkajs (same mode)': `${(kafkajs / perCpu(pipe.name)).toFixed(2)}×`,
      };
    }),
  );
}
