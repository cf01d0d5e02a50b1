import path from 'node:path';
import type { Admin, Kafka } from 'kafkajs';
import { afterAll, beforeAll, describe, expect, inject, it } from 'vitest';
import { launch, type Launched } from '../../app/launch.js';
import { loadConfig } from '../../common/config.js';
import { silentLogger } from '../../common/logger.js';
import { createMetricsRegistry } from '../../common/metrics.js';
import { demoEvents, type DemoRecord } from '../../examples/fraud/generator.js';
import demo from '../../examples/fraud/sluice.config.js';
import { runCanary, type CanaryOptions } from '../../jobs/canary.js';
import { parseGates } from '../../models/gates.js';
import { train } from '../../models/trainer.js';
import type { ScoringNetwork } from '../../models/network.js';
import { ArtifactStore, readModelRegistry } from '../../models/registry.js';
import { entityBucket, readDeployments, trafficAt, type DeploymentRecord } from '../../models/rollout.js';
import { changeRollout, type RolloutRegistry } from '../../models/rollout-registry.js';
import { ChdbEngine, EmbeddedOfflineStore, ensureTables, offlineTables } from '../../offline/index.js';
import { AvroSerde } from '../../schemas/index.js';
import { runSink, type RunningSink } from '../../streams/sink/stage.js';
import { setUpDemo, type DemoSetup } from '../pipeline/demo-setup.js';
import { produceDemo, registerNetwork } from './fixtures.js';
import { createTopic, groupLag, readToEnd, removeTempDirs, tempDir, testKafka, uniqueName, waitUntil } from '../helpers.js';
import { historyFromSql, trafficLine } from './readme-history.js';

const HOUR = 3_600_000;
const logger = silentLogger();
const fraud = demo.models.find((candidate) => candidate.name === 'fraud')!;

interface Prediction {
  readonly event_id: string;
  readonly entity_id: string;
  readonly model_version: number;
  readonly deployment: string;
  readonly deployment_id: string | null;
  readonly score: number;
  readonly fallback_reason: string | null;
  readonly features: Record<string, number | null>;
  readonly event_time: number;
}

/** Mean log loss of scores against outcomes. */
const logLoss = (scores: readonly number[], outcomes: readonly number[]): number =>
  scores.reduce((sum, score, index) => {
    const p = Math.min(1 - 1e-7, Math.max(1e-7, score));
    return sum - (outcomes[index] === 1 ? Math.log(p) : Math.log(1 - p));
  }, 0) / scores.length;

/** Two hours of demo traffic ending at `end`, over 20,000 cards (so a hash split has entities to split). */
const batch = (seed: number, end: number, events: number): DemoRecord[] => [
  ...demoEvents({ seed, events, end, spanMs: 2 * HOUR, cards: 20_000, users: 2_000, fraudRate: 0.02, chargebackDelayMs: 10 * 60_000 }),
];

describe('canary rollouts on the fused pipeline: hash split, gates, automatic rollback and promotion, history', () => {
  const prefix = `${uniqueName('canary')}.`;
  const now = Date.now();
  const batches = [batch(31, now - 5 * HOUR, 34_000), batch(32, now - 3 * HOUR, 12_000), batch(33, now - HOUR, 12_000)];
  let kafka: Kafka;
  let admin: Admin;
  let setup: DemoSetup;
  let artifacts: ArtifactStore;
  let registry: RolloutRegistry;
  let store: EmbeddedOfflineStore;
  let sink: RunningSink | undefined;
  let launched: Launched | undefined;
  let produced = 0;
  const records: DeploymentRecord[] = [];
  const versions = { worse: 0, good: 0, trained: 0 };

  const register = (network: ScoringNetwork, run: string): Promise<number> => registerNetwork(setup, artifacts, registry, network, run);

  const produce = async (records: readonly DemoRecord[]): Promise<void> => {
    produced += await produceDemo(kafka, prefix, records);
  };

  /** Every prediction, read to the end offsets once the pipeline has consumed everything produced. */
  const predictions = async (): Promise<Prediction[]> => {
    await waitUntil(
      async () =>
        (await groupLag(admin, `${prefix}sluice-pipeline`, `${prefix}raw.transactions`)) === 0 &&
        (await groupLag(admin, `${prefix}sluice-pipeline`, `${prefix}raw.chargebacks`)) === 0,
      240_000,
      'the pipeline caught up',
    );
    const serde = new AvroSerde(setup.registry.url);
    return Promise.all(
      (await readToEnd(kafka, `${prefix}predictions.fraud`)).map(async (message) => (await serde.decode(message.value!)) as Prediction),
    );
  };

  const canary = (
    candidate: number,
    steps: number[],
    stepEveryMs: number,
    gates: string,
    signal?: AbortSignal,
  ): Promise<Awaited<ReturnType<typeof runCanary>>> => {
    const options: CanaryOptions = {
      kafka,
      registryUrl: setup.registry.url,
      topicPrefix: prefix,
      registry,
      alerts: { topic: `${prefix}monitoring.alerts`, schemaId: setup.ids.get(`${prefix}monitoring.alerts-value`)! },
      model: fraud,
      candidate,
      steps,
      stepEveryMs,
      gates: parseGates(gates),
      actor: 'canary test',
      logger,
      onRecord: (record) => records.push(record),
      ...(signal ? { signal } : {}),
    };
    return runCanary(options);
  };

  const watcher = () => launched!.watchers.get('fraud')!.watcher;

  beforeAll(async () => {
    kafka = testKafka();
    admin = kafka.admin();
    await admin.connect();
    const dataDir = await tempDir('sluice-canary-');
    artifacts = new ArtifactStore(path.join(dataDir, 'models'));
    setup = await setUpDemo({ kafka, admin, brokers: inject('brokers'), prefix, partitions: 3, modelsDir: artifacts.dir });
    await createTopic(admin, `${prefix}registry.deployments`, 1, { 'cleanup.policy': 'compact' });
    await createTopic(admin, `${prefix}monitoring.alerts`, 1);
    registry = {
      kafka,
      topic: `${prefix}registry.models`,
      registryUrl: setup.registry.url,
      schemaId: setup.ids.get(`${prefix}registry.models-value`)!,
      deployments: { topic: `${prefix}registry.deployments`, schemaId: setup.ids.get(`${prefix}registry.deployments-value`)! },
    };
    // A deliberately worse candidate (0.993 for every event: it flags everything) and a good one.
    const champion = setup.network;
    const layer = champion.layers[0]!;
    versions.worse = await register(
      { ...champion, layers: [{ ...layer, weights: layer.weights.map(() => 0), bias: Float32Array.from([5]) }] },
      'worse',
    );
    versions.good = await register({ ...champion, layers: [{ ...layer, bias: Float32Array.from([-2.05]) }] }, 'good');
    // registry.deployments into ClickHouse, for the README's history query.
    store = new EmbeddedOfflineStore(new ChdbEngine(path.join(dataDir, 'chdb')));
    const tables = offlineTables({ sources: demo.sources, views: demo.views }).filter((table) => table.topic === 'registry.deployments');
    await ensureTables(store, tables);
    sink = await runSink({
      brokers: inject('brokers'),
      groupId: `${prefix}sink`,
      topicPrefix: prefix,
      tables,
      store,
      registryUrl: setup.registry.url,
      dlqTopic: `${prefix}dlq`,
      metrics: createMetricsRegistry(false),
      logger,
    });
    const config = loadConfig({
      SLUICE_DATA_DIR: dataDir,
      SLUICE_TOPIC_PREFIX: prefix,
      KAFKA_BROKERS: inject('brokers').join(','),
      SLUICE_LOG_LEVEL: 'warn',
    });
    launched = await launch('pipeline', {
      config,
      topology: demo,
      brokers: inject('brokers'),
      registryUrl: setup.registry.url,
      schemaIds: setup.ids,
      metrics: createMetricsRegistry(false),
      logger,
      modelsDir: artifacts.dir,
    });
    await waitUntil(() => watcher().current()?.version.version === 1, 60_000, 'version 1 in service');
  });

  afterAll(async () => {
    await launched?.stop();
    await sink?.stop();
    await store.close();
    await setup.registry.stop();
    await admin.disconnect();
    await removeTempDirs();
  });

  it('splits by entity hash: 25% of 20,000+ events to the canary within 2 points, every entity on its bucket, each event once', async () => {
    const stop = new AbortController();
    // No gate may judge while the split is measured: neither the sample gates nor the label test.
    const run = canary(versions.good, [0.25], 1_000 * HOUR, 'minSample=1e12,minLabelled=1e12', stop.signal);
    await waitUntil(() => records.length === 1 && watcher().candidate()?.version.version === versions.good, 60_000, 'the canary loaded');
    const deployment = records[0]!.deployment_id;
    await produce(batches[0]!);
    const all = await predictions();
    expect(all).toHaveLength(produced);
    expect(new Set(all.map((prediction) => prediction.event_id)).size).toBe(produced);
    const routed = all.filter((prediction) => prediction.deployment_id === deployment);
    expect(routed.length).toBeGreaterThanOrEqual(20_000);
    const share = routed.filter((prediction) => prediction.deployment === 'CANARY').length / routed.length;
    const misrouted = routed.filter(
      (prediction) =>
        prediction.deployment !== 'FALLBACK' &&
        (prediction.deployment === 'CANARY') !== entityBucket(deployment, prediction.entity_id) < 0.25,
    );
    const wrongVersion = routed.filter(
      (prediction) =>
        (prediction.deployment === 'CANARY' && prediction.model_version !== versions.good) ||
        (prediction.deployment === 'CHAMPION' && prediction.model_version !== 1),
    );
    process.stdout.write(
      `canary split: ${(share * 100).toFixed(2)}% of ${routed.length} events (configured 25%), ${misrouted.length} off their bucket\n`,
    );
    expect(Math.abs(share - 0.25)).toBeLessThanOrEqual(0.02);
    expect(misrouted).toHaveLength(0);
    expect(wrongVersion).toHaveLength(0);
    stop.abort();
    await expect(run).rejects.toThrow(/stopped before a verdict/);
    records.push(
      await changeRollout(registry, records[0]!, {
        action: 'ABORT',
        state: 'ABORTED',
        share: 0,
        actor: 'canary test',
        reason: 'split measured',
      }),
    );
    await waitUntil(() => watcher().candidate() === undefined, 30_000, 'the aborted canary unloaded');
  });

  it('rolls a worse candidate back by its label test, in one registry record, with an alert', async () => {
    const before = records.length;
    const run = canary(versions.worse, [0.25, 0.5, 1], 1_000 * HOUR, 'minSample=200,maxScorePsi=off,maxP99LatencyMs=5000,minLabelled=50');
    await waitUntil(
      () => records.length === before + 1 && watcher().candidate()?.version.version === versions.worse,
      60_000,
      'the canary loaded',
    );
    await produce(batches[1]!);
    const outcome = await run;
    process.stdout.write(
      `worse candidate: ${outcome.final.state} after ${outcome.labelled} labelled outcomes (${outcome.canary.labelled} canary, ${outcome.champion.labelled} champion), ${outcome.canary.predictions} canary predictions: ${outcome.final.reason}\n`,
    );
    expect(outcome.final).toMatchObject({
      action: 'ROLLBACK',
      state: 'ROLLED_BACK',
      candidate_share: 0,
      champion_version: 1,
      actor: 'gates',
    });
    expect(outcome.final.reason).toContain('log_loss_msprt');
    expect(outcome.labelled).toBeLessThan(5_000);
    expect(records.slice(before).map((record) => record.action)).toEqual(['START', 'ROLLBACK']);
    const alerts = await readToEnd(kafka, `${prefix}monitoring.alerts`);
    expect(alerts).toHaveLength(1);
    expect((await readModelRegistry(registry)).find((version) => version.aliases.includes('champion'))?.version).toBe(1);
    await waitUntil(() => watcher().candidate() === undefined, 30_000, 'the rolled-back canary unloaded');
    const all = await predictions();
    expect(new Set(all.map((prediction) => prediction.event_id)).size).toBe(produced);
    expect(all).toHaveLength(produced);
  });

  it('promotes a trained, better candidate after its last step, and history from the log and the README SQL answers at 5 sampled times', async () => {
    // ---- a better candidate: logistic regression trained on the features the champion was served ----
    const fraud = new Map(
      batches
        .slice(0, 2)
        .flat()
        .filter((record) => record.topic === 'raw.transactions')
        .map((record) => [`transactions:${String(record.value.transaction_id)}`, record.fraud ? 1 : 0]),
    );
    const served = (await predictions())
      .filter((prediction) => prediction.fallback_reason === null && prediction.model_version === 1 && fraud.has(prediction.event_id))
      .sort((left, right) => left.event_time - right.event_time);
    const cut = Math.floor(served.length * 0.8);
    const rowOf = (prediction: Prediction): (number | null)[] => setup.inputs.map((input) => prediction.features[input] ?? null);
    const labelOf = (prediction: Prediction): number => fraud.get(prediction.event_id) ?? 0;
    const trained = await train(served.slice(0, cut).map(rowOf), served.slice(0, cut).map(labelOf), {
      kind: 'logistic',
      features: setup.inputs,
      seed: 7,
      epochs: 20,
      learningRate: 0.05,
      batchSize: 256,
    });
    const heldOut = served.slice(cut);
    const candidateScores = Array.from(await trained.predict(heldOut.map(rowOf)));
    const championLoss = logLoss(
      heldOut.map((prediction) => prediction.score),
      heldOut.map(labelOf),
    );
    const candidateLoss = logLoss(candidateScores, heldOut.map(labelOf));
    process.stdout.write(
      `trained candidate: held-out log loss ${candidateLoss.toFixed(4)} vs the champion's ${championLoss.toFixed(4)} on ${heldOut.length} events\n`,
    );
    expect(candidateLoss).toBeLessThan(championLoss);
    versions.trained = await register(trained.network, 'trained');

    // The trained model's scores are far from the fixed champion's: the score-shift gate is off; the label test judges.
    const before = records.length;
    const run = canary(versions.trained, [0.5, 1], HOUR / 2, 'minSample=200,maxP99LatencyMs=5000,minLabelled=50,maxScorePsi=off');
    await waitUntil(
      () => records.length === before + 1 && watcher().candidate()?.version.version === versions.trained,
      60_000,
      'the canary loaded',
    );
    await produce(batches[2]!);
    const outcome = await run;
    process.stdout.write(
      `trained candidate: ${outcome.final.state} after ${outcome.labelled} labelled outcomes: ${outcome.final.reason}\n`,
    );
    expect(records.slice(before).map((record) => record.action)).toEqual(['START', 'STEP', 'PROMOTE']);
    expect(outcome.final).toMatchObject({ state: 'PROMOTED', champion_version: versions.trained });
    expect((await readModelRegistry(registry)).find((version) => version.aliases.includes('champion'))?.version).toBe(versions.trained);
    await waitUntil(() => watcher().current()?.version.version === versions.trained, 30_000, 'the promoted version in service');
    const all = await predictions();
    expect(all).toHaveLength(produced);
    expect(new Set(all.map((prediction) => prediction.event_id)).size).toBe(produced);

    // ---- history at 5 sampled times across the rollouts ----------------------------------
    const at = (index: number): number => (records[index]!.at + (records[index + 1]?.at ?? records[index]!.at + 60_000)) / 2;
    const expectations: [number, string][] = [
      [at(0), `1 CHAMPION 0.75, ${versions.good} CANARY 0.25`], // the split canary
      [at(1), '1 CHAMPION 1'], // aborted
      [at(2), `1 CHAMPION 0.75, ${versions.worse} CANARY 0.25`], // the worse canary
      [at(3), '1 CHAMPION 1'], // rolled back
      [at(records.length - 1), `${versions.trained} CHAMPION 1`], // promoted
    ];
    const log = await readDeployments({ kafka, topic: `${prefix}registry.deployments`, registryUrl: setup.registry.url });
    await waitUntil(
      async () => Number((await store.query<{ n: string }>('SELECT count() AS n FROM registry_deployments'))[0]?.n) === log.length,
      60_000,
      `${log.length} rows in registry_deployments`,
    );
    for (const [time, expected] of expectations) {
      const fromLog = trafficLine(trafficAt(log, 'fraud', time).shares);
      const fromSql = await historyFromSql(store, new Date(Math.floor(time)));
      expect({ fromLog, fromSql }).toEqual({ fromLog: expected, fromSql: expected });
    }
  });
});
