import fs from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { Session } from 'node:inspector/promises';
import { monitorEventLoopDelay } from 'node:perf_hooks';
import { parseArgs } from 'node:util';
import { Worker } from 'node:worker_threads';
import type { Kafka } from 'kafkajs';
import { loadConfig } from '../common/config.js';
import { createLogger } from '../common/logger.js';
import { createMetricsRegistry } from '../common/metrics.js';
import { uniformRandom } from '../common/random.js';
import { createKafka, startEphemeralKafka } from '../kafka/index.js';
import { demoEvents } from '../examples/fraud/generator.js';
import { ModelWatcher } from '../models/deployment.js';
import { toOnnx, type ScoringNetwork } from '../models/network.js';
import { ArtifactStore, registerModelVersion } from '../models/registry.js';
import { AvroSerde, registerSchemas, startSchemaRegistry } from '../schemas/index.js';
import { serveOps } from '../serving/ops-server.js';
import { OnlineStore, onlineRoutes } from '../serving/online.js';
import { predictRoutes } from '../serving/predict-route.js';
import { featuresStage } from '../streams/features/stage.js';
import { publishFeatureViews } from '../streams/features/registry.js';
import { ingestStage } from '../streams/ingest/stage.js';
import { runStage, type RunningStage } from '../streams/runtime/index.js';
import { modelInputs } from '../topology/models.js';
import { topologySubjects } from '../app/stages.js';
import { percentile, printTable } from './report.js';
import type { LoadRequest, LoadResult } from './predict-load.js';
import demo from '../examples/fraud/sluice.config.js';

/**
 * `npm run bench -- predict [--connections 1000] [--rate 2000] [--seconds 10]`: synchronous
 * predictions over HTTP (`POST /predict/fraud`) with the features stage's online state of 2,000
 * cards and the fraud model's champion, on loopback. A worker thread drives keep-alive
 * connections: first closed-loop (as fast as answers come, at that concurrency), then open-loop
 * at a fixed rate spread over the same connections (latency counted from when each request was
 * due). Bounded: at most `seconds` per phase and 10 s per request (a request slower than that is
 * a timeout). Reports p50/p99, requests/s, timeouts and non-200 answers.
 */
const PARTITIONS = 6;
const CARDS = 2_000;
const model = demo.models.find((candidate) => candidate.name === 'fraud');

/** An MLP of the fraud model's shape with seeded weights: what it scores does not matter here. */
function network(features: readonly string[]): ScoringNetwork {
  const random = uniformRandom(7);
  const hidden = 16;
  const weights = (count: number): Float32Array => Float32Array.from({ length: count }, () => random() - 0.5);
  return {
    features,
    mean: new Float32Array(features.length).fill(50),
    std: new Float32Array(features.length).fill(30),
    layers: [
      { inputs: features.length, outputs: hidden, weights: weights(features.length * hidden), bias: weights(hidden), activation: 'relu' },
      { inputs: hidden, outputs: 1, weights: weights(hidden), bias: weights(1), activation: 'sigmoid' },
    ],
  };
}

function load(request: LoadRequest): Promise<LoadResult> {
  return new Promise((resolve, reject) => {
    // The worker loads TypeScript through tsx, as the bench itself does.
    const script = new URL('./predict-load.ts', import.meta.url).href;
    const worker = new Worker(`import('tsx/esm/api').then(({ register }) => { register(); return import(${JSON.stringify(script)}); })`, {
      eval: true,
      workerData: request,
    });
    worker.once('message', (message: LoadResult | { error: string }) => {
      void worker.terminate();
      if ('error' in message) reject(new Error(message.error));
      else resolve(message);
    });
    worker.once('error', reject);
  });
}

/** The server's event loop while a phase runs: how long callbacks waited (ms). */
async function withLoopDelay(run: () => Promise<LoadResult>): Promise<{ result: LoadResult; loop: string }> {
  const histogram = monitorEventLoopDelay({ resolution: 10 });
  histogram.enable();
  const result = await run();
  histogram.disable();
  return { result, loop: `p99 ${(histogram.percentile(99) / 1e6).toFixed(0)} ms, max ${(histogram.max / 1e6).toFixed(0)} ms` };
}

function summarize(name: string, result: LoadResult): Record<string, string | number> {
  const answered = result.latencies.length;
  const ok = result.statuses['200'] ?? 0;
  return {
    phase: name,
    requests: result.sent,
    'requests/s': Math.round(answered / result.seconds),
    p50: `${percentile(result.latencies, 50).toFixed(1)} ms`,
    p99: `${percentile(result.latencies, 99).toFixed(1)} ms`,
    max: `${(result.latencies.at(-1) ?? Number.NaN).toFixed(1)} ms`,
    timeouts: result.timeouts,
    errors: result.errors,
    'not 200': answered - ok,
    // How late the load generator itself sent (it shares the machine): part of every latency above.
    'client lag p99': `${percentile(result.lateness, 99).toFixed(1)} ms`,
  };
}

export async function main(): Promise<void> {
  if (!model) throw new Error('no fraud model');
  const { values } = parseArgs({
    args: process.argv.slice(3),
    options: {
      connections: { type: 'string', default: '1000' },
      rate: { type: 'string', default: '2000' },
      seconds: { type: 'string', default: '10' },
      // A CPU profile of the server's thread during the measured phases (open it in Chrome DevTools).
      profile: { type: 'string' },
    },
  });
  const connections = Math.min(2_000, Number(values.connections));
  const rate = Math.min(20_000, Number(values.rate));
  const seconds = Math.min(60, Number(values.seconds));

  const config = loadConfig();
  const logger = createLogger('warn', 'bench');
  const cluster = await startEphemeralKafka(config, logger, '1g');
  const registry = await startSchemaRegistry({ brokers: cluster.brokers, topic: '_schemas', host: '127.0.0.1', port: 0, logger });
  const kafka = createKafka({ brokers: cluster.brokers, clientId: 'bench-predict' });
  const stages: RunningStage[] = [];
  let watcher: ModelWatcher | undefined;
  let server: Awaited<ReturnType<typeof serveOps>> | undefined;
  const rows: Record<string, string | number>[] = [];
  try {
    const prefix = 'bench.';
    const admin = kafka.admin();
    await admin.connect();
    await admin.createTopics({
      waitForLeaders: true,
      topics: [
        ...['raw.transactions', 'raw.clicks', 'raw.chargebacks', 'events.transactions', 'events.clicks', 'events.chargebacks', 'dlq']
          .concat(
            ['monitoring.quality'],
            demo.views.map((view) => `features.${view.name}`),
          )
          .map((topic) => ({ topic: `${prefix}${topic}`, numPartitions: PARTITIONS, replicationFactor: 1 })),
        ...['registry.features', 'registry.models'].map((topic) => ({
          topic: `${prefix}${topic}`,
          numPartitions: 1,
          replicationFactor: 1,
        })),
      ],
    });
    await admin.disconnect();
    const ids = await registerSchemas(registry.url, topologySubjects(prefix, demo), logger);
    const versions = await publishFeatureViews(demo.views, {
      kafka,
      topic: `${prefix}registry.features`,
      registryUrl: registry.url,
      schemaId: ids.get(`${prefix}registry.features-value`) ?? 0,
      logger,
    });
    const metrics = createMetricsRegistry(false);
    const stateDir = await fs.mkdtemp(path.join(os.tmpdir(), 'sluice-bench-predict-'));
    const options = (group: string) => ({
      brokers: cluster.brokers,
      groupId: group,
      dlqTopic: `${prefix}dlq`,
      metrics,
      logger,
      stateDir,
      topicPrefix: prefix,
      guarantee: 'exactly_once' as const,
    });
    const serdeFor = (reader?: ConstructorParameters<typeof AvroSerde>[1]): AvroSerde => new AvroSerde(registry.url, reader);
    stages.push(
      await runStage(
        ingestStage({
          sources: demo.sources,
          topicPrefix: prefix,
          serdeFor,
          schemaIds: {
            events: Object.fromEntries(demo.sources.map((source) => [source.name, ids.get(`${prefix}events.${source.name}-value`) ?? 0])),
            quality: ids.get(`${prefix}monitoring.quality-value`) ?? 0,
          },
          metrics,
        }),
        options('ingest'),
      ),
    );
    const features = await runStage(
      featuresStage({
        views: demo.views,
        versions,
        topicPrefix: prefix,
        serdeFor,
        schemaIds: Object.fromEntries(demo.views.map((view) => [view.name, ids.get(`${prefix}features.${view.name}-value`) ?? 0])),
        metrics,
      }),
      options('features'),
    );
    stages.push(features);

    // The champion: an MLP of the fraud model's inputs.
    const inputs = modelInputs(model);
    const artifacts = new ArtifactStore(await fs.mkdtemp(path.join(os.tmpdir(), 'sluice-bench-models-')));
    const sha = await artifacts.put(toOnnx(network(inputs), 'fraud'), {
      name: 'fraud',
      inputs,
      fill: inputs.map(() => 50),
      threshold: 0.5,
      trainer: 'tfjs-mlp',
      metrics: {},
      baseline: {},
    });
    await registerModelVersion(
      { kafka, topic: `${prefix}registry.models`, registryUrl: registry.url, schemaId: ids.get(`${prefix}registry.models-value`) ?? 0 },
      {
        name: 'fraud',
        artifact_sha256: sha,
        trainer: 'tfjs-mlp',
        params: {},
        metrics: {},
        dataset: { ranges: [], feature_versions: {} },
        code_commit: null,
        run_id: null,
        created_at: Date.now(),
      },
      ['champion'],
    );
    watcher = new ModelWatcher({
      kafka,
      topic: `${prefix}registry.models`,
      registryUrl: registry.url,
      model: 'fraud',
      artifacts,
      logger,
      maxWaitMs: 0,
    });
    await watcher.start();
    while (!watcher.current()) await new Promise((resolve) => setTimeout(resolve, 50));

    // Online state for every card: transactions through ingest and features.
    const history = [
      ...demoEvents({ seed: 3, events: 20_000, end: Date.now(), spanMs: 3_600_000, cards: CARDS, transactionShare: 1 }),
    ].filter((record) => record.topic === 'raw.transactions');
    await produceJson(kafka, `${prefix}raw.transactions`, history);
    const online = new OnlineStore(features, demo.views, prefix);
    const cards = [...new Set(history.map((record) => record.key))];
    // Ready when the last cards' rows are online (and every partition is this instance's).
    for (;;) {
      const found = await online.getMany(['card_txn_24h'], cards.slice(-20)).catch(() => []);
      if (found.length > 0 && found.every((entry) => entry.features.card_txn_24h?.status === 'PRESENT')) break;
      await new Promise((resolve) => setTimeout(resolve, 200));
    }

    server = await serveOps(metrics, { live: () => true, ready: () => true, detail: () => ({}) }, '127.0.0.1', 0, [
      onlineRoutes(() => online),
      predictRoutes(new Map([['fraud', { model, watcher }]]), () => online, metrics),
    ]);
    const random = uniformRandom(11);
    const bodies = Array.from({ length: 5_000 }, () =>
      JSON.stringify({ entity_id: cards[Math.floor(random() * cards.length)], event: { amount: Math.round(random() * 50_000) / 100 } }),
    );
    const request = (mode: 'closed' | 'open', phaseConnections: number, phaseRate: number, phaseSeconds: number): LoadRequest => ({
      url: `${server?.url ?? ''}/predict/fraud`,
      mode,
      preconnect: mode === 'open',
      connections: phaseConnections,
      rate: phaseRate,
      seconds: phaseSeconds,
      maxRequests: 500_000,
      timeoutMs: 10_000,
      headers: {},
      bodies,
    });
    await load(request('closed', 50, 0, 3)); // warm-up
    const profiler = values.profile === undefined ? undefined : new Session();
    if (profiler) {
      profiler.connect();
      await profiler.post('Profiler.enable');
      await profiler.post('Profiler.start');
    }
    for (const [name, phase] of [
      [`closed loop, ${connections} connections`, request('closed', connections, 0, seconds)],
      [`open loop, ${rate}/s over ${connections} connections`, request('open', connections, rate, seconds)],
    ] as const) {
      const { result, loop } = await withLoopDelay(() => load(phase));
      rows.push({ ...summarize(name, result), 'server event loop delay': loop });
    }
    if (profiler && values.profile !== undefined) {
      const { profile } = await profiler.post('Profiler.stop');
      await fs.writeFile(values.profile, JSON.stringify(profile));
      profiler.disconnect();
    }
  } finally {
    await server?.close();
    for (const stage of stages.reverse()) await stage.stop();
    await watcher?.stop();
    await registry.stop();
    await cluster.stop();
  }
  printTable(
    `POST /predict/fraud on loopback (features of ${CARDS} cards online; ${os.cpus().length} cores; one Node process, load from a worker thread)`,
    rows,
  );
}

async function produceJson(
  kafka: Kafka,
  topic: string,
  records: readonly { key: string; value: Record<string, unknown> }[],
): Promise<void> {
  const producer = kafka.producer({ idempotent: true, maxInFlightRequests: 1 });
  await producer.connect();
  for (let start = 0; start < records.length; start += 5_000) {
    await producer.send({
      topic,
      messages: records.slice(start, start + 5_000).map((record) => ({ key: record.key, value: JSON.stringify(record.value) })),
    });
  }
  await producer.disconnect();
}
