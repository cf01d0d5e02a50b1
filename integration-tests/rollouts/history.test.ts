import fs from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import type { Admin, Kafka } from 'kafkajs';
import { afterAll, beforeAll, describe, expect, inject, it } from 'vitest';
import { topologySubjects } from '../../app/stages.js';
import { silentLogger } from '../../common/logger.js';
import { createMetricsRegistry } from '../../common/metrics.js';
import { demoEvents } from '../../examples/fraud/generator.js';
import demo from '../../examples/fraud/sluice.config.js';
import { readExperiments } from '../../models/experiments.js';
import { ArtifactStore, readModelRegistry, type ModelVersion } from '../../models/registry.js';
import { readDeployments, trafficAt, type DeploymentRecord } from '../../models/rollout.js';
import { changeRollout, startRollout, type RolloutRegistry } from '../../models/rollout-registry.js';
import { ChdbEngine, EmbeddedOfflineStore, ensureTables, offlineTables } from '../../offline/index.js';
import { AvroSerde, registerSchemas, startSchemaRegistry, type RunningSchemaRegistry } from '../../schemas/index.js';
import { publishFeatureViews } from '../../streams/features/registry.js';
import { ingestStage } from '../../streams/ingest/stage.js';
import { runStage, type RunningStage } from '../../streams/runtime/index.js';
import { runSink, type RunningSink } from '../../streams/sink/stage.js';
import { cleanEnv, DEMO_TOPOLOGY, runSluice } from '../cli/sluice-process.js';
import { createTopic, groupLag, testKafka, uniqueName, waitUntil } from '../helpers.js';
import { historyFromCli, historyFromSql, trafficLine } from './readme-history.js';

/**
 * The registry's history against one stack (a broker, a schema registry, ingest, and the sink of
 * the registry topics into ClickHouse): two `sluice train fraud --promote` processes at once, then
 * two canaries (one rolled back, one promoted) with direct moves by `sluice models promote` and
 * `rollback` between them; at sampled times, `sluice models history fraud --at T`, the README's SQL
 * on `registry_deployments` and `trafficAt` over the log give the same answer.
 */
const HOUR = 3_600_000;
const logger = silentLogger();
const ACTOR = 'history test';
const fraud = demo.models.find((candidate) => candidate.name === 'fraud')!;

describe('registry history: concurrent trainings, rollouts, and the same answer from the log, the CLI and SQL', () => {
  const prefix = `${uniqueName('history')}.`;
  let kafka: Kafka;
  let admin: Admin;
  let registry: RunningSchemaRegistry;
  let ids: Map<string, number>;
  let views: Map<string, number>;
  let store: EmbeddedOfflineStore;
  let dataDir: string;
  let ingest: RunningStage | undefined;
  let sink: RunningSink | undefined;
  /** What the two trainings registered: the champion after them, and the other one. */
  const trained = { champion: 0, other: 0 };

  const cliEnv = (): NodeJS.ProcessEnv =>
    cleanEnv({
      KAFKA_BROKERS: inject('brokers').join(','),
      SCHEMA_REGISTRY_URL: registry.url,
      SLUICE_TOPIC_PREFIX: prefix,
      SLUICE_DATA_DIR: dataDir,
      SLUICE_TOPOLOGY: DEMO_TOPOLOGY,
      SLUICE_LOG_LEVEL: 'warn',
    });
  const sluice = async (args: readonly string[], timeoutMs = 60_000): Promise<string> => {
    const result = await runSluice(args, cliEnv(), timeoutMs);
    expect(result.code, `sluice ${args.join(' ')}: ${result.stderr}`).toBe(0);
    return result.stdout;
  };
  const models = (): Promise<ModelVersion[]> =>
    readModelRegistry({ kafka, topic: `${prefix}registry.models`, registryUrl: registry.url }).then((versions) =>
      versions.filter((version) => version.name === 'fraud'),
    );
  const deployments = (): Promise<DeploymentRecord[]> =>
    readDeployments({ kafka, topic: `${prefix}registry.deployments`, registryUrl: registry.url });

  beforeAll(async () => {
    kafka = testKafka();
    admin = kafka.admin();
    await admin.connect();
    dataDir = await fs.mkdtemp(path.join(os.tmpdir(), 'sluice-history-'));
    const tables = offlineTables({ sources: demo.sources, views: demo.views });
    const topics = [...demo.sources.map((source) => `raw.${source.name}`), 'dlq', ...tables.map((table) => table.topic)];
    for (const topic of new Set(topics))
      await (topic.startsWith('registry.')
        ? createTopic(admin, `${prefix}${topic}`, 1, { 'cleanup.policy': 'compact' })
        : createTopic(admin, `${prefix}${topic}`, 2));
    registry = await startSchemaRegistry({ brokers: inject('brokers'), topic: `${prefix}_schemas`, host: '127.0.0.1', port: 0, logger });
    ids = await registerSchemas(registry.url, topologySubjects(prefix, demo), logger);
    views = await publishFeatureViews(demo.views, {
      kafka,
      topic: `${prefix}registry.features`,
      registryUrl: registry.url,
      schemaId: ids.get(`${prefix}registry.features-value`)!,
      logger,
    });
    // The sink of the registry tables (every registry topic exists: the sink waits for none).
    store = new EmbeddedOfflineStore(new ChdbEngine(path.join(dataDir, 'clickhouse')));
    const registryTables = tables.filter((table) => table.topic.startsWith('registry.'));
    await ensureTables(store, registryTables);
    const metrics = createMetricsRegistry(false);
    sink = await runSink({
      brokers: inject('brokers'),
      groupId: `${prefix}sink`,
      topicPrefix: prefix,
      tables: registryTables,
      store,
      registryUrl: registry.url,
      dlqTopic: `${prefix}dlq`,
      metrics,
      logger,
    });
    // Labelled history to train on: raw events through the ingest stage into events.*.
    ingest = await runStage(
      ingestStage({
        sources: demo.sources,
        topicPrefix: prefix,
        serdeFor: (reader) => new AvroSerde(registry.url, reader),
        schemaIds: {
          events: Object.fromEntries(demo.sources.map((source) => [source.name, ids.get(`${prefix}events.${source.name}-value`)!])),
          quality: ids.get(`${prefix}monitoring.quality-value`)!,
        },
        metrics,
      }),
      {
        brokers: inject('brokers'),
        groupId: `${prefix}ingest`,
        dlqTopic: `${prefix}dlq`,
        metrics,
        logger,
        stateDir: path.join(dataDir, 'state'),
        topicPrefix: prefix,
      },
    );
    const history = [
      ...demoEvents({
        seed: 17,
        events: 8_000,
        end: Date.now() - 3 * HOUR,
        spanMs: 36 * HOUR,
        cards: 200,
        users: 150,
        fraudRate: 0.012,
        chargebackDelayMs: 20 * 60_000,
      }),
    ].filter((record) => record.topic !== 'raw.clicks');
    const producer = kafka.producer({ idempotent: true, maxInFlightRequests: 1 });
    await producer.connect();
    for (const topic of new Set(history.map((record) => record.topic)))
      await producer.send({
        topic: `${prefix}${topic}`,
        acks: -1,
        messages: history
          .filter((record) => record.topic === topic)
          .map((record) => ({ key: record.key, value: JSON.stringify(record.value) })),
      });
    await producer.disconnect();
    await waitUntil(
      async () =>
        (await groupLag(admin, `${prefix}ingest`, `${prefix}raw.transactions`)) === 0 &&
        (await groupLag(admin, `${prefix}ingest`, `${prefix}raw.chargebacks`)) === 0,
      150_000,
      'the history ingested',
    );
  }, 240_000);

  afterAll(async () => {
    await ingest?.stop();
    await sink?.stop();
    await store.close();
    await registry.stop();
    await admin.disconnect();
    await fs.rm(dataDir, { recursive: true, force: true });
  });

  it('two `sluice train fraud --promote` processes at once: two versions with their lineage, one champion, both moves recorded', async () => {
    const started = performance.now();
    const runs = await Promise.all([0, 1].map(() => runSluice(['train', 'fraud', '--promote', '--epochs', '2'], cliEnv(), 200_000)));
    const seconds = (performance.now() - started) / 1000;
    const registered = runs.map((run) => {
      expect(run.code, run.stderr).toBe(0);
      const match = /^fraud v(\d+) \(([^)]+)\) registered as champion; run ([0-9a-f-]{36})$/m.exec(run.stdout);
      expect(match, run.stdout).not.toBeNull();
      return { version: Number(match![1]), runId: match![3]! };
    });
    expect(registered.map((run) => run.version).sort()).toEqual([1, 2]);
    expect(new Set(registered.map((run) => run.runId)).size).toBe(2);

    // Both registered, each with its own run and its dataset (the ranges read, the views' versions).
    const versions = await models();
    process.stdout.write(
      `concurrent trainings in ${seconds.toFixed(1)} s: ${registered.map((run) => `v${run.version} (run ${run.runId})`).join(' and ')}; their registrations began ${Math.abs((versions[0]?.created_at ?? 0) - (versions[1]?.created_at ?? 0))} ms apart\n`,
    );
    expect(versions.map((version) => version.version)).toEqual([1, 2]);
    const runs2 = await readExperiments({ kafka, topic: `${prefix}registry.experiments`, registryUrl: registry.url });
    for (const { version, runId } of registered) {
      const record = versions.find((candidate) => candidate.version === version)!;
      expect(record.run_id).toBe(runId);
      expect(record.dataset.feature_versions).toEqual(
        Object.fromEntries(fraud.features.map(({ view }) => [view.name, views.get(view.name)])),
      );
      // every partition of the scored events and the labels, read to the end (the history was all in)
      for (const topic of [`${prefix}events.transactions`, `${prefix}events.chargebacks`]) {
        const ends = await admin.fetchTopicOffsets(topic);
        const read = record.dataset.ranges.filter((range) => range.topic === topic).sort((left, right) => left.partition - right.partition);
        expect(read.map((range) => [range.partition, range.start_offset, range.end_offset])).toEqual(
          ends.map((end) => [end.partition, Number(end.low), Number(end.high)]).sort((left, right) => left[0]! - right[0]!),
        );
        expect(read.every((range) => range.end_offset > range.start_offset)).toBe(true);
      }
      expect((await new ArtifactStore(path.join(dataDir, 'models')).get(record.artifact_sha256)).metadata.name).toBe('fraud');
      expect(runs2.find((run) => run.run_id === runId)).toMatchObject({ status: 'FINISHED', model_version: version });
    }

    // Exactly one champion, one of the two; each move is a DIRECT record, the champion's the later one.
    const champions = versions.filter((version) => version.aliases.includes('champion'));
    expect(champions).toHaveLength(1);
    trained.champion = champions[0]!.version;
    trained.other = 3 - trained.champion;
    const moves = await deployments();
    expect(moves.map((record) => [record.strategy, record.action, record.state, record.actor])).toEqual([
      ['DIRECT', 'PROMOTE', 'PROMOTED', 'sluice train'],
      ['DIRECT', 'PROMOTE', 'PROMOTED', 'sluice train'],
    ]);
    expect(moves.map((record) => record.champion_version)).toEqual([trained.other, trained.champion]);
  }, 300_000);

  it('history at sampled times across two canaries and direct moves: the CLI, the README SQL and the log agree', async () => {
    expect(trained.champion).toBeGreaterThan(0);
    const { champion, other } = trained;
    const rollouts: RolloutRegistry = {
      kafka,
      topic: `${prefix}registry.models`,
      registryUrl: registry.url,
      schemaId: ids.get(`${prefix}registry.models-value`)!,
      deployments: { topic: `${prefix}registry.deployments`, schemaId: ids.get(`${prefix}registry.deployments-value`)! },
    };
    const canary = (reason: string) =>
      startRollout(rollouts, {
        model: 'fraud',
        strategy: 'CANARY',
        candidate: other,
        share: 0.25,
        steps: [0.25, 0.5, 1],
        stepEveryMs: 10 * 60_000,
        actor: ACTOR,
        reason,
      });
    const step = (record: DeploymentRecord) =>
      changeRollout(rollouts, record, { action: 'STEP', state: 'RUNNING', share: 0.5, stepIndex: 1, actor: ACTOR, reason: 'next step' });

    // A canary rolled back, the candidate promoted and rolled back by hand, a canary promoted.
    const first = await step(await canary('first canary'));
    await changeRollout(rollouts, first, { action: 'ROLLBACK', state: 'ROLLED_BACK', share: 0, actor: ACTOR, reason: 'rolled back' });
    expect(await sluice(['models', 'promote', 'fraud', String(other)])).toBe(`fraud v${other} is now champion\n`);
    expect(await sluice(['models', 'rollback', 'fraud', '--to', String(champion)])).toBe(`fraud: champion rolled back to v${champion}\n`);
    const second = await step(await canary('second canary'));
    await changeRollout(rollouts, second, {
      action: 'PROMOTE',
      state: 'PROMOTED',
      share: 0,
      champion: other,
      actor: ACTOR,
      reason: 'promoted',
    });
    expect((await models()).find((version) => version.aliases.includes('champion'))?.version).toBe(other);

    const log = await deployments();
    expect(log.map((record) => `${record.strategy} ${record.action} ${record.champion_version} ${record.candidate_share}`)).toEqual([
      `DIRECT PROMOTE ${other} 0`,
      `DIRECT PROMOTE ${champion} 0`,
      `CANARY START ${champion} 0.25`,
      `CANARY STEP ${champion} 0.5`,
      `CANARY ROLLBACK ${champion} 0`,
      `DIRECT PROMOTE ${other} 0`,
      `DIRECT PROMOTE ${champion} 0`,
      `CANARY START ${champion} 0.25`,
      `CANARY STEP ${champion} 0.5`,
      `CANARY PROMOTE ${other} 0`,
    ]);
    // The sink has every record: as many rows in ClickHouse as records in the topic.
    await waitUntil(
      async () =>
        Number((await store.query<{ n: string }>(`SELECT count() AS n FROM registry_deployments WHERE model_name = 'fraud'`))[0]?.n) ===
        log.length,
      60_000,
      `${log.length} rows in registry_deployments`,
    );

    const between = (index: number): number => Math.floor((log[index]!.at + log[index + 1]!.at) / 2);
    const samples: [number, string][] = [
      [log[0]!.at - 1_000, ''], // before any record: no version served
      [between(0), `${other} CHAMPION 1`], // the first training's promotion
      [between(2), `${champion} CHAMPION 0.75, ${other} CANARY 0.25`], // the first canary's first step
      [between(4), `${champion} CHAMPION 1`], // rolled back
      [between(5), `${other} CHAMPION 1`], // `sluice models promote`
      [between(8), `${champion} CHAMPION 0.5, ${other} CANARY 0.5`], // the second canary's second step
      [log[9]!.at + 1_000, `${other} CHAMPION 1`], // promoted
    ];
    for (const [time, expected] of samples) {
      const at = new Date(time);
      const fromLog = trafficLine(trafficAt(log, 'fraud', time).shares);
      const fromCli = historyFromCli(await sluice(['models', 'history', 'fraud', '--at', at.toISOString()]), at);
      const fromSql = await historyFromSql(store, at);
      process.stdout.write(`history at ${at.toISOString()}: log "${fromLog}", CLI "${fromCli}", SQL "${fromSql}"\n`);
      expect({ at, fromLog, fromCli, fromSql }).toEqual({ at, fromLog: expected, fromCli: expected, fromSql: expected });
    }
  }, 300_000);
});
