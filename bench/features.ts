import fs from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { loadConfig } from '../common/config.js';
import { createLogger } from '../common/logger.js';
import { createKafka, startEphemeralKafka } from '../kafka/index.js';
import { demoEvents } from '../examples/fraud/generator.js';
import { createMetricsRegistry } from '../common/metrics.js';
import { serveOps } from '../serving/ops-server.js';
import { ChdbEngine, EmbeddedOfflineStore, ensureTables, featureTable, insertNew, offlineTables } from '../offline/index.js';
import { pointInTimeJoin, pointInTimeSql, type Label } from '../offline/point-in-time.js';
import { AvroSerde, registerSchemas, startSchemaRegistry, platformSubjects, sourceSubjects, viewSubjects } from '../schemas/index.js';
import type { FeatureRow } from '../streams/features/engine.js';
import { OnlineStore, onlineRoutes } from '../serving/online.js';
import { featuresStage, featureVector } from '../streams/features/stage.js';
import { runStage } from '../streams/runtime/index.js';
import { runSink } from '../streams/sink/stage.js';
import { publishFeatureViews } from '../streams/features/registry.js';
import { percentile, printTable } from './report.js';
import { uniformRandom } from '../common/random.js';
import demo from '../examples/fraud/sluice.config.js';
import { retryKafka } from '../kafka/index.js';
import { Session } from 'node:inspector/promises';
import { printAllocationProfile, printProfile } from './profile.js';
import { eventsArgument } from './arguments.js';
import { cpuSnapshot, cpuSpent, type CpuSnapshot } from './machine-cpu.js';

/**
 * The feature store's numbers: events/s through the features stage with every demo view
 * (exactly-once, one Node process), online lookup latency in-process and over HTTP, sink rows/s
 * into embedded chDB, and the seconds to build a point-in-time training set of 100,000 labels
 * over 1,000,000 feature rows (SQL ASOF JOIN, and the in-memory join over replayed rows).
 * The stage's run ends when its group has committed the whole input (so every row is committed).
 * `--stage-only` measures only the features stage; `--profile` adds where the stage's time goes
 * (this process's CPU profile while the stage runs: the stage shares it with nothing else then);
 * `--alloc-profile` adds what it allocates (the sampling heap profiler, collected objects included).
 * The stage's row also gives this process's CPU-seconds over the run, and events per CPU-second:
 * the stage's own cost, which the broker's share of the 2 cores does not blur as much as events/s.
 */
/** The input's events: 100,000, or `--events=<n>` (a longer run puts the start and the JIT's warm-up in a smaller share). */
const EVENTS = eventsArgument(100_000);
const PARTITIONS = 6;
const DAY = 86_400_000;

export async function main(): Promise<void> {
  const config = loadConfig();
  const logger = createLogger('warn', 'bench');
  const cluster = await startEphemeralKafka(config, logger, '1g');
  const registry = await startSchemaRegistry({ brokers: cluster.brokers, topic: '_schemas', host: '127.0.0.1', port: 0, logger });
  const kafka = createKafka({ brokers: cluster.brokers, clientId: 'bench-features' });
  const chdbDir = await fs.mkdtemp(path.join(os.tmpdir(), 'sluice-bench-chdb-'));
  const stateDir = await fs.mkdtemp(path.join(os.tmpdir(), 'sluice-bench-state-'));
  const store = new EmbeddedOfflineStore(new ChdbEngine(chdbDir));
  const rows: Record<string, string | number>[] = [];
  let stageCpu: { readonly spent: CpuSnapshot; readonly seconds: number } | undefined;
  try {
    const prefix = 'bench.';
    const tables = offlineTables({ sources: demo.sources.filter((source) => source.name !== 'chargebacks'), views: demo.views });
    const admin = kafka.admin();
    await admin.connect();
    await retryKafka(() =>
      admin.createTopics({
        waitForLeaders: true,
        topics: tables.map((table) => ({
          topic: `${prefix}${table.topic}`,
          numPartitions: table.topic.startsWith('registry.') ? 1 : PARTITIONS,
          replicationFactor: 1,
        })),
      }),
    );
    await admin.disconnect();
    const ids = await registerSchemas(
      registry.url,
      [
        ...platformSubjects(prefix),
        ...demo.sources
          .filter((source) => source.name !== 'chargebacks')
          .flatMap((source) => sourceSubjects(prefix, source.name, source.rawSchema, source.eventsSchema)),
        ...viewSubjects(
          prefix,
          demo.views.map((view) => view.name),
        ),
      ],
      logger,
    );
    const versions = await publishFeatureViews(demo.views, {
      kafka,
      topic: `${prefix}registry.features`,
      registryUrl: registry.url,
      schemaId: ids.get(`${prefix}registry.features-value`) ?? 0,
      logger,
    });

    // ---- input: EVENTS demo events, already in the events.* shape ------------------------
    const serde = new AvroSerde(registry.url);
    const producer = kafka.producer({ idempotent: true, maxInFlightRequests: 1 });
    await producer.connect();
    const end = Date.now();
    let batch: { topic: string; key: string; value: Buffer }[] = [];
    const flush = async (): Promise<void> => {
      const byTopic = new Map<string, { key: string; value: Buffer }[]>();
      for (const message of batch)
        byTopic.set(message.topic, [...(byTopic.get(message.topic) ?? []), { key: message.key, value: message.value }]);
      await producer.sendBatch({ acks: -1, topicMessages: [...byTopic].map(([topic, messages]) => ({ topic, messages })) });
      batch = [];
    };
    let transactions = 0;
    for (const record of demoEvents({ seed: 1, events: EVENTS, end, spanMs: 7 * DAY, cards: 5_000, users: 3_000 })) {
      // Chargebacks are labels, not a source of these views.
      if (record.topic === 'raw.chargebacks') continue;
      const source = record.topic === 'raw.transactions' ? 'transactions' : 'clicks';
      if (source === 'transactions') transactions++;
      const idField = source === 'transactions' ? 'transaction_id' : 'click_id';
      const event = {
        ...record.value,
        event_id: `${source}:${String(record.value[idField])}`,
        event_time: record.value.timestamp,
        ingest_time: end,
      };
      batch.push({
        topic: `${prefix}events.${source}`,
        key: record.key,
        value: await serde.encode(ids.get(`${prefix}events.${source}-value`) ?? 0, event),
      });
      if (batch.length >= 5_000) await flush();
    }
    await flush();
    await producer.disconnect();

    // ---- the features stage, exactly-once ---------------------------------------------------
    const metrics = createMetricsRegistry(false);
    const recordsIn = async (): Promise<number> =>
      ((await metrics.getSingleMetric('sluice_records_in_total')?.get())?.values ?? []).reduce((sum, value) => sum + value.value, 0);
    // The run ends when the group's committed offsets reach the input's end: the offsets commit in
    // the transactions that write the rows, so then every row is committed. Set up before the timing.
    const inputTopics = ['transactions', 'clicks'].map((source) => `${prefix}events.${source}`);
    const watcher = kafka.admin();
    await watcher.connect();
    const inputEnd = (await Promise.all(inputTopics.map(async (topic) => await retryKafka(() => watcher.fetchTopicOffsets(topic)))))
      .flat()
      .reduce((sum, partition) => sum + Number(partition.high), 0);
    const committedIn = async (): Promise<number> =>
      (await retryKafka(() => watcher.fetchOffsets({ groupId: 'bench-features', topics: inputTopics })))
        .flatMap((topic) => topic.partitions)
        .reduce((sum, partition) => sum + Math.max(0, Number(partition.offset)), 0);
    const profiler = process.argv.includes('--profile') ? new Session() : undefined;
    if (profiler) {
      profiler.connect();
      await profiler.post('Profiler.enable');
      await profiler.post('Profiler.start');
    }
    const allocations = process.argv.includes('--alloc-profile') ? new Session() : undefined;
    if (allocations) {
      allocations.connect();
      await allocations.post('HeapProfiler.enable');
      await allocations.post('HeapProfiler.startSampling', {
        samplingInterval: 16_384,
        includeObjectsCollectedByMajorGC: true,
        includeObjectsCollectedByMinorGC: true,
      });
    }
    let started = performance.now();
    // This process's CPU time over the stage's run: the stage's own cost, apart from the broker's
    // (another process) on the same 2 cores. The 20 ms polls of the committed offsets count too.
    // With its main thread's, the broker's and the whole machine's (`cpuTable`).
    const cpuBefore = process.cpuUsage();
    const snapshotBefore = await cpuSnapshot(cluster.pid);
    const stage = await runStage(
      featuresStage({
        views: demo.views,
        versions,
        topicPrefix: prefix,
        serdeFor: (reader) => new AvroSerde(registry.url, reader),
        schemaIds: Object.fromEntries(demo.views.map((view) => [view.name, ids.get(`${prefix}features.${view.name}-value`) ?? 0])),
        metrics,
      }),
      {
        brokers: cluster.brokers,
        groupId: 'bench-features',
        dlqTopic: `${prefix}dlq`,
        metrics,
        logger,
        guarantee: 'exactly_once',
        stateDir,
        topicPrefix: prefix,
      },
    );
    // The first record taken ends the start (group join, producers, restore): reported apart. The
    // run ends when the group's committed offsets reach the input's end (see above).
    let firstIn: number | undefined;
    for (;;) {
      if (firstIn === undefined && (await recordsIn()) > 0) firstIn = performance.now();
      if ((await committedIn()) >= inputEnd) break;
      await new Promise((resolve) => setTimeout(resolve, 20));
    }
    const stageSeconds = (performance.now() - started) / 1000;
    const cpu = process.cpuUsage(cpuBefore);
    const cpuSeconds = (cpu.user + cpu.system) / 1e6;
    stageCpu = { spent: cpuSpent(snapshotBefore, await cpuSnapshot(cluster.pid)), seconds: (performance.now() - started) / 1000 };
    const startSeconds = ((firstIn ?? performance.now()) - started) / 1000;
    await watcher.disconnect();
    if (profiler) {
      const { profile } = await profiler.post('Profiler.stop');
      profiler.disconnect();
      const profileDir = await fs.mkdtemp(path.join(os.tmpdir(), 'sluice-bench-profile-'));
      await fs.writeFile(path.join(profileDir, 'stage.cpuprofile'), JSON.stringify(profile));
      await printProfile(profileDir, 'the features stage');
      await fs.rm(profileDir, { recursive: true, force: true });
    }
    if (allocations) {
      const { profile } = await allocations.post('HeapProfiler.stopSampling');
      allocations.disconnect();
      await printAllocationProfile(profile, 'the features stage', EVENTS, 'event');
    }
    const featureRows = transactions * 3 + (EVENTS - transactions);
    rows.push({
      measure: 'features stage, exactly-once, 4 demo views',
      count: `${EVENTS} events → ${featureRows} rows`,
      seconds: stageSeconds.toFixed(2),
      rate: `${Math.round(EVENTS / stageSeconds)} events/s`,
      'CPU-s (this process)': cpuSeconds.toFixed(2),
      'events per CPU-s': Math.round(EVENTS / cpuSeconds),
    });
    rows.push({
      measure: '  of which the start (to the first record taken)',
      count: '',
      seconds: startSeconds.toFixed(2),
      rate: `${Math.round(EVENTS / (stageSeconds - startSeconds))} events/s after it`,
    });
    if (process.argv.includes('--stage-only')) {
      await stage.stop();
      printTable(`Feature store (${EVENTS} demo events, ${PARTITIONS} partitions, local broker)`, rows);
      printCpuTable(stageCpu);
      return;
    }

    // ---- online lookups ------------------------------------------------------------------
    const online = new OnlineStore(stage, demo.views, prefix);
    const random = uniformRandom(3);
    const lookups = 20_000;
    const inProcess: number[] = [];
    for (let index = 0; index < lookups; index++) {
      const card = `card-${Math.floor(random() ** 2 * 5_000)}`;
      const before = performance.now();
      await online.get('card_txn_24h', card, end);
      inProcess.push(performance.now() - before);
    }
    inProcess.sort((left, right) => left - right);
    rows.push({
      measure: 'online lookup in-process (1 view)',
      count: lookups,
      seconds: '',
      rate: `p50 ${percentile(inProcess, 50).toFixed(3)} ms, p99 ${percentile(inProcess, 99).toFixed(3)} ms`,
    });
    const ops = await serveOps(metrics, { live: () => true, ready: () => true, detail: () => ({}) }, '127.0.0.1', 0, [
      onlineRoutes(() => online),
    ]);
    const overHttp: number[] = [];
    for (let index = 0; index < lookups / 4; index++) {
      const card = `card-${Math.floor(random() ** 2 * 5_000)}`;
      const before = performance.now();
      const response = await fetch(`${ops.url}/features/card_txn_24h/${card}?at=${end}`);
      await response.arrayBuffer();
      overHttp.push(performance.now() - before);
    }
    overHttp.sort((left, right) => left - right);
    rows.push({
      measure: 'online lookup over HTTP (GET, keep-alive)',
      count: lookups / 4,
      seconds: '',
      rate: `p50 ${percentile(overHttp, 50).toFixed(3)} ms, p99 ${percentile(overHttp, 99).toFixed(3)} ms`,
    });
    await ops.close();
    await stage.stop();

    // ---- the sink into embedded chDB ----------------------------------------------------------
    await ensureTables(store, tables);
    started = performance.now();
    const sink = await runSink({
      brokers: cluster.brokers,
      groupId: 'bench-sink',
      topicPrefix: prefix,
      tables,
      store,
      registryUrl: registry.url,
      dlqTopic: `${prefix}dlq`,
      metrics,
      logger,
    });
    const expectedRows = EVENTS + featureRows;
    while (sink.status().inserted < expectedRows) await new Promise((resolve) => setTimeout(resolve, 50));
    const sinkSeconds = (performance.now() - started) / 1000;
    await sink.stop();
    rows.push({
      measure: 'sink → chDB (events + feature rows)',
      count: expectedRows,
      seconds: sinkSeconds.toFixed(2),
      rate: `${Math.round(expectedRows / sinkSeconds)} rows/s`,
    });

    // ---- point-in-time training set: 100,000 labels over 1,000,000 feature rows ---------------
    const view = demo.views.find((candidate) => candidate.name === 'card_txn_24h');
    if (!view) throw new Error('no card_txn_24h view');
    const table = featureTable(view);
    await store.command(`TRUNCATE TABLE ${table.name}`);
    const synthetic: FeatureRow[] = [];
    const entities = 10_000;
    for (let index = 0; index < 1_000_000; index++) {
      const eventTime = end - 30 * DAY + Math.floor((30 * DAY * index) / 1_000_000);
      synthetic.push({
        view: view.name,
        version: versions.get(view.name) ?? 1,
        entity: `card-${index % entities}`,
        eventId: `e${index}`,
        eventTime,
        sequence: index,
        windowStart: eventTime - DAY,
        windowEnd: eventTime,
        values: { txn_count: index % 17, amount_sum: (index % 1_000) / 3, merchant_count: index % 5 },
      });
    }
    for (let start = 0; start < synthetic.length; start += 100_000) {
      await store.insert(
        table.name,
        synthetic
          .slice(start, start + 100_000)
          .map((row) =>
            table.toRow(featureVector(row), { partition: 0, offset: String(row.sequence), timestamp: 0, key: null, headers: {} }),
          ),
      );
    }
    const labels: Label[] = Array.from({ length: 100_000 }, (_, index) => ({
      label_id: `l${index}`,
      entity_id: `card-${Math.floor(random() * entities)}`,
      label_time: end - Math.floor(random() * 30 * DAY),
      label: random() < 0.05 ? 1 : 0,
    }));
    const requests = [{ view, version: versions.get(view.name) ?? 1 }];
    started = performance.now();
    const bySql = await pointInTimeSql(store, labels, requests);
    const sqlSeconds = (performance.now() - started) / 1000;
    started = performance.now();
    const byJoin = pointInTimeJoin(synthetic, labels, requests);
    const joinSeconds = (performance.now() - started) / 1000;
    const agree = JSON.stringify(bySql) === JSON.stringify(byJoin);
    rows.push({
      measure: 'point-in-time set by SQL (ASOF JOIN, chDB)',
      count: '100,000 labels × 1,000,000 rows',
      seconds: sqlSeconds.toFixed(2),
      rate: agree ? 'equal to the replay join' : 'DIFFERS from the replay join',
    });
    rows.push({
      measure: 'point-in-time set in memory (replayed rows)',
      count: '100,000 labels × 1,000,000 rows',
      seconds: joinSeconds.toFixed(2),
      rate: '',
    });
    // Idempotent rewrite cost: the same 100,000 rows again, all skipped.
    started = performance.now();
    const again = await insertNew(
      store,
      table,
      synthetic
        .slice(0, 100_000)
        .map((row) =>
          table.toRow(featureVector(row), { partition: 0, offset: String(row.sequence), timestamp: 0, key: null, headers: {} }),
        ),
    );
    rows.push({
      measure: 'idempotent re-insert of 100,000 present rows',
      count: `${again} inserted`,
      seconds: ((performance.now() - started) / 1000).toFixed(2),
      rate: '',
    });
  } finally {
    await store.close();
    await registry.stop();
    await cluster.stop();
    await fs.rm(chdbDir, { recursive: true, force: true });
    await fs.rm(stateDir, { recursive: true, force: true });
  }
  printTable(`Feature store (${EVENTS} demo events, ${PARTITIONS} partitions, local broker, embedded chDB)`, rows);
  printCpuTable(stageCpu);
}

/**
 * Where the CPU went over the stage's run: its main thread (the stage's JavaScript, one core at
 * most), this process, the broker and the whole machine, each as CPU-seconds, cores busy on
 * average and events per CPU-second; and the rate at which the machine's cores would all be busy
 * at the run's cost per event (a bound no process on this machine passes, however it is split).
 */
function printCpuTable({ spent, seconds }: { readonly spent: CpuSnapshot; readonly seconds: number }): void {
  const cores = spent.machineTotal / seconds;
  const line = (who: string, cpuSeconds: number | undefined): Record<string, string | number> =>
    cpuSeconds === undefined
      ? { who, 'CPU-s': 'not measured (an external broker)' }
      : {
          who,
          'CPU-s': cpuSeconds.toFixed(2),
          'cores busy (average)': (cpuSeconds / seconds).toFixed(2),
          'events per CPU-s': Math.round(EVENTS / cpuSeconds),
        };
  printTable(`Where the CPU went over the features stage's run (${seconds.toFixed(2)} s, ${cores.toFixed(1)} cores)`, [
    line('main thread (the stage)', spent.mainThread),
    line('this process, all threads', spent.process),
    line('the broker', spent.other),
    line('the machine, every process', spent.machineBusy),
  ]);
  process.stdout.write(
    `All ${cores.toFixed(1)} cores would be busy at about ${Math.round((EVENTS / spent.machineBusy) * cores)} events/s at this run's CPU per event.\n`,
  );
}
