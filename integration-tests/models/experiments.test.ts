import { execFileSync } from 'node:child_process';
import fs from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import type { Admin, Kafka } from 'kafkajs';
import { afterAll, beforeAll, describe, expect, inject, it } from 'vitest';
import { topologySubjects } from '../../app/stages.js';
import { PROJECT_ROOT } from '../../common/config.js';
import { createMetricsRegistry } from '../../common/metrics.js';
import { silentLogger } from '../../common/logger.js';
import demo from '../../examples/fraud/sluice.config.js';
import { demoEvents } from '../../examples/fraud/generator.js';
import { rebuildFrom, timeSplit } from '../../jobs/manifest.js';
import { DatasetGoneError } from '../../jobs/range.js';
import { loadTrainingSet, trainModel, type TrainJobOptions, type TrainReport } from '../../jobs/train.js';
import { tuneModel } from '../../jobs/tune.js';
import { findRun, readExperiments, type ExperimentRun } from '../../models/experiments.js';
import { jaxSplit } from '../../jobs/engines.js';
import { runJax, writeJaxInputs } from '../../models/jax.js';
import { auc, logLoss } from '../../models/metrics.js';
import { readModelRegistry } from '../../models/registry.js';
import { parseParam } from '../../models/search.js';
import { TfjsTrial, train, TrainingData } from '../../models/trainer.js';
import { ChdbEngine, EmbeddedOfflineStore, ensureTables, offlineTables, type TableSpec } from '../../offline/index.js';
import { AvroSerde, registerSchemas, startSchemaRegistry, type RunningSchemaRegistry } from '../../schemas/index.js';
import { publishFeatureViews } from '../../streams/features/registry.js';
import { featuresStage } from '../../streams/features/stage.js';
import { ingestStage } from '../../streams/ingest/stage.js';
import { runStage, type StageOptions } from '../../streams/runtime/index.js';
import { runSink } from '../../streams/sink/stage.js';
import { modelInputs } from '../../topology/index.js';
import { cleanEnv, DEMO_TOPOLOGY, runSluice } from '../cli/sluice-process.js';
import { createTopic, testKafka, uniqueName, waitUntil } from '../helpers.js';
import { JAX_PYTHON, SKIP_JAX } from './jax-python.js';

/**
 * Experiments against a real broker: demo events through ingest and features, training runs
 * recorded with their manifests, a rebuild from a manifest after the topics grew, the JAX trainer
 * on the same manifest, tuning with both trainers, the `sluice experiments` commands, and a
 * manifest whose records are gone.
 */
const HOUR = 3_600_000;
const logger = silentLogger();
const model = demo.models.find((candidate) => candidate.name === 'fraud')!;
const bits = (values: Float32Array): string => Buffer.from(values.buffer, values.byteOffset, values.byteLength).toString('hex');
const weightsOf = (report: TrainReport): string[] => report.network.layers.map((layer) => bits(layer.weights) + bits(layer.bias));

describe('experiments: tracked runs, rebuilds from manifests, tuning, the JAX trainer', () => {
  const prefix = `${uniqueName('exp')}.`;
  const end = Date.now() - 3 * HOUR;
  const generate = (seed: number, events: number, last: number) =>
    [
      ...demoEvents({
        seed,
        events,
        end: last,
        spanMs: 36 * HOUR,
        cards: 200,
        users: 150,
        fraudRate: 0.012,
        chargebackDelayMs: 20 * 60_000,
      }),
    ].filter((record) => record.topic !== 'raw.clicks');
  const history = generate(31, 14_000, end);
  const later = generate(32, 2_000, Date.now() - HOUR).map((record) => ({
    ...record,
    value: Object.fromEntries(
      Object.entries(record.value).map(([key, value]) => [
        key,
        key.endsWith('_id') && typeof value === 'string' ? `later-${value}` : value,
      ]),
    ),
  }));
  let kafka: Kafka;
  let admin: Admin;
  let registry: RunningSchemaRegistry;
  let ids: Map<string, number>;
  let versions: Map<string, number>;
  let store: EmbeddedOfflineStore;
  let tables: TableSpec[];
  let dataDir: string;
  let first: TrainReport;
  let jax: TrainReport | undefined;
  const running: { stop(): Promise<void> }[] = [];

  const produce = async (records: readonly { topic: string; key: string; value: Record<string, unknown> }[]): Promise<void> => {
    const producer = kafka.producer({ idempotent: true, maxInFlightRequests: 1 });
    await producer.connect();
    for (let start = 0; start < records.length; start += 5_000) {
      const slice = records.slice(start, start + 5_000);
      await producer.sendBatch({
        acks: -1,
        topicMessages: [...new Set(slice.map((record) => record.topic))].map((topic) => ({
          topic: `${prefix}${topic}`,
          messages: slice
            .filter((record) => record.topic === topic)
            .map((record) => ({ key: record.key, value: JSON.stringify(record.value) })),
        })),
      });
    }
    await producer.disconnect();
  };
  const count = async (table: string, where = ''): Promise<number> =>
    Number((await store.query<{ n: string }>(`SELECT count() AS n FROM ${table} ${where}`))[0]?.n);
  const ingested = async (records: readonly { topic: string }[]): Promise<void> => {
    const transactions = records.filter((record) => record.topic === 'raw.transactions').length;
    const chargebacks = records.filter((record) => record.topic === 'raw.chargebacks').length;
    const before = { transactions: await count('events_transactions'), chargebacks: await count('events_chargebacks') };
    return waitUntil(
      async () =>
        (await count('events_transactions')) >= before.transactions + transactions &&
        (await count('events_chargebacks')) >= before.chargebacks + chargebacks &&
        (await count('features_card_amount_7d')) >= before.transactions + transactions,
      150_000,
      'events ingested and featurized',
    );
  };
  const jobOptions = (): Omit<TrainJobOptions, 'model'> => ({
    kafka,
    topicPrefix: prefix,
    registryUrl: registry.url,
    modelsSchemaId: ids.get(`${prefix}registry.models-value`)!,
    experimentsSchemaId: ids.get(`${prefix}registry.experiments-value`)!,
    versions,
    artifactsDir: path.join(dataDir, 'models'),
    logger,
  });
  const experiments = (): Promise<ExperimentRun[]> =>
    readExperiments({ kafka, topic: `${prefix}registry.experiments`, registryUrl: registry.url });
  const cliEnv = (): NodeJS.ProcessEnv =>
    cleanEnv({
      KAFKA_BROKERS: inject('brokers').join(','),
      SCHEMA_REGISTRY_URL: registry.url,
      SLUICE_TOPIC_PREFIX: prefix,
      SLUICE_DATA_DIR: dataDir,
      SLUICE_TOPOLOGY: DEMO_TOPOLOGY,
      SLUICE_LOG_LEVEL: 'warn',
    });

  beforeAll(async () => {
    kafka = testKafka();
    admin = kafka.admin();
    await admin.connect();
    dataDir = await fs.mkdtemp(path.join(os.tmpdir(), 'sluice-experiments-'));
    tables = offlineTables({ sources: demo.sources, views: demo.views });
    for (const topic of ['raw.transactions', 'raw.clicks', 'raw.chargebacks', 'dlq', ...tables.map((table) => table.topic)])
      await (topic.startsWith('registry.')
        ? createTopic(admin, `${prefix}${topic}`, 1, { 'cleanup.policy': 'compact' })
        : createTopic(admin, `${prefix}${topic}`, 3));
    registry = await startSchemaRegistry({ brokers: inject('brokers'), topic: `${prefix}_schemas`, host: '127.0.0.1', port: 0, logger });
    ids = await registerSchemas(registry.url, topologySubjects(prefix, demo), logger);
    versions = await publishFeatureViews(demo.views, {
      kafka,
      topic: `${prefix}registry.features`,
      registryUrl: registry.url,
      schemaId: ids.get(`${prefix}registry.features-value`)!,
      logger,
    });
    store = new EmbeddedOfflineStore(new ChdbEngine(path.join(dataDir, 'clickhouse')));
    await ensureTables(store, tables);
    const metrics = createMetricsRegistry(false);
    const stageOptions = (group: string): StageOptions => ({
      brokers: inject('brokers'),
      groupId: `${prefix}${group}`,
      dlqTopic: `${prefix}dlq`,
      metrics,
      logger,
      stateDir: path.join(dataDir, 'state'),
      topicPrefix: prefix,
    });
    running.push(
      await runStage(
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
        stageOptions('ingest'),
      ),
      await runStage(
        featuresStage({
          views: demo.views,
          versions,
          topicPrefix: prefix,
          serdeFor: (reader) => new AvroSerde(registry.url, reader),
          schemaIds: Object.fromEntries(demo.views.map((view) => [view.name, ids.get(`${prefix}features.${view.name}-value`)!])),
          metrics,
        }),
        stageOptions('features'),
      ),
      await runSink({
        brokers: inject('brokers'),
        groupId: `${prefix}sink`,
        topicPrefix: prefix,
        tables,
        store,
        registryUrl: registry.url,
        dlqTopic: `${prefix}dlq`,
        metrics,
        logger,
      }),
    );
    await produce(history);
    await ingested(history);
  }, 240_000);

  afterAll(async () => {
    for (const service of running.reverse()) await service.stop();
    await store.close();
    await registry.stop();
    await admin.disconnect();
    await fs.rm(dataDir, { recursive: true, force: true });
  });

  it('records a training run with its dataset manifest, links the registered version, and the sink lands it in ClickHouse', async () => {
    first = await trainModel({ ...jobOptions(), model, aliases: ['champion'] });
    process.stdout.write(
      `tfjs: AUC ${first.evaluation.auc.toFixed(4)} on ${first.testRows} held-out rows (${first.evaluation.positives} positives), run ${first.runId}\n`,
    );
    expect(first.evaluation.auc).toBeGreaterThan(0.85);
    const run = findRun(await experiments(), first.runId);
    expect(run).toMatchObject({
      experiment: 'fraud',
      status: 'FINISHED',
      trainer: 'tfjs-mlp@wasm',
      seed: 42,
      model_version: first.version.version,
      trigger: { kind: 'manual', alert_id: null, parent_run_id: null, from_run_id: null },
      params: { engine: 'tfjs', kind: 'mlp', epochs: '15', learningRate: '0.01', batchSize: '128', hidden: '16', l2: '0', seed: '42' },
      machine: { device: 'CPU' },
      error: null,
    });
    expect(run.code_commit).toBe(execFileSync('git', ['rev-parse', 'HEAD'], { cwd: PROJECT_ROOT }).toString().trim());
    expect(run.metrics.auc).toBeCloseTo(first.evaluation.auc, 12);
    expect(run.epochs.map((epoch) => epoch.epoch)).toEqual(Array.from({ length: 15 }, (_, index) => index + 1));
    expect(run.epochs[14]!.train_loss!).toBeLessThan(run.epochs[0]!.train_loss!);
    expect(run.durations.total_seconds).toBeGreaterThan(0);
    // the manifest: every partition read with its offsets (the topics' ends when it ran), schema ids, views, labels, split
    const manifest = run.dataset!;
    expect(manifest.dataset_sha256).toBe(first.datasetSha256);
    expect(manifest.inputs).toEqual(modelInputs(model));
    for (const topic of ['events.transactions', 'events.chargebacks']) {
      const ends = await admin.fetchTopicOffsets(`${prefix}${topic}`);
      const read = manifest.ranges
        .filter((range) => range.topic === `${prefix}${topic}`)
        .sort((left, right) => left.partition - right.partition);
      expect(read.map((range) => [range.partition, range.start_offset, range.end_offset])).toEqual(
        ends.map((end) => [end.partition, Number(end.low), Number(end.high)]).sort((left, right) => left[0]! - right[0]!),
      );
    }
    expect(manifest.schema_ids).toEqual(
      expect.arrayContaining([
        { topic: `${prefix}events.transactions`, ids: [ids.get(`${prefix}events.transactions-value`)] },
        { topic: `${prefix}events.chargebacks`, ids: [ids.get(`${prefix}events.chargebacks-value`)] },
      ]),
    );
    expect(manifest.feature_views).toEqual(model.features.map(({ view }) => ({ name: view.name, version: 1, definition_hash: view.hash })));
    expect(manifest).toMatchObject({
      label_source: 'chargebacks',
      label_window_ms: HOUR,
      selection: { event_time_from: null, event_time_to: null, offsets: [] },
    });
    expect(manifest.split).toMatchObject({
      train_rows: first.trainRows,
      validation_rows: 0,
      test_rows: first.testRows,
      test_fraction: 0.25,
    });
    const version = (await readModelRegistry({ kafka, topic: `${prefix}registry.models`, registryUrl: registry.url })).find(
      (candidate) => candidate.version === first.version.version,
    );
    expect(version?.run_id).toBe(first.runId);
    await waitUntil(
      async () => (await count('registry_experiments', `WHERE run_id = '${first.runId}' AND status = 'FINISHED'`)) === 1,
      30_000,
      'the finished run in ClickHouse',
    );
    const [row] = await store.query<{ trainer: string; sha: string }>(
      `SELECT trainer, JSONExtractString(dataset, 'dataset_sha256') AS sha FROM registry_experiments WHERE run_id = '${first.runId}' AND status = 'FINISHED'`,
    );
    expect(row).toEqual({ trainer: 'tfjs-mlp@wasm', sha: first.datasetSha256 });
  }, 110_000);

  it('rebuilds the same training set from the manifest after the topics grew, and trains the same weights bit for bit', async () => {
    await produce(later);
    await ingested(later);
    const rebuilt = await trainModel({ ...jobOptions(), model, fromRun: first.runId.slice(0, 8) });
    expect(rebuilt.datasetSha256).toBe(first.datasetSha256);
    expect(weightsOf(rebuilt)).toEqual(weightsOf(first));
    expect(rebuilt.version.artifact_sha256).toBe(first.version.artifact_sha256);
    expect(rebuilt.version.version).toBe(first.version.version + 1);
    expect(findRun(await experiments(), rebuilt.runId).trigger).toMatchObject({ kind: 'rebuild', from_run_id: first.runId });
    // the topics did grow: without the manifest, the same command reads more
    const fresh = await trainModel({ ...jobOptions(), model, epochs: 1 });
    expect(fresh.datasetSha256).not.toBe(first.datasetSha256);
    expect(fresh.trainRows + fresh.testRows).toBeGreaterThan(first.trainRows + first.testRows);
  }, 110_000);

  it.skipIf(SKIP_JAX)(
    'trains with the JAX trainer on the same manifest: held-out AUC within 0.01 of TensorFlow.js, ONNX parity < 1e-5, repeatable',
    async () => {
      jax = await trainModel({ ...jobOptions(), model, fromRun: first.runId, engine: 'jax', jax: { python: JAX_PYTHON, device: 'cpu' } });
      process.stdout.write(
        `demo model, same manifest: held-out AUC JAX ${jax.evaluation.auc.toFixed(4)} vs TensorFlow.js ${first.evaluation.auc.toFixed(4)}; JAX ONNX parity ${jax.parityMaxDiff.toExponential(2)}\n`,
      );
      expect(jax.datasetSha256).toBe(first.datasetSha256);
      expect(jax.trainer).toBe('jax-mlp@cpu');
      expect(Math.abs(jax.evaluation.auc - first.evaluation.auc)).toBeLessThan(0.01);
      expect(jax.parityMaxDiff).toBeLessThan(1e-5);
      const run = findRun(await experiments(), jax.runId);
      expect(run).toMatchObject({ status: 'FINISHED', trainer: 'jax-mlp@cpu', params: { engine: 'jax' }, machine: { device: 'CPU' } });
      expect(run.environment.jax).toMatch(/^\d+\.\d+/);
      expect(run.epochs).toHaveLength(15);
      // One seed against one seed differs by each seed's luck (±0.01 AUC on this slice for either
      // trainer); five seeds each side compare the trainers themselves.
      const seeds = [42, 1, 2, 3, 4];
      const rebuild = rebuildFrom(findRun(await experiments(), first.runId).dataset!, model);
      const set = await loadTrainingSet(jobOptions(), model, rebuild);
      const split = timeSplit(set.rows.length, rebuild.testFraction);
      const training = { rows: set.rows.slice(0, split.trainEnd), labels: set.labels.slice(0, split.trainEnd) };
      const test = { rows: set.rows.slice(split.validationEnd), labels: set.labels.slice(split.validationEnd) };
      const dir = await fs.mkdtemp(path.join(dataDir, 'seeds-'));
      const width = set.inputs.length;
      await writeJaxInputs(path.join(dir, 'data'), {
        features: set.inputs,
        train: jaxSplit(training.rows, training.labels, width),
        test: jaxSplit(test.rows, test.labels, width),
        trials: seeds.map((seed) => ({ id: `seed-${seed}`, kind: 'mlp', ...model.params, seed })),
        writeScores: true,
      });
      const result = await runJax({ python: JAX_PYTHON, dataDir: path.join(dir, 'data'), outDir: path.join(dir, 'out'), device: 'cpu' });
      const jaxAucs = seeds.map((_, index) => auc([...result.scores.test![index]!], test.labels));
      const tfjsAucs: number[] = [];
      for (const seed of seeds) {
        const trained = await train(training.rows, training.labels, { kind: 'mlp', ...model.params, seed, features: set.inputs });
        tfjsAucs.push(auc([...(await trained.predict(test.rows))], test.labels));
      }
      const mean = (values: readonly number[]): number => values.reduce((sum, value) => sum + value, 0) / values.length;
      process.stdout.write(
        `five seeds: held-out AUC JAX ${jaxAucs.map((value) => value.toFixed(4)).join(' ')} (mean ${mean(jaxAucs).toFixed(4)}), TensorFlow.js ${tfjsAucs.map((value) => value.toFixed(4)).join(' ')} (mean ${mean(tfjsAucs).toFixed(4)})\n`,
      );
      expect(jaxAucs[0]).toBeCloseTo(jax.evaluation.auc, 4); // the seed-42 run above (its AUC from onnxruntime scores)
      expect(Math.abs(mean(jaxAucs) - mean(tfjsAucs))).toBeLessThan(0.01);
      // a rebuild of the JAX run trains with JAX again (the run's engine), to the same weights
      const again = await trainModel({ ...jobOptions(), model, fromRun: jax.runId, jax: { python: JAX_PYTHON, device: 'cpu' } });
      expect(again.trainer).toBe('jax-mlp@cpu');
      expect(weightsOf(again)).toEqual(weightsOf(jax));
    },
    110_000,
  );

  it('records the alert that triggered a run, through the job and through sluice train --alert', async () => {
    const report = await trainModel({ ...jobOptions(), model, epochs: 1, trigger: { kind: 'alert', alertId: 'drift-fraud-amount-42' } });
    expect(findRun(await experiments(), report.runId).trigger).toEqual({
      kind: 'alert',
      alert_id: 'drift-fraud-amount-42',
      parent_run_id: null,
      from_run_id: null,
    });
    const trained = await runSluice(['train', 'fraud', '--epochs', '1', '--alert', 'psi-fraud-7'], cliEnv(), 60_000);
    expect(trained.code).toBe(0);
    const runId = /; run ([0-9a-f-]{36})$/m.exec(trained.stdout)?.[1];
    expect(runId).toBeDefined();
    expect(findRun(await experiments(), runId!).trigger).toMatchObject({ kind: 'alert', alert_id: 'psi-fraud-7' });
    const refused = await runSluice(['train', 'fraud', '--alert', ' '], cliEnv(), 60_000);
    expect(refused.code).not.toBe(0);
    expect(refused.stderr).toContain('--alert takes the id of the alert');
  }, 90_000);

  it('sluice tune fraud --trials 32: every trial an experiment, the best at least as good as the default on validation, registered as a candidate', async () => {
    const started = performance.now();
    const tune = await runSluice(['tune', 'fraud', '--trials', '32'], cliEnv(), 110_000);
    const seconds = (performance.now() - started) / 1000;
    process.stdout.write(`sluice tune fraud --trials 32: exit ${tune.code} in ${seconds.toFixed(1)} s\n${tune.stdout}${tune.stderr}`);
    expect(tune.code).toBe(0);
    const runId = /^tuning run ([0-9a-f-]{36})/m.exec(tune.stdout)?.[1];
    expect(runId).toBeDefined();
    const all = await experiments();
    const tuning = findRun(all, runId!);
    const trials = all
      .filter((run) => run.trigger?.parent_run_id === runId)
      .sort((left, right) => Number(left.params.trial) - Number(right.params.trial));
    expect(trials).toHaveLength(32);
    expect(trials.every((run) => run.status === 'FINISHED' && run.trigger?.kind === 'trial')).toBe(true);
    expect(tuning).toMatchObject({ status: 'FINISHED', trigger: { kind: 'tuning' }, params: { trials: '32', search: 'random' } });
    // trial 0 is the definition's configuration, trained to the end
    const baseline = trials[0]!;
    expect(baseline.params).toMatchObject({ baseline: 'true', kind: 'mlp', learningRate: '0.01', hidden: '16', l2: '0', epochs: '15' });
    expect(baseline.epochs).toHaveLength(15);
    expect(trials.filter((run) => run.params.stopped_at_epoch !== undefined).length).toBeGreaterThan(20);
    // the default configuration trained alone on the same training rows scores the validation rows the same
    const manifest = tuning.dataset!;
    const rebuild = rebuildFrom(manifest, model);
    const set = await loadTrainingSet(jobOptions(), model, rebuild);
    const split = timeSplit(set.rows.length, rebuild.testFraction, rebuild.validationFraction);
    expect(split.validationEnd - split.trainEnd).toBe(manifest.split!.validation_rows);
    const data = await TrainingData.prepare(set.rows.slice(0, split.trainEnd), set.labels.slice(0, split.trainEnd), set.inputs);
    const alone = await TfjsTrial.create(data, { kind: 'mlp', ...model.params });
    await alone.trainTo(model.params.epochs);
    const defaultLoss = logLoss(
      await alone.predict(set.rows.slice(split.trainEnd, split.validationEnd)),
      set.labels.slice(split.trainEnd, split.validationEnd),
    );
    alone.dispose();
    data.dispose();
    expect(baseline.metrics.validation_log_loss).toBe(defaultLoss);
    const best = findRun(all, tuning.params.best_run!);
    expect(best.metrics.validation_log_loss).toBeLessThanOrEqual(defaultLoss);
    expect(tuning.metrics.best_validation_log_loss).toBe(best.metrics.validation_log_loss);
    // registered as a candidate, linked to its trial run, champion untouched
    const versions = await readModelRegistry({ kafka, topic: `${prefix}registry.models`, registryUrl: registry.url });
    const candidate = versions.find((version) => version.version === tuning.model_version)!;
    expect(candidate.aliases).toEqual(['candidate']);
    expect(candidate.run_id).toBe(best.run_id);
    expect(candidate.params.tuning_run).toBe(runId);
    expect(best.model_version).toBe(candidate.version);
    expect(versions.find((version) => version.aliases.includes('champion'))?.version).toBe(first.version.version);
    expect(tuning.metrics.onnx_parity_max_diff).toBeLessThan(1e-5);
    // sluice experiments ls lists all 32 trials (and the tuning run)
    const listed = await runSluice(['experiments', 'ls', '--parent', runId!], cliEnv(), 60_000);
    expect(listed.code).toBe(0);
    for (const trial of trials) expect(listed.stdout).toContain(trial.run_id);
    expect(listed.stdout).toMatch(/^33 run\(s\)$/m);
  }, 115_000);

  it.skipIf(SKIP_JAX)(
    'tunes with the JAX trainer: all trials in one vectorized program, the baseline kept, the best registered',
    async () => {
      const report = await tuneModel({
        ...jobOptions(),
        model,
        engine: 'jax',
        jax: { python: JAX_PYTHON, device: 'cpu' },
        trials: 16,
        search: 'random',
        space: ['lr=1e-3..1e-1:log', 'hidden=8,16,32'].map(parseParam),
      });
      expect(report.trials).toHaveLength(16);
      expect(report.trials[0]).toMatchObject({ status: 'completed', epochsTrained: 15 });
      expect(report.best.validation.log_loss).toBeLessThanOrEqual(report.baseline.validation.log_loss);
      expect(report.parityMaxDiff).toBeLessThan(1e-5);
      expect(report.version.aliases).toEqual(['candidate']);
      const trials = (await experiments()).filter((run) => run.trigger?.parent_run_id === report.runId);
      expect(trials).toHaveLength(16);
      expect(
        trials.every((run) => run.trainer === `jax-${run.params.kind}@cpu` && run.epochs.every((epoch) => epoch.validation_loss !== null)),
      ).toBe(true);
    },
    110_000,
  );

  it('sluice experiments show and compare print a run and the params that differ', async () => {
    const env = cliEnv();
    const shown = await runSluice(['experiments', 'show', first.runId], env, 60_000);
    expect(shown.code).toBe(0);
    expect(shown.stdout).toContain(`run ${first.runId}:`);
    expect(shown.stdout).toContain(`sha256         ${first.datasetSha256}`);
    expect(shown.stdout).toMatch(new RegExp(`${prefix.replaceAll('.', '\\.')}events\\.chargebacks\\s+0\\s+0\\s+\\d+`));
    const fast = await trainModel({ ...jobOptions(), model, epochs: 2, seed: 7 });
    const compared = await runSluice(['experiments', 'compare', first.runId, fast.runId], env, 60_000);
    expect(compared.code).toBe(0);
    expect(compared.stdout).toMatch(/^epochs\s+15\s+2$/m);
    expect(compared.stdout).toMatch(/^seed\s+42\s+7$/m);
    expect(compared.stdout).toMatch(/^dataset_sha256\s/m); // the topics grew between the two runs
    expect(compared.stdout).toMatch(/^auc\s+[\d.]+\*?\s+[\d.]+\*?$/m);
    expect(compared.stdout).not.toMatch(/^learningRate\s/m); // the same in both
  }, 90_000);

  it('refuses to rebuild a manifest whose records retention deleted, and records the failed run', async () => {
    const topic = `${prefix}events.chargebacks`;
    const [partition] = await admin.fetchTopicOffsets(topic);
    await admin.deleteTopicRecords({ topic, partitions: [{ partition: partition!.partition, offset: '1' }] });
    await expect(trainModel({ ...jobOptions(), model, fromRun: first.runId })).rejects.toThrow(DatasetGoneError);
    const failed = (await experiments()).filter((run) => run.trigger?.from_run_id === first.runId && run.status === 'FAILED');
    expect(failed).toHaveLength(1);
    expect(failed[0]!.error).toMatch(/no longer holds offsets \[0, \d+\)/);
  }, 60_000);
});
