import { execFile } from 'node:child_process';
import { existsSync } from 'node:fs';
import fs from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { promisify } from 'node:util';
import { loadConfig, PROJECT_ROOT } from '../common/config.js';
import { createLogger } from '../common/logger.js';
import { createKafka, ensureTopics, startEphemeralKafka } from '../kafka/index.js';
import { printProfile } from './profile.js';
import { median, printTable } from './report.js';
import { runToEnd, type Measured } from './run-to-end.js';

const run = promisify(execFile);

/**
 * The runtime against Kafka Streams on the same broker and machine, side by side in one run: a
 * keyed aggregate (count and sum per key in a persistent RocksDB store with a changelog,
 * exactly-once, one output per input, commit interval 100 ms) over 1,000,000 records with 10,000
 * keys in 6 partitions — and kafkajs consuming and producing the same records (no state, no
 * transactions) as the client's ceiling. Each processor runs as its own process; its CPU-seconds
 * come from /proc, counted from its first committed offset to the end of the input (start-up and
 * JIT warm-up excluded for both). Rounds alternate the three; the table shows the better of the
 * rounds (for each figure).
 * `--profile` adds one sluice run under the CPU profiler and prints where its time goes.
 */
const RECORDS = 1_000_000;
const KEYS = 10_000;
const PARTITIONS = 6;
const ROUNDS = 2;
const KS_DIR = path.join(PROJECT_ROOT, 'bench', 'kafka-streams');

async function kafkaStreamsClasspath(cacheDir: string, version: string): Promise<string> {
  const root = path.join(cacheDir, 'bench-kafka-streams', version);
  const libs = path.join(root, 'libs');
  const classes = path.join(root, 'classes');
  if (!existsSync(libs)) {
    await run(
      'mvn',
      [
        '-B',
        '-q',
        '-f',
        path.join(KS_DIR, 'pom.xml'),
        `-Dkafka.version=${version}`,
        'dependency:copy-dependencies',
        `-DoutputDirectory=${libs}`,
      ],
      {
        maxBuffer: 16 * 1024 * 1024,
      },
    );
  }
  if (!existsSync(path.join(classes, 'dev', 'sluice', 'bench', 'KeyedAggregate.class'))) {
    await run('javac', ['-cp', `${libs}/*`, '-d', classes, path.join(KS_DIR, 'KeyedAggregate.java')]);
  }
  return `${classes}:${libs}/*`;
}

export async function main(): Promise<void> {
  const config = loadConfig();
  const logger = createLogger('warn', 'bench');
  const root = await fs.mkdtemp(path.join(os.tmpdir(), 'sluice-bench-aggregate-'));
  const results = new Map<string, Measured[]>();
  const profileDir = process.argv.includes('--profile') ? path.join(root, 'profile') : undefined;
  const cluster = await startEphemeralKafka(config, logger, '1g').catch(async (error: unknown) => {
    await fs.rm(root, { recursive: true, force: true });
    throw error;
  });
  const kafka = createKafka({ brokers: cluster.brokers, clientId: 'bench-aggregate' });
  const admin = kafka.admin();
  try {
    await admin.connect();
    const classpath = await kafkaStreamsClasspath(config.cacheDir, config.kafka.version);
    const input = 'aggregate-in';
    await ensureTopics(admin, [{ name: input, partitions: PARTITIONS }]);
    const producer = kafka.producer({ idempotent: true, maxInFlightRequests: 1 });
    await producer.connect();
    for (let start = 0; start < RECORDS; start += 10_000) {
      const messages = [];
      for (let i = start; i < start + 10_000; i++) messages.push({ key: `k${i % KEYS}`, value: String(i % 1_000) });
      await producer.send({ topic: input, acks: -1, messages });
    }
    await producer.disconnect();

    /** Runs one processor to the end of the input; CPU and time from its first committed offset. */
    const measure = async (
      name: string,
      round: number,
      command: string,
      args: (output: string, group: string, state: string) => string[],
      recorded = true,
    ): Promise<void> => {
      const output = `aggregate-out-${name}-${round}`;
      const group = `aggregate-${name}-${round}`;
      await ensureTopics(admin, [{ name: output, partitions: PARTITIONS }]);
      const measured = await runToEnd(admin, {
        name,
        input,
        records: RECORDS,
        group,
        command,
        args: args(output, group, path.join(root, group)),
      });
      if (recorded) results.set(name, [...(results.get(name) ?? []), measured]);
    };

    const node = process.execPath;
    const sluiceArgs = (output: string, group: string, state: string): string[] => [
      '--import',
      'tsx',
      path.join(PROJECT_ROOT, 'bench', 'fixtures', 'aggregate-stage.ts'),
      cluster.brokers.join(','),
      group,
      input,
      output,
      state,
    ];
    for (let round = 0; round < ROUNDS; round++) {
      await measure('kafka-streams', round, 'java', (output, group, state) => [
        '-Xmx1g',
        '-cp',
        classpath,
        'dev.sluice.bench.KeyedAggregate',
        cluster.brokers.join(','),
        group,
        input,
        output,
        state,
      ]);
      await measure('sluice', round, node, sluiceArgs);
      await measure('kafkajs', round, node, (output, group) => [
        '--import',
        'tsx',
        path.join(PROJECT_ROOT, 'bench', 'fixtures', 'raw-pipe.ts'),
        cluster.brokers.join(','),
        group,
        input,
        output,
      ]);
    }
    // `--profile`: one more sluice run under the CPU profiler, not counted in the table.
    if (profileDir !== undefined) {
      await measure('sluice', ROUNDS, node, (...args) => ['--cpu-prof', `--cpu-prof-dir=${profileDir}`, ...sluiceArgs(...args)], false);
      await printProfile(profileDir, 'the sluice aggregate (an extra run, not in the table)');
    }
  } finally {
    try {
      await admin.disconnect();
    } finally {
      await cluster.stop();
      await fs.rm(root, { recursive: true, force: true });
    }
  }
  const perCpu = (name: string): number => median((results.get(name) ?? []).map((result) => RECORDS / result.cpuSeconds));
  const streams = perCpu('kafka-streams');
  printTable(
    `keyed aggregate, ${RECORDS.toLocaleString('en')} records, ${KEYS.toLocaleString('en')} keys, ${PARTITIONS} partitions, the better of ${ROUNDS} interleaved rounds`,
    ['kafka-streams', 'sluice', 'kafkajs'].map((name) => ({
      processor:
        name === 'kafka-streams'
          ? `Kafka Streams ${config.kafka.version} (EOS v2, RocksDB)`
          : name === 'sluice'
            ? 'sluice runtime (EOS, RocksDB)'
            : 'kafkajs consume + produce (no state, no EOS)',
      'records/s': Math.round(median((results.get(name) ?? []).map((result) => RECORDS / result.seconds))),
      'records per CPU-s': Math.round(perCpu(name)),
      'vs Kafka Streams (per CPU-s)': `${(perCpu(name) / streams).toFixed(2)}×`,
    })),
  );
}
