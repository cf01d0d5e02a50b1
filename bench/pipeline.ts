import { spawn, spawnSync } from 'node:child_process';
import fs from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { loadConfig, PROJECT_ROOT } from '../common/config.js';
import { createLogger } from '../common/logger.js';
import { cpuSecondsOf } from '../common/proc-stat.js';
import { uniformRandom } from '../common/random.js';
import { demoEvents } from '../examples/fraud/generator.js';
import { setUpDemo } from '../integration-tests/pipeline/demo-setup.js';
import { createKafka, startEphemeralKafka } from '../kafka/index.js';
import { launcherNodeFlags, SLUICE } from './launcher.js';
import { eventsArgument } from './arguments.js';
import { printProfile } from './profile.js';
import { percentile, printTable } from './report.js';
import { MEASURED_ID, Received } from './received.js';
import { tieToParent } from '../common/child-tie.js';
import { cpuSnapshot, cpuSpent, type CpuSnapshot } from './machine-cpu.js';

/**
 * The fused pipeline of the fraud demo (ingest → features → inference, every view and the
 * model; 6 partitions; exactly-once; commit interval 100 ms) as one process, measured from the
 * outside:
 * - throughput: a backlog of demo events (100,000, or `--events=<n>`) processed to the end,
 *   events/s and CPU-seconds;
 * - latency: live transactions at a fixed rate for 60 s, raw event produced → its prediction
 *   received by a read_committed consumer, p50/p99;
 * - the highest rate sustained for 60 s with p99 under 1 s and every prediction (a search up a
 *   ladder of rates: 3,000 to 8,000 by 1,000, then 10,000, 12,000, 16,000 and 20,000, to the first
 *   that misses);
 * - the CPU profile's top functions (self time) of the backlog run.
 * `--rss` adds a 10-minute run at 5,000 events/s sampling the pipeline's resident memory
 * (`--rss=<rate>` at another rate; `--rss-minutes=<m>` for another length; with `--only-rss`, only
 * that run; with `--rss-profile`, under the CPU profiler, whose top functions it prints), and prints
 * it minute by minute from the pipeline's own metrics. `--live-profile[=<rate>]` runs
 * only the live run at 1,000 events/s (or that rate), under the CPU profiler, and prints where its time goes;
 * `--live=<rate>[,<rate>...]` runs only live runs at those rates, one after the other on the same
 * broker, without the profiler; with `--processes=<n>`, each as n pipeline processes in one consumer
 * group on one data directory (scale-out on this machine: Node runs a process's JavaScript on one
 * thread, so a second process is how the pipeline's JavaScript uses a second core), their
 * CPU-seconds summed. `--timeline[=<s>]` adds each live run's latency by 10 s (or <s> s) of sending.
 * Each live run (the fixed rates, each rate of the search and the memory run) first sends its load
 * for 15 s, not measured: the fresh process's JIT, the broker and the rate's own batch sizes warm up,
 * so that the measured 60 s are the rate sustained. `--warmup=<s>` sets that time; `--warmup=0`
 * measures from a cold start. `--keep-log=<file>` runs each pipeline with its log at `info` and
 * appends that log to the file when it stops, with the benchmark's own marks (JSON lines with
 * `time` and `bench`: when a run's warm-up and its measured sending start and end) among its lines.
 * The pipeline process takes SLUICE_STATE_CACHE_MB from the environment (the runs name it).
 *
 * The pipeline is the `sluice run pipeline` command as users run it: the compiled CLI in dist/
 * (rebuilt from the sources first). `--from-sources` runs the test fixture through tsx instead,
 * whose transpiled code differs (esbuild's `__name` on every function it creates took 2.5% of the
 * live run at 5,000/s).
 */
const PARTITIONS = 6;
const FIXTURE = path.join(PROJECT_ROOT, 'integration-tests', 'fixtures', 'pipeline-process.ts');
const fromSources = process.argv.includes('--from-sources');
/** `--keep-log=<file>`: where each pipeline's log (at `info`) is appended when it stops (the command only, not the fixture). */
const keepLog = process.argv.find((argument) => argument.startsWith('--keep-log='))?.slice('--keep-log='.length);
/** Node's flags as the `sluice` command runs it (the fixture runs with them too). */
const LAUNCHER_NODE_FLAGS = launcherNodeFlags();
/** The load each live run sends before its measured time, unless `--warmup` says otherwise. */
const DEFAULT_WARMUP_SECONDS = 15;

/** Where the pipeline of one run meets its cluster and keeps its state. */
interface PipelineEnv {
  readonly brokers: readonly string[];
  readonly registryUrl: string;
  readonly prefix: string;
  /** Its state, and its models under models/. */
  readonly dataDir: string;
}

interface Pipeline {
  readonly ready: Promise<void>;
  stop(): Promise<void>;
  /** utime + stime of the process so far, seconds. */
  cpuSeconds(): Promise<number>;
  rssBytes(): Promise<number>;
  /** The command's Prometheus metrics (undefined for the tsx fixture, which serves none). */
  metrics(): Promise<string | undefined>;
  /** With `--keep-log`: a line of the benchmark's own among the pipeline's log lines, at this time. */
  mark(text: string): void;
}

function startPipeline(where: PipelineEnv, profileDir?: string): Pipeline {
  const node = [...LAUNCHER_NODE_FLAGS, ...(profileDir ? ['--cpu-prof', `--cpu-prof-dir=${profileDir}`] : [])];
  // The compiled command, or the test fixture (which stands in for it) through tsx.
  const args = fromSources ? [...node, '--import', 'tsx', FIXTURE] : [...node, SLUICE, 'run', 'pipeline'];
  const env = fromSources
    ? {
        PIPE_BROKERS: where.brokers.join(','),
        PIPE_REGISTRY: where.registryUrl,
        PIPE_PREFIX: where.prefix,
        PIPE_DATA_DIR: where.dataDir,
        PIPE_MODELS_DIR: path.join(where.dataDir, 'models'),
        PIPE_SESSION_TIMEOUT_MS: '10000',
      }
    : {
        KAFKA_BROKERS: where.brokers.join(','),
        SCHEMA_REGISTRY_URL: where.registryUrl,
        SLUICE_TOPIC_PREFIX: where.prefix,
        SLUICE_DATA_DIR: where.dataDir,
        SLUICE_TOPOLOGY: path.join(PROJECT_ROOT, 'examples', 'fraud'),
        SLUICE_LOG_LEVEL: keepLog === undefined ? 'warn' : 'info',
        SLUICE_METRICS_PORT: '0',
      };
  const child = spawn(process.execPath, args, { env: { ...process.env, ...env }, stdio: ['ignore', 'pipe', 'pipe'], cwd: PROJECT_ROOT });
  tieToParent(child);
  let out = '';
  let err = '';
  /** With `--keep-log`: the benchmark's marks, put among the log's lines (stderr) when it is kept. */
  const marks: Mark[] = [];
  child.stdout.on('data', (chunk: Buffer) => (out += chunk.toString()));
  child.stderr.on('data', (chunk: Buffer) => (err += chunk.toString()));
  const exited = new Promise<void>((resolve) => child.once('exit', () => resolve()));
  /** The command's ops server, from its "metrics at <url>/metrics" line (none for the fixture, or before that line). */
  const opsUrl = (): string | undefined => (fromSources ? undefined : /metrics at (http:\/\/\S+)\/metrics/.exec(out)?.[1]);
  // Ready: the fixture prints READY; the command serves /ready (every task running) on its ops port.
  const isReady = async (): Promise<boolean> => {
    if (fromSources) return out.includes('READY');
    const ops = opsUrl();
    if (ops === undefined) return false;
    return (await fetch(`${ops}/ready`).catch(() => undefined))?.ok === true;
  };
  const ready = new Promise<void>((resolve, reject) => {
    const poll = (): void => {
      if (child.exitCode !== null) {
        reject(new Error(`the pipeline exited: ${err.slice(-2_000)}`));
        return;
      }
      void isReady().then((yes) => (yes ? resolve() : void setTimeout(poll, 50)));
    };
    poll();
  });
  return {
    ready,
    async stop() {
      child.kill('SIGTERM');
      await exited;
      if (keepLog !== undefined) await fs.appendFile(keepLog, out + withMarks(err, marks));
    },
    async cpuSeconds() {
      return cpuSecondsOf(child);
    },
    async rssBytes() {
      const status = await fs.readFile(`/proc/${child.pid}/status`, 'utf8');
      return Number(/VmRSS:\s+(\d+)/.exec(status)?.[1] ?? 0) * 1024;
    },
    async metrics() {
      const ops = opsUrl();
      if (ops === undefined) return undefined;
      return (await fetch(`${ops}/metrics`).catch(() => undefined))?.text();
    },
    mark(text) {
      if (keepLog !== undefined) marks.push({ time: Date.now(), bench: text });
    },
  };
}

/**
 * `count` pipeline processes in one consumer group on one data directory (`--processes`), as one:
 * ready when every one is (each serves /ready once its own tasks run), their CPU-seconds and RSS
 * summed. Their metrics are the first one's (only live runs take several processes).
 */
function startPipelines(where: PipelineEnv, count: number, profileDir?: string): Pipeline {
  if (count === 1) return startPipeline(where, profileDir);
  // The profiled runs are one process (`--processes` is refused with `--live-profile` and `--rss`).
  if (profileDir !== undefined) throw new Error('a profiled run is one pipeline process');
  const pipelines = Array.from({ length: count }, () => startPipeline(where));
  const sum = async (each: (pipeline: Pipeline) => Promise<number>): Promise<number> =>
    (await Promise.all(pipelines.map(each))).reduce((total, value) => total + value, 0);
  const stopAll = async (): Promise<void> => {
    // One after the other: with `--keep-log`, each process's log is appended whole.
    for (const pipeline of pipelines) await pipeline.stop();
  };
  return {
    // One that exits while starting fails the run: the others are stopped first, so that none is
    // left writing into the run's folder while the benchmark removes it.
    ready: Promise.all(pipelines.map((pipeline) => pipeline.ready)).then(
      () => undefined,
      async (error: unknown) => {
        await stopAll();
        throw error;
      },
    ),
    stop: stopAll,
    cpuSeconds: () => sum((pipeline) => pipeline.cpuSeconds()),
    rssBytes: () => sum((pipeline) => pipeline.rssBytes()),
    metrics: () => (pipelines[0] as Pipeline).metrics(),
    mark(text) {
      for (const pipeline of pipelines) pipeline.mark(text);
    },
  };
}

/** A line of the benchmark's own in a kept pipeline log. */
interface Mark {
  readonly time: number;
  readonly bench: string;
}

/**
 * The log's lines (JSON lines with a `time`, as the command writes them) with each mark before the
 * first line that is later than it; lines without a time keep their place.
 */
function withMarks(log: string, marks: readonly Mark[]): string {
  const lines = log.split('\n');
  // The log's final newline leaves an empty last element.
  if (lines.at(-1) === '') lines.pop();
  const merged: string[] = [];
  let next = 0;
  for (const line of lines) {
    const time = Number(/"time":(\d+)/.exec(line)?.[1] ?? Number.NaN);
    for (; next < marks.length && (marks[next] as Mark).time < time; next++) merged.push(JSON.stringify(marks[next]));
    merged.push(line);
  }
  for (; next < marks.length; next++) merged.push(JSON.stringify(marks[next]));
  return merged.length === 0 ? '' : `${merged.join('\n')}\n`;
}

/**
 * The sum of a metric's samples (every label set, or those with `labels`) in Prometheus' text
 * format; 0 when it has none yet (a counter before its first count).
 */
function metricSum(text: string, name: string, labels = ''): number {
  let total = 0;
  for (const line of text.split('\n')) {
    if (!line.startsWith(name) || (line[name.length] !== '{' && line[name.length] !== ' ')) continue;
    if (labels !== '' && !line.includes(labels)) continue;
    total += Number(line.slice(line.lastIndexOf(' ') + 1));
  }
  return total;
}

/** One reading of the pipeline's own metrics during the memory run. */
interface MetricsSample {
  readonly second: number;
  readonly text: string;
}

/**
 * The memory run minute by minute, from the pipeline's own metrics: what it processed, the CPU it
 * took, where its memory was (V8's heap as committed and as used, and committed by space; memory
 * outside the heap that V8 knows of; RocksDB's own figures and open databases; the state cache) and
 * how much of the time went to garbage collection. Says whether a slowdown or a growth comes with
 * the state, the heap or the collector.
 */
function printMemoryTimeline(rate: number, samples: readonly MetricsSample[]): void {
  const mib = (bytes: number): string => (bytes / 2 ** 20).toFixed(0);
  const rows: Record<string, string | number>[] = [];
  for (let index = 1; index < samples.length; index++) {
    const before = samples[index - 1] as MetricsSample;
    const after = samples[index] as MetricsSample;
    const seconds = after.second - before.second;
    const delta = (name: string, labels = ''): number => metricSum(after.text, name, labels) - metricSum(before.text, name, labels);
    const now = (name: string): number => metricSum(after.text, name);
    rows.push({
      // Seconds since the run began sending; the last row reaches past its end (the wait for the last predictions).
      seconds: `${Math.round(before.second)}–${Math.round(after.second)}`,
      'events in/s': Math.round(delta('sluice_records_in_total') / seconds),
      'CPU cores': (delta('sluice_process_process_cpu_seconds_total') / seconds).toFixed(2),
      'GC share': `${((100 * delta('sluice_process_nodejs_gc_duration_seconds_sum')) / seconds).toFixed(1)}%`,
      'major GC s': delta('sluice_process_nodejs_gc_duration_seconds_sum', 'kind="major"').toFixed(2),
      'RSS MiB': mib(now('sluice_process_process_resident_memory_bytes')),
      'heap committed / used MiB': `${mib(now('sluice_process_nodejs_heap_size_total_bytes'))} / ${mib(now('sluice_process_nodejs_heap_size_used_bytes'))}`,
      // Of the committed heap: the young generation (sized by --max-semi-space-size), the old space, large objects.
      'young / old / large MiB': ['new', 'old', 'large_object']
        .map((space) => mib(metricSum(after.text, 'sluice_process_nodejs_heap_space_size_total_bytes', `space="${space}"`)))
        .join(' / '),
      // Buffers and other memory outside the heap that V8 is told of (RocksDB's own is not).
      'external MiB': mib(now('sluice_process_nodejs_external_memory_bytes')),
      // RocksDB's own figures for its open databases: memtables / block caches / table readers.
      'RocksDB memtables / cache / readers MiB': ['memtables', 'block_cache', 'table_readers']
        .map((kind) => mib(metricSum(after.text, 'sluice_rocksdb_memory_bytes', `kind="${kind}"`)))
        .join(' / '),
      'RocksDB dbs': now('sluice_rocksdb_open_databases'),
      'state cache MiB': mib(now('sluice_state_cache_bytes')),
      // The kept windows' distinct-value tables: state in memory outside the state cache.
      'distinct tables MiB': mib(now('sluice_features_distinct_tables_bytes')),
      'evicted/s': Math.round(delta('sluice_state_cache_evicted_total') / seconds),
      'lag records': now('sluice_consumer_lag_records'),
    });
  }
  if (rows.length > 0) printTable(`the memory run at ${rate.toLocaleString('en')} events/s by minute (the pipeline's own metrics)`, rows);
}

/** `--timeline[=<s>]`: p50, p99 and max latency of the events sent in each `width` s of a live run. */
function printTimeline(rate: number, received: Received, width: number): void {
  const buckets = new Map<number, { latencies: number[]; toProduce: number[] }>();
  for (let index = 0; index < received.length; index++) {
    const bucket = Math.floor((received.seconds[index] ?? 0) / width) * width;
    const values = buckets.get(bucket) ?? { latencies: [], toProduce: [] };
    values.latencies.push(received.latencies[index] ?? Number.NaN);
    values.toProduce.push(received.toProduce[index] ?? Number.NaN);
    buckets.set(bucket, values);
  }
  const byValue = (left: number, right: number): number => left - right;
  printTable(
    `latency over time, live ${rate.toLocaleString('en')} events/s (by the second the event was sent)`,
    [...buckets]
      .sort((left, right) => left[0] - right[0])
      .map(([bucket, values]) => {
        const latencies = values.latencies.sort(byValue);
        // Sent → the prediction's produce (its record timestamp): fetch, processing, waiting for the commit.
        const toProduce = values.toProduce.sort(byValue);
        return {
          sent: `${bucket}–${bucket + width} s`,
          predictions: latencies.length,
          'p50 ms': Math.round(percentile(latencies, 50)),
          'p99 ms': Math.round(percentile(latencies, 99)),
          'max ms': Math.round(latencies.at(-1) ?? Number.NaN),
          'to produce p50/p99 ms': `${Math.round(percentile(toProduce, 50))} / ${Math.round(percentile(toProduce, 99))}`,
        };
      }),
  );
}

export async function main(): Promise<void> {
  // `--rss[=rate]`: the 10-minute memory run (at 5,000 events/s unless a rate is given);
  // with `--only-rss`, nothing else.
  const rssArgument = process.argv.find((argument) => argument === '--rss' || argument.startsWith('--rss='));
  const withRss = rssArgument !== undefined;
  const rssOnly = withRss && process.argv.includes('--only-rss');
  const rssProfile = withRss && process.argv.includes('--rss-profile');
  // `--live-profile[=rate]`: only the live run at 1,000 events/s (or that rate), under the CPU profiler.
  const liveProfileArgument = process.argv.find((argument) => argument === '--live-profile' || argument.startsWith('--live-profile='));
  const liveProfile = liveProfileArgument !== undefined;
  const liveProfileRate = liveProfileArgument?.startsWith('--live-profile=')
    ? Number(liveProfileArgument.slice('--live-profile='.length))
    : 1_000;
  if (!(liveProfileRate > 0)) throw new Error(`--live-profile wants a rate in events/s, not ${liveProfileArgument}`);
  // `--live=<rate>[,<rate>...]`: only live runs at those rates, without the profiler.
  const liveArgument = process.argv.find((argument) => argument.startsWith('--live='));
  const liveOnly = liveArgument === undefined ? undefined : liveArgument.slice('--live='.length).split(',').map(Number);
  if (liveOnly !== undefined && !liveOnly.every((rate) => rate > 0))
    throw new Error(`--live wants rates in events/s, separated by commas, not ${liveArgument}`);
  // `--processes=<n>`: with `--live`, each live run's pipeline as n processes in one group.
  const processesArgument = process.argv.find((argument) => argument.startsWith('--processes='));
  const processes = processesArgument === undefined ? 1 : Number(processesArgument.slice('--processes='.length));
  if (!(Number.isInteger(processes) && processes >= 1 && processes <= PARTITIONS))
    throw new Error(`--processes wants a whole number from 1 to ${PARTITIONS} (the partitions), not ${processesArgument}`);
  if (processes > 1 && (liveOnly === undefined || withRss || liveProfile))
    throw new Error('--processes goes with --live=<rate>[,<rate>...] only (not with --rss or --live-profile)');
  const rssRate = rssArgument?.startsWith('--rss=') ? Number(rssArgument.slice('--rss='.length)) : 5_000;
  const rssMinutesArgument = process.argv.find((argument) => argument.startsWith('--rss-minutes='));
  const rssMinutes = rssMinutesArgument === undefined ? 10 : Number(rssMinutesArgument.slice('--rss-minutes='.length));
  if (!(rssMinutes > 0)) throw new Error(`--rss-minutes wants minutes, not ${rssMinutesArgument}`);
  // `--warmup=<s>`: each live run sends at its rate for that long before the measured 60 s (15 s
  // unless given; 0: a cold start).
  const warmupArgument = process.argv.find((argument) => argument.startsWith('--warmup='));
  const warmupSeconds = warmupArgument === undefined ? DEFAULT_WARMUP_SECONDS : Number(warmupArgument.slice('--warmup='.length));
  if (!(warmupSeconds >= 0)) throw new Error(`--warmup wants seconds, not ${warmupArgument}`);
  // `--timeline[=<s>]`: each live run's latency by 10 s (or that many seconds) of sending.
  const timelineArgument = process.argv.find((argument) => argument === '--timeline' || argument.startsWith('--timeline='));
  const timelineWidth =
    timelineArgument === undefined
      ? undefined
      : timelineArgument === '--timeline'
        ? 10
        : Number(timelineArgument.slice('--timeline='.length));
  if (timelineWidth !== undefined && !(timelineWidth > 0)) throw new Error(`--timeline wants seconds, not ${timelineArgument}`);
  // `--backlog`: only the throughput run and its profile (a quick look while optimizing).
  const backlogOnly = process.argv.includes('--backlog');
  // `--events=<n>`: the backlog's demo events (100,000): a longer backlog puts the process's start
  // and the JIT's warm-up in a smaller share of the run.
  const backlogEvents = eventsArgument(100_000);
  const config = loadConfig();
  const logger = createLogger('warn', 'bench');
  // The command runs dist/ only when it is newer than every source: built now, so it is.
  if (!fromSources) {
    const built = spawnSync(process.execPath, [path.join(PROJECT_ROOT, 'bin', 'build-dist.js')], { stdio: 'inherit', cwd: PROJECT_ROOT });
    if (built.status !== 0) throw new Error('the dist/ build failed (npm run build:dist)');
  }
  const cluster = await startEphemeralKafka(config, logger, '1g');
  const kafka = createKafka({ brokers: cluster.brokers, clientId: 'bench-pipeline' });
  const admin = kafka.admin();
  await admin.connect();
  const root = await fs.mkdtemp(path.join(os.tmpdir(), 'sluice-bench-pipeline-'));
  const rows: Record<string, string | number>[] = [];
  /** Lines printed under the table: the machine's bound at a run's CPU per event. */
  const bounds: string[] = [];
  let run = 0;
  /** A fresh prefix (topics, registry, model) per run, so runs do not see each other's data. */
  const fresh = async () => {
    const prefix = `bench${run++}.`;
    const setup = await setUpDemo({
      kafka,
      admin,
      brokers: cluster.brokers,
      prefix,
      partitions: PARTITIONS,
      modelsDir: path.join(root, prefix, 'data', 'models'),
    });
    const env: PipelineEnv = {
      brokers: cluster.brokers,
      registryUrl: setup.registry.url,
      prefix,
      dataDir: path.join(root, prefix, 'data'),
    };
    return { prefix, setup, env };
  };
  const producer = kafka.producer({ idempotent: true, maxInFlightRequests: 1 });
  await producer.connect();
  try {
    // ---- throughput over a backlog, with a CPU profile --------------------------------------
    if (!rssOnly && !liveProfile && liveOnly === undefined) {
      const { prefix, setup, env } = await fresh();
      const events = [
        ...demoEvents({
          seed: 9,
          events: backlogEvents,
          end: Date.now(),
          spanMs: 86_400_000,
          cards: 5_000,
          users: 2_000,
          fraudRate: 0.008,
        }),
      ];
      for (let start = 0; start < events.length; start += 5_000) {
        const slice = events.slice(start, start + 5_000);
        const topics = [...new Set(slice.map((record) => record.topic))];
        await producer.sendBatch({
          acks: -1,
          topicMessages: topics.map((topic) => ({
            topic: `${prefix}${topic}`,
            messages: slice
              .filter((record) => record.topic === topic)
              .map((record) => ({ key: record.key, value: JSON.stringify(record.value) })),
          })),
        });
      }
      const profileDir = path.join(root, 'profile');
      const pipeline = startPipeline(env, profileDir);
      await pipeline.ready;
      pipeline.mark('backlog: timing starts');
      const started = performance.now();
      const cpuBefore = await pipeline.cpuSeconds();
      const machineBefore = await cpuSnapshot(cluster.pid);
      const group = `${prefix}sluice-pipeline`;
      for (;;) {
        let lag = 0;
        for (const source of ['transactions', 'clicks', 'chargebacks']) {
          const topic = `${prefix}raw.${source}`;
          const [committed, ends] = await Promise.all([
            admin.fetchOffsets({ groupId: group, topics: [topic] }),
            admin.fetchTopicOffsets(topic),
          ]);
          const byPartition = new Map(committed[0]?.partitions.map((entry) => [entry.partition, Number(entry.offset)]) ?? []);
          lag += ends.reduce((sum, end) => sum + Number(end.high) - Math.max(0, byPartition.get(end.partition) ?? 0), 0);
        }
        if (lag === 0) break;
        await new Promise((resolve) => setTimeout(resolve, 200));
      }
      const seconds = (performance.now() - started) / 1000;
      const cpu = (await pipeline.cpuSeconds()) - cpuBefore;
      const machine = cpuSpent(machineBefore, await cpuSnapshot(cluster.pid));
      await pipeline.stop();
      rows.push({
        // The rates count every record sent: the transactions and clicks (100,000 by default), and the chargebacks on top.
        run: `backlog: ${events.length.toLocaleString('en')} demo events to committed predictions and features`,
        'events/s': Math.round(events.length / seconds),
        seconds: seconds.toFixed(1),
        'CPU-s of the pipeline': cpu.toFixed(1),
        'events per CPU-s': Math.round(events.length / cpu),
        ...machineColumns(machine, seconds),
      });
      // At the backlog's CPU per event (the pipeline's and the broker's; the benchmark only polls
      // the group's lag meanwhile), the rate at which every core of this machine would be busy.
      const cores = machine.machineTotal / seconds;
      bounds.push(
        `backlog: all ${cores.toFixed(1)} cores would be busy at about ${Math.round((events.length / machine.machineBusy) * cores).toLocaleString('en')} events/s at its CPU per event (${Math.round(events.length / machine.machineBusy).toLocaleString('en')} events per CPU-second of the machine)`,
      );
      await setup.registry.stop();
      await printProfile(profileDir, 'the backlog run');
    }

    if (!backlogOnly) {
      // ---- latency at fixed rates, and the highest rate sustained ------------------------------
      const latency = async (
        rate: number,
        seconds: number,
        sampleRss = false,
        profileDir?: string,
      ): Promise<Record<string, string | number>> => {
        const { prefix, setup, env } = await fresh();
        const pipeline = startPipelines(env, processes, profileDir);
        await pipeline.ready;
        // The measured events' send times, by their number, and what their predictions took (received.ts).
        const received = new Received(Math.ceil(rate * seconds) + 1);
        let sendStart = Number.NaN;
        const consumer = kafka.consumer({ groupId: `${prefix}latency`, readUncommitted: false, maxWaitTimeInMs: 20 });
        await consumer.connect();
        await consumer.subscribe({ topic: `${prefix}predictions.fraud`, fromBeginning: true });
        // Predictions of the measured events (not of the warm-up's).
        let measuredReceived = 0;
        await consumer.run({
          // Nothing reads this group's offsets: committing them after every batch (kafkajs' default,
          // about 50 a second here) only loaded the broker the pipeline shares.
          autoCommit: false,
          eachBatch: async ({ batch }) => {
            const now = performance.now();
            for (const message of batch.messages) {
              const at = received.sentTimeOf(message.headers?.['sluice.event_id']?.toString());
              if (!Number.isNaN(at)) {
                measuredReceived++;
                // Record timestamps are wall-clock ms; `at` is performance.now().
                received.add((at - sendStart) / 1000, now - at, Number(message.timestamp) - (performance.timeOrigin + at));
              }
            }
            await Promise.resolve();
          },
        });
        await new Promise((resolve) => setTimeout(resolve, 2_000));
        const random = uniformRandom(rate);
        const rss: number[] = [];
        // The memory run: the pipeline's own metrics every minute of it, from its start.
        const metricsSamples: MetricsSample[] = [];
        /** Sends at `rate` for `duration` s; only measured events are remembered (their predictions counted). */
        const sendFor = async (duration: number, measured: boolean): Promise<{ sent: number; seconds: number }> => {
          const began = performance.now();
          if (measured) sendStart = began;
          const run = `live ${rate.toLocaleString('en')} events/s: ${measured ? 'measured sending' : 'warm-up'}`;
          pipeline.mark(`${run} starts`);
          let sentHere = 0;
          let nextSample = 0;
          let nextMetrics = 0;
          while (performance.now() - began < duration * 1000) {
            const due = Math.floor(((performance.now() - began) / 1000) * rate);
            const messages = [];
            for (; sentHere < due; sentHere++) {
              const id = measured ? `${MEASURED_ID}${sentHere}` : `w${sentHere}`;
              const card = `card-${Math.floor(random() * 5_000)}`;
              if (measured) received.sent(sentHere, performance.now());
              messages.push({
                key: card,
                value: JSON.stringify({
                  transaction_id: id,
                  card_id: card,
                  merchant_id: `m-${Math.floor(random() * 700)}`,
                  merchant_category: '5411',
                  amount: Math.round(random() * 20_000) / 100 + 1,
                  currency: 'EUR',
                  country: 'NL',
                  channel: 'ONLINE',
                  timestamp: Date.now(),
                }),
              });
            }
            if (messages.length > 0) await producer.send({ topic: `${prefix}raw.transactions`, acks: -1, messages });
            if (measured && sampleRss && performance.now() - began >= nextSample) {
              rss.push(await pipeline.rssBytes());
              nextSample += 10_000;
            }
            if (measured && sampleRss && performance.now() - began >= nextMetrics) {
              const text = await pipeline.metrics();
              if (text !== undefined) metricsSamples.push({ second: (performance.now() - began) / 1000, text });
              nextMetrics += 60_000;
            }
            await new Promise((resolve) => setTimeout(resolve, 5));
          }
          pipeline.mark(`${run} ends`);
          return { sent: sentHere, seconds: (performance.now() - began) / 1000 };
        };
        // `--warmup=<s>`: the same load for that long first, not measured (the JIT's and the broker's warm-up).
        if (warmupSeconds > 0) await sendFor(warmupSeconds, false);
        const cpuBefore = await pipeline.cpuSeconds();
        const machineBefore = await cpuSnapshot(cluster.pid);
        const { sent: count, seconds: sendSeconds } = await sendFor(seconds, true);
        const machine = cpuSpent(machineBefore, await cpuSnapshot(cluster.pid));
        const deadline = performance.now() + 30_000;
        while (measuredReceived < count && performance.now() < deadline) await new Promise((resolve) => setTimeout(resolve, 100));
        if (sampleRss) {
          // The last reading: what the pipeline got through by the end of the wait.
          const text = await pipeline.metrics();
          if (text !== undefined) metricsSamples.push({ second: (performance.now() - sendStart) / 1000, text });
        }
        const cpu = (await pipeline.cpuSeconds()) - cpuBefore;
        await consumer.disconnect();
        await pipeline.stop();
        await setup.registry.stop();
        if (profileDir !== undefined) await printProfile(profileDir, `the live run at ${rate.toLocaleString('en')} events/s`);
        if (timelineWidth !== undefined) printTimeline(rate, received, timelineWidth);
        if (sampleRss) printMemoryTimeline(rate, metricsSamples);
        const sorted = received.sortedLatencies();
        const row: Record<string, string | number> = {
          run: `live ${rate.toLocaleString('en')} events/s for ${seconds} s${warmupSeconds > 0 ? ` after ${warmupSeconds} s of warm-up` : ', cold'}${
            process.env.SLUICE_STATE_CACHE_MB ? `, state cache ${process.env.SLUICE_STATE_CACHE_MB} MiB` : ''
          }${processes > 1 ? `, ${processes} processes` : ''}`,
          'sent/s': Math.round(count / sendSeconds),
          predictions: `${measuredReceived}/${count}`,
          'p50 ms': Math.round(percentile(sorted, 50)),
          'p99 ms': Math.round(percentile(sorted, 99)),
          'max ms': Math.round(sorted.at(-1) ?? Number.NaN),
          'CPU-s of the pipeline': cpu.toFixed(1),
          ...machineColumns(machine, sendSeconds),
        };
        if (rss.length > 2) {
          const warm = rss.slice(Math.floor(rss.length / 5));
          const low = Math.min(...warm);
          const high = Math.max(...warm);
          const mib = (bytes: number): string => (bytes / 2 ** 20).toFixed(0);
          row.rss = `${mib(low)}–${mib(high)} MiB after warm-up (${(((high - low) / low) * 100).toFixed(1)}% spread; ${mib(warm[0] ?? 0)} → ${mib(warm.at(-1) ?? 0)})`;
        }
        return row;
      };
      if (liveProfile) rows.push(await latency(liveProfileRate, 60, false, path.join(root, 'live-profile')));
      else if (liveOnly !== undefined) for (const rate of liveOnly) rows.push(await latency(rate, 60));
      else if (!rssOnly) {
        rows.push(await latency(1_000, 60));
        const at5000 = await latency(5_000, 60);
        rows.push(at5000);
        let best: number | undefined;
        // Up to the first rate that misses; 5,000 is the run above (not run again).
        for (const rate of [3_000, 4_000, 5_000, 6_000, 7_000, 8_000, 10_000, 12_000, 16_000, 20_000]) {
          const row = rate === 5_000 ? at5000 : await latency(rate, 60);
          if (row !== at5000) rows.push(row);
          const p99 = Number(row['p99 ms']);
          const [got, wanted] = String(row.predictions).split('/').map(Number);
          if (!(p99 < 1_000) || got !== wanted) break;
          best = rate;
        }
        rows.push({
          run: `highest rate sustained 60 s with p99 < 1 s: ${best === undefined ? 'below 3,000' : best.toLocaleString('en')} events/s`,
        });
      }
      if (withRss)
        rows.push(await latency(rssRate, Math.round(rssMinutes * 60), true, rssProfile ? path.join(root, 'rss-profile') : undefined));
    }
  } finally {
    await producer.disconnect();
    await admin.disconnect();
    await cluster.stop();
    await fs.rm(root, { recursive: true, force: true });
  }
  printTable(
    `fused pipeline (ingest → features → inference), ${processes === 1 ? 'one process' : `${processes} processes in one group`}, 6 partitions, exactly-once, commit interval 100 ms`,
    rows,
  );
  for (const bound of bounds) process.stdout.write(`${bound}\n`);
}

/**
 * The broker's CPU-seconds and the machine's busy cores (every process: the pipeline, the broker,
 * this benchmark's load and its consumer) over a measured time: where the machine is near all its
 * cores busy, no split of the pipeline's work goes faster.
 */
function machineColumns(machine: CpuSnapshot, seconds: number): Record<string, string> {
  return {
    'CPU-s of the broker': machine.other === undefined ? 'not measured' : machine.other.toFixed(1),
    'machine busy (cores of all)': `${(machine.machineBusy / seconds).toFixed(2)} of ${(machine.machineTotal / seconds).toFixed(1)}`,
  };
}
