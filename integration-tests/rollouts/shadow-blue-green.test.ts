import path from 'node:path';
import type { Admin, Kafka } from 'kafkajs';
import { afterAll, beforeAll, describe, expect, inject, it } from 'vitest';
import { launch, type Launched } from '../../app/launch.js';
import { loadConfig } from '../../common/config.js';
import { silentLogger } from '../../common/logger.js';
import { createMetricsRegistry } from '../../common/metrics.js';
import { demoEvents, type DemoRecord } from '../../examples/fraud/generator.js';
import demo from '../../examples/fraud/sluice.config.js';
import { runBlueGreen, switchBack, type Readiness } from '../../jobs/blue-green.js';
import { runShadow } from '../../jobs/shadow.js';
import type { LoadedModel } from '../../models/deployment.js';
import type { ScoringNetwork } from '../../models/network.js';
import { ArtifactStore, readModelRegistry } from '../../models/registry.js';
import { readDeployments, type DeploymentRecord } from '../../models/rollout.js';
import type { RolloutRegistry } from '../../models/rollout-registry.js';
import type { ShadowWindow } from '../../models/shadow-compare.js';
import {
  ChdbEngine,
  EmbeddedOfflineStore,
  ensureTables,
  offlineTables,
  shadowPredictionsTable,
  type TableSpec,
} from '../../offline/index.js';
import { AvroSerde, readRegistryTopic } from '../../schemas/index.js';
import { runSink, type RunningSink } from '../../streams/sink/stage.js';
import { setUpDemo, type DemoSetup } from '../pipeline/demo-setup.js';
import { produceDemo, registerNetwork } from './fixtures.js';
import { createTopic, groupLag, readToEnd, removeTempDirs, tempDir, testKafka, uniqueName, waitUntil } from '../helpers.js';

const HOUR = 3_600_000;
const logger = silentLogger();

interface Prediction {
  readonly event_id: string;
  readonly entity_id: string;
  readonly model_version: number;
  readonly deployment: string;
  readonly deployment_id: string | null;
  readonly score: number;
  readonly decision: boolean;
  readonly fallback_reason: string | null;
  readonly partition: number;
}

const batch = (seed: number, end: number, events: number): DemoRecord[] => [
  ...demoEvents({ seed, events, end, spanMs: 2 * HOUR, cards: 5_000, users: 1_000, fraudRate: 0.02, chargebackDelayMs: 10 * 60_000 }),
];

describe('shadow and blue-green rollouts on the fused pipeline', () => {
  const prefix = `${uniqueName('shadowbg')}.`;
  const now = Date.now();
  let kafka: Kafka;
  let admin: Admin;
  let setup: DemoSetup;
  let artifacts: ArtifactStore;
  let registry: RolloutRegistry;
  let launched: Launched | undefined;
  let sink: RunningSink | undefined;
  let store: EmbeddedOfflineStore;
  let produced = 0;
  let candidate = 0;

  const register = (network: ScoringNetwork, run: string): Promise<number> => registerNetwork(setup, artifacts, registry, network, run);

  /** Produces the records in slices, `pauseMs` apart: traffic keeps flowing while a rollout changes. */
  const produce = async (records: readonly DemoRecord[], slice?: number, pauseMs?: number): Promise<void> => {
    produced += await produceDemo(kafka, prefix, records, slice, pauseMs);
  };

  const caughtUp = (): Promise<void> =>
    waitUntil(
      async () =>
        (await groupLag(admin, `${prefix}sluice-pipeline`, `${prefix}raw.transactions`)) === 0 &&
        (await groupLag(admin, `${prefix}sluice-pipeline`, `${prefix}raw.chargebacks`)) === 0,
      240_000,
      'the pipeline caught up',
    );

  /** Every record of a predictions topic, read to its end offsets, in partition order. */
  const read = async (topic: string): Promise<Prediction[]> => {
    const serde = new AvroSerde(setup.registry.url);
    return Promise.all(
      (await readToEnd(kafka, `${prefix}${topic}`)).map(async (message) => ({
        ...((await serde.decode(message.value!)) as Omit<Prediction, 'partition'>),
        partition: message.partition,
      })),
    );
  };

  const count = async (table: string, where = '1'): Promise<number> =>
    Number((await store.query<{ n: string }>(`SELECT count() AS n FROM ${table} WHERE ${where}`))[0]?.n);

  const watcher = () => launched!.watchers.get('fraud')!.watcher;

  beforeAll(async () => {
    kafka = testKafka();
    admin = kafka.admin();
    await admin.connect();
    const dataDir = await tempDir('sluice-shadowbg-');
    artifacts = new ArtifactStore(path.join(dataDir, 'models'));
    setup = await setUpDemo({ kafka, admin, brokers: inject('brokers'), prefix, partitions: 3, modelsDir: artifacts.dir });
    await createTopic(admin, `${prefix}registry.deployments`, 1, { 'cleanup.policy': 'compact' });
    await createTopic(admin, `${prefix}registry.readiness`, 1, { 'cleanup.policy': 'compact' });
    await createTopic(admin, `${prefix}predictions.fraud.shadow`, 3);
    await createTopic(admin, `${prefix}monitoring.shadow`, 1);
    registry = {
      kafka,
      topic: `${prefix}registry.models`,
      registryUrl: setup.registry.url,
      schemaId: setup.ids.get(`${prefix}registry.models-value`)!,
      deployments: { topic: `${prefix}registry.deployments`, schemaId: setup.ids.get(`${prefix}registry.deployments-value`)! },
    };
    // The candidate: the champion's network with another bias (scores shifted, same inputs).
    const champion = setup.network;
    const layer = champion.layers[0]!;
    candidate = await register({ ...champion, layers: [{ ...layer, bias: Float32Array.from([(layer.bias[0] ?? 0) + 1]) }] }, 'candidate');
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
    // The sink, for the shadow's tables: comparison records and shadow predictions in ClickHouse.
    const tables: TableSpec[] = [
      ...offlineTables({ sources: [], views: [] }).filter((table) => table.topic === 'monitoring.shadow'),
      shadowPredictionsTable('fraud'),
    ];
    store = new EmbeddedOfflineStore(new ChdbEngine(await tempDir('sluice-shadowbg-chdb-')));
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
  });

  afterAll(async () => {
    await sink?.stop();
    await launched?.stop();
    await setup.registry.stop();
    await admin.disconnect();
    await removeTempDirs();
  });

  it('shadow: the champion alone decides, the shadow scores every event it decides, comparisons reach ClickHouse', async () => {
    const records: DeploymentRecord[] = [];
    const windows: ShadowWindow[] = [];
    const stop = new AbortController();
    const run = runShadow({
      kafka,
      registryUrl: setup.registry.url,
      topicPrefix: prefix,
      registry,
      comparisons: { topic: `${prefix}monitoring.shadow`, schemaId: setup.ids.get(`${prefix}monitoring.shadow-value`)! },
      model: 'fraud',
      candidate,
      windowMs: 10 * 60_000,
      durationMs: Number.POSITIVE_INFINITY,
      actor: 'shadow test',
      logger,
      signal: stop.signal,
      onRecord: (record) => records.push(record),
      onWindow: (window) => windows.push(window),
    });
    await waitUntil(() => watcher().shadow()?.model.version.version === candidate, 60_000, 'the shadow loaded');
    const deployment = records[0]!.deployment_id;
    await produce(batch(41, now - 3 * HOUR, 12_000));
    await caughtUp();
    const decisions = await read('predictions.fraud');
    const shadows = await read('predictions.fraud.shadow');
    // Every event decided once, by the champion (or its fallback), never by the shadow version.
    expect(decisions).toHaveLength(produced);
    expect(new Set(decisions.map((prediction) => prediction.event_id)).size).toBe(produced);
    expect(decisions.filter((prediction) => prediction.model_version === candidate)).toHaveLength(0);
    expect(decisions.filter((prediction) => !['CHAMPION', 'FALLBACK'].includes(prediction.deployment))).toHaveLength(0);
    const shadowed = decisions.filter((prediction) => prediction.deployment_id === deployment);
    expect(shadowed.length).toBe(produced);
    // A shadow prediction for every one of them, exactly once, by the shadow version.
    expect(shadows).toHaveLength(shadowed.length);
    const byEvent = new Map(shadows.map((prediction) => [prediction.event_id, prediction]));
    expect(byEvent.size).toBe(shadows.length);
    expect(shadowed.filter((prediction) => !byEvent.has(prediction.event_id))).toHaveLength(0);
    expect(shadows.filter((prediction) => prediction.deployment !== 'SHADOW' || prediction.model_version !== candidate)).toHaveLength(0);
    expect(shadows.filter((prediction) => prediction.deployment_id !== deployment)).toHaveLength(0);
    // The candidate's bias is higher: it never scores a paired event lower (float32 sigmoid saturates, and rounds, near 1).
    const scored = shadowed.filter((prediction) => prediction.fallback_reason === null);
    const shadowScore = (prediction: Prediction): number => byEvent.get(prediction.event_id)?.score ?? Number.NaN;
    expect(scored.filter((prediction) => !(shadowScore(prediction) >= prediction.score - 1e-6))).toHaveLength(0);
    expect(scored.filter((prediction) => shadowScore(prediction) > prediction.score).length).toBeGreaterThan(0.9 * scored.length);

    // Comparison windows: closed as event time passes, the rest when the shadow ends.
    await waitUntil(() => windows.length >= 6, 60_000, 'closed comparison windows');
    stop.abort();
    const outcome = await run;
    expect(outcome.final).toMatchObject({ action: 'ABORT', state: 'ABORTED', champion_version: 1 });
    expect(records.map((record) => record.action)).toEqual(['START', 'ABORT']);
    const pairs = outcome.windows.reduce((sum, window) => sum + window.pairs, 0);
    process.stdout.write(
      `shadow: ${shadowed.length} decisions, ${shadows.length} shadow predictions, ${outcome.windows.length} windows, ${pairs} pairs; first window: ${JSON.stringify(outcome.windows[0])}\n`,
    );
    expect(outcome.late).toBe(0);
    expect(pairs).toBe(shadowed.length);
    expect(outcome.windows.every((window) => window.unpaired === 0)).toBe(true);
    expect(outcome.windows.every((window) => window.score_correlation === null || window.score_correlation > 0.9)).toBe(true);
    await waitUntil(
      async () => (await count('monitoring_shadow', `deployment_id = '${deployment}'`)) === outcome.windows.length,
      120_000,
      'comparisons in ClickHouse',
    );
    expect(
      Number(
        (await store.query<{ n: string }>(`SELECT sum(pairs) AS n FROM monitoring_shadow WHERE deployment_id = '${deployment}'`))[0]?.n,
      ),
    ).toBe(pairs);
    await waitUntil(async () => (await count('predictions_fraud_shadow')) === shadows.length, 120_000, 'shadow predictions in ClickHouse');
    await waitUntil(() => watcher().shadow() === undefined && watcher().candidate() === undefined, 30_000, 'the ended shadow unloaded');
  });

  it('blue-green: warmed in every instance, one record switches all traffic and one switches it back, no event scored without a loaded version', async () => {
    const before = produced;
    const records: DeploymentRecord[] = [];
    let warmed: LoadedModel | undefined;
    const traffic = produce(batch(42, now - HOUR, 24_000), 400, 150);
    // Traffic is flowing (and recent events' inputs are there to warm on) before the rollout starts.
    await new Promise((resolve) => setTimeout(resolve, 3_000));
    const outcome = await runBlueGreen({
      kafka,
      registryUrl: setup.registry.url,
      topicPrefix: prefix,
      registry,
      model: 'fraud',
      candidate,
      warmTimeoutMs: 60_000,
      actor: 'blue-green test',
      logger,
      onRecord: (record) => {
        records.push(record);
        // The version every instance warmed: the switch must serve this very one, not load it again.
        if (record.action === 'SWITCH') warmed = watcher().candidate() ?? watcher().current();
      },
    });
    expect(warmed?.version.version).toBe(candidate);
    expect(outcome.final).toMatchObject({ action: 'SWITCH', state: 'PROMOTED', champion_version: candidate });
    expect(outcome.instances.map((report) => report.instance)).toEqual([watcher().group]);
    expect(outcome.instances[0]?.rows_checked).toBeGreaterThan(1);
    await waitUntil(() => watcher().current()?.version.version === candidate, 30_000, 'the switch reached the instance');
    expect(watcher().current()).toBe(warmed);
    // The version switched from stays loaded: switching back loads nothing.
    expect(watcher().previous()?.version.version).toBe(1);
    const switchedAt = Date.now();
    await new Promise((resolve) => setTimeout(resolve, 1_500));
    const back = await switchBack({
      kafka,
      registryUrl: setup.registry.url,
      registry,
      actor: 'blue-green test',
      model: 'fraud',
      reason: 'test',
    });
    records.push(back);
    expect(back).toMatchObject({ action: 'SWITCH_BACK', state: 'ROLLED_BACK', champion_version: 1 });
    await waitUntil(() => watcher().current()?.version.version === 1, 30_000, 'the switch back reached the instance');
    expect(Date.now() - switchedAt).toBeLessThan(30_000);
    await traffic;
    await caughtUp();

    // One record for the switch and one for the switch back; the alias moved with each.
    const log = (await readDeployments({ kafka, topic: `${prefix}registry.deployments`, registryUrl: setup.registry.url })).filter(
      (record) => record.deployment_id === outcome.final.deployment_id,
    );
    expect(log.map((record) => record.action)).toEqual(['START', 'SWITCH', 'SWITCH_BACK']);
    expect((await readModelRegistry(registry)).find((version) => version.aliases.includes('champion'))?.version).toBe(1);
    const readiness = [
      ...(
        await readRegistryTopic<Readiness>({
          kafka,
          topic: `${prefix}registry.readiness`,
          registryUrl: setup.registry.url,
          contract: 'registry.readiness',
        })
      ).values(),
    ].filter((report) => report.deployment_id === outcome.final.deployment_id);
    expect(readiness.map((report) => [report.instance, report.ready, report.version])).toEqual([[watcher().group, true, candidate]]);

    // Every event of the run decided once; none without a loaded version; per partition, one switch and one back.
    const decisions = (await read('predictions.fraud')).slice(0);
    expect(decisions).toHaveLength(produced);
    expect(new Set(decisions.map((prediction) => prediction.event_id)).size).toBe(produced);
    const run = decisions.filter(
      (prediction) => prediction.deployment_id === outcome.final.deployment_id || prediction.model_version === candidate,
    );
    const unloaded = decisions.filter((prediction) => /^(no_model|model_load_failed)/.test(prediction.fallback_reason ?? ''));
    expect(unloaded).toHaveLength(0);
    const scoredByCandidate = decisions.filter((prediction) => prediction.model_version === candidate);
    process.stdout.write(
      `blue-green: ${produced - before} events during the run, ${scoredByCandidate.length} scored by v${candidate} between the switch and the switch back, ${run.length} during warm-up or switched; ${unloaded.length} without a loaded version\n`,
    );
    expect(scoredByCandidate.length).toBeGreaterThan(0);
    expect(scoredByCandidate.every((prediction) => prediction.deployment === 'CHAMPION')).toBe(true);
    for (let partition = 0; partition < 3; partition += 1) {
      const versions = decisions
        .filter((prediction) => prediction.partition === partition && prediction.deployment !== 'FALLBACK')
        .map((prediction) => prediction.model_version);
      const changes = versions.filter((version, index) => index > 0 && version !== versions[index - 1]).length;
      expect(changes).toBeLessThanOrEqual(2);
    }
  });
});
