import type { Admin, Kafka } from 'kafkajs';
import { afterAll, beforeAll, describe, expect, inject, it } from 'vitest';
import { createMetricsRegistry } from '../../common/metrics.js';
import { silentLogger } from '../../common/logger.js';
import demo from '../../examples/fraud/sluice.config.js';
import { ModelWatcher } from '../../models/deployment.js';
import { currentInputs, versionProblems } from '../../models/guards.js';
import { OnnxScorer, toOnnx } from '../../models/network.js';
import {
  ArtifactStore,
  baselineOf,
  readModelRegistry,
  registerModelVersion,
  rollback,
  setAlias,
  type RegistryOptions,
} from '../../models/registry.js';
import { ChdbEngine, EmbeddedOfflineStore, ensureTables, offlineTables, type TableSpec } from '../../offline/index.js';
import { runSink, type RunningSink } from '../../streams/sink/stage.js';
import { predict } from '../../streams/inference/stage.js';
import { modelDefinition, modelInputs, type ModelDefinition } from '../../topology/index.js';
import { fixedNetwork, setUpDemo, type DemoSetup } from '../pipeline/demo-setup.js';
import { createTopic, removeTempDirs, tempDir, testKafka, uniqueName, waitUntil } from '../helpers.js';

const logger = silentLogger();
const fraud = demo.models.find((candidate) => candidate.name === 'fraud')!;

/** The fraud model after a definition change: the same inputs, in reverse order. */
const reordered: ModelDefinition = modelDefinition({
  ...fraud,
  label: { source: fraud.label.source, joinField: fraud.label.joinField, window: fraud.label.windowMs },
  features: [...fraud.features].reverse().map(({ view, features }) => ({ view, features: [...features].reverse() })),
});

describe('rollout guards: version numbers, alias history in ClickHouse, per-version inputs, refused versions', () => {
  const prefix = `${uniqueName('guards')}.`;
  let kafka: Kafka;
  let admin: Admin;
  let setup: DemoSetup;
  let artifacts: ArtifactStore;
  let registry: RegistryOptions;
  let store: EmbeddedOfflineStore;
  let sink: RunningSink;
  let watcher: ModelWatcher | undefined;

  /** Stores a network over `inputs` and registers it (no alias), with lineage. */
  const register = async (inputs: readonly string[], featureVersions: Record<string, number>, runId: string, aliases: string[] = []) => {
    const network = fixedNetwork(inputs);
    const sha = await artifacts.put(toOnnx(network, 'fraud'), {
      name: 'fraud',
      inputs,
      fill: [...network.mean],
      threshold: 0.5,
      trainer: 'fixed',
      metrics: {},
      baseline: Object.fromEntries(inputs.map((input) => [input, baselineOf([])])),
    });
    return registerModelVersion(
      registry,
      {
        name: 'fraud',
        artifact_sha256: sha,
        trainer: 'fixed',
        params: { run: runId },
        metrics: {},
        dataset: {
          ranges: [{ topic: `${prefix}events.transactions`, partition: 0, start_offset: 0, end_offset: 10 }],
          feature_versions: featureVersions,
        },
        code_commit: null,
        run_id: runId,
        created_at: Date.now(),
      },
      aliases,
    );
  };

  beforeAll(async () => {
    kafka = testKafka();
    admin = kafka.admin();
    await admin.connect();
    artifacts = new ArtifactStore(await tempDir('sluice-guards-models-'));
    setup = await setUpDemo({ kafka, admin, brokers: inject('brokers'), prefix, partitions: 2, modelsDir: artifacts.dir });
    registry = {
      kafka,
      topic: `${prefix}registry.models`,
      registryUrl: setup.registry.url,
      schemaId: setup.ids.get(`${prefix}registry.models-value`)!,
    };
    await createTopic(admin, `${prefix}registry.deployments`, 1, { 'cleanup.policy': 'compact' });
    store = new EmbeddedOfflineStore(new ChdbEngine(await tempDir('sluice-guards-chdb-')));
    const tables: TableSpec[] = offlineTables({ sources: demo.sources, views: demo.views }).filter(
      (table) => table.topic === 'registry.models',
    );
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
    await watcher?.stop();
    await sink.stop();
    await store.close();
    await setup.registry.stop();
    await admin.disconnect();
    await removeTempDirs();
  });

  it('gives concurrent registrations distinct version numbers, each with its lineage, and one champion', async () => {
    const versions = Object.fromEntries(setup.versions);
    const inputs = modelInputs(fraud);
    const registered = await Promise.all(
      ['run-a', 'run-b', 'run-c', 'run-d'].map((run, index) => register(inputs, versions, run, index < 2 ? ['champion'] : [])),
    );
    const numbers = registered.map((version) => version.version).sort();
    expect(numbers).toEqual([2, 3, 4, 5]);
    const all = (await readModelRegistry(registry)).filter((version) => version.name === 'fraud');
    expect(all.map((version) => version.version)).toEqual([1, 2, 3, 4, 5]);
    for (const version of all.slice(1)) {
      expect(version.run_id).toMatch(/^run-[a-d]$/);
      expect(version.params.run).toBe(version.run_id);
      expect(version.dataset.ranges).toHaveLength(1);
    }
    expect(new Set(all.slice(1).map((version) => version.run_id)).size).toBe(4);
    const champions = all.filter((version) => version.aliases.includes('champion'));
    expect(champions).toHaveLength(1);
    // The champion is whichever of the two promoting runs committed last.
    expect(registered.filter((version) => version.aliases.includes('champion')).map((version) => version.version)).toContain(
      champions[0]!.version,
    );
  });

  it('lands every alias move in registry_models: the latest row of each version has the registry aliases', async () => {
    await setAlias(registry, 'fraud', 3, 'challenger');
    await setAlias(registry, 'fraud', 1, 'champion');
    const expected = (await readModelRegistry(registry))
      .filter((version) => version.name === 'fraud')
      .map((version) => ({ version: version.version, aliases: [...version.aliases].sort().join(',') }));
    const inClickHouse = async () =>
      (
        await store.query<{ version: string; aliases: string }>(
          "SELECT version, argMax(aliases, _offset) AS aliases FROM registry_models WHERE name = 'fraud' GROUP BY version ORDER BY version",
        )
      ).map((row) => ({ version: Number(row.version), aliases: (JSON.parse(row.aliases) as string[]).sort().join(',') }));
    // On a timeout the assertion below shows the difference.
    await waitUntil(async () => JSON.stringify(await inClickHouse()) === JSON.stringify(expected), 60_000, 'alias moves').catch(
      () => undefined,
    );
    expect(await inClickHouse()).toEqual(expected);
    expect(expected.find((row) => row.version === 1)?.aliases).toBe('champion');
    expect(expected.find((row) => row.version === 3)?.aliases).toBe('challenger');
    const moves = await store.query<{ n: string }>(
      `SELECT count() AS n FROM registry_models WHERE name = 'fraud' AND position(aliases, '"champion"') > 0`,
    );
    // (aliases is stored as its JSON text.) v1 at registration, one of v2/v3 at registration, and v1 again: the history is kept.
    expect(Number(moves[0]?.n)).toBeGreaterThanOrEqual(3);
  });

  it('scores a rolled-back version 1 with its own recorded inputs after the definition was reordered', async () => {
    // Version 6 is trained on the reordered definition and becomes champion; then roll back to 1.
    const v6 = await register(modelInputs(reordered), Object.fromEntries(setup.versions), 'run-reordered', ['champion']);
    const following = new ModelWatcher({
      kafka,
      topic: `${prefix}registry.models`,
      deploymentsTopic: `${prefix}registry.deployments`,
      registryUrl: setup.registry.url,
      model: 'fraud',
      artifacts,
      logger,
      guard: (version, metadata) => versionProblems(version, metadata, currentInputs(reordered, demo.views, setup.versions)),
    });
    watcher = following;
    await following.start();
    await waitUntil(() => following.current()?.version.version === v6.version, 30_000, 'version 6 in service');
    expect(await rollback(registry, 'fraud', 1)).toBe(1);
    await waitUntil(() => following.current()?.version.version === 1, 30_000, 'version 1 back in service');

    const values: Record<string, Record<string, number>> = {
      card_txn_1h: { txn_count: 3, amount_sum: 420 },
      card_txn_24h: { txn_count: 9, amount_sum: 1_300, merchant_count: 4 },
      card_amount_7d: { amount_mean: 140, amount_stddev: 35, amount_max: 610 },
    };
    const event = { eventId: 'e1', entity: 'card-1', eventTime: Date.now(), value: { amount: 250 } };
    const lookup = (input: string): number => {
      if (input === 'amount') return 250;
      const [view = '', feature = ''] = input.split('.');
      return values[view]?.[feature] ?? Number.NaN;
    };
    const prediction = await predict(
      {
        model: reordered,
        watcher: following,
        metrics: createMetricsRegistry(false),
        features: { valuesAt: (view) => Promise.resolve(values[view] ?? null) },
      },
      event,
      Date.now(),
    );
    const scorer = await OnnxScorer.load(toOnnx(setup.network, 'fraud'), setup.inputs.length);
    const inV1Order = (await scorer.score(Float32Array.from(setup.inputs.map(lookup))))[0]!;
    const inCurrentOrder = (await scorer.score(Float32Array.from(modelInputs(reordered).map(lookup))))[0]!;
    await scorer.close();
    expect(prediction.model_version).toBe(1);
    expect(prediction.fallback_reason).toBeNull();
    expect(Math.abs(inV1Order - inCurrentOrder)).toBeGreaterThan(1e-3); // the order matters for this network
    expect(prediction.score).toBeCloseTo(inV1Order, 5);
  });

  it('refuses a version whose inputs no longer exist, or whose view definition changed, before it serves', async () => {
    const gone = await register([...modelInputs(fraud), 'card_txn_1h.no_such_feature'], Object.fromEntries(setup.versions), 'run-gone', [
      'champion',
    ]);
    await waitUntil(() => watcher?.loadFailure()?.includes('no_such_feature') === true, 30_000, 'version refused');
    expect(watcher?.loadFailure()).toContain(`version ${gone.version} failed to load: model fraud version ${gone.version} cannot serve`);
    expect(watcher?.current()?.version.version).toBe(1);

    const stale = await register(modelInputs(fraud), { ...Object.fromEntries(setup.versions), card_txn_1h: 99 }, 'run-stale', ['champion']);
    await waitUntil(() => watcher?.loadFailure()?.includes(`version ${stale.version} failed`) === true, 30_000, 'stale version refused');
    expect(watcher?.loadFailure()).toContain('view card_txn_1h was at definition version 99 when the model was trained');
    expect(watcher?.current()?.version.version).toBe(1);
  });
});
