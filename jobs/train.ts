import { execFile } from 'node:child_process';
import { randomUUID } from 'node:crypto';
import path from 'node:path';
import { promisify } from 'node:util';
import type { Kafka } from 'kafkajs';
import type { Logger } from 'pino';
import { PROJECT_ROOT } from '../common/config.js';
import { errorMessage, SluiceError } from '../common/errors.js';
import { buildTrainingSet, type TrainingSet } from './dataset.js';
import { trainWith, type EngineRun, type JaxSettings, type TrainerEngine } from './engines.js';
import { datasetHash, manifestOf, rebuildFrom, timeSplit, type Rebuild, type Split } from './manifest.js';
import {
  experimentsSchemaId,
  findRun,
  publishRuns,
  readExperiments,
  type DatasetManifest,
  type ExperimentRun,
  type ExperimentsTopic,
  type RunTrigger,
} from '../models/experiments.js';
import { evaluate, type Evaluation } from '../models/metrics.js';
import { OnnxScorer, toBatch, toOnnx, type ScoringNetwork } from '../models/network.js';
import { ArtifactStore, baselineOf, registerModelVersion, type ModelMetadata, type ModelVersion } from '../models/registry.js';
import type { TrainerKind } from '../models/trainer.js';
import type { ModelDefinition } from '../topology/models.js';
import { describeRange, type EventRange } from './range.js';

export type { TrainerEngine };

/**
 * `sluice train <model>`: a point-in-time training set from replayed topics, a time split (the
 * latest share held out), training (TensorFlow.js here, or the JAX trainer in a child process),
 * evaluation on the held-out slice, the ONNX model (checked against the trainer's own scores), the
 * drift baseline of every input, and a new version in the model registry linked to its run.
 *
 * Every run is an experiment in registry.experiments: published RUNNING when it starts, FINISHED
 * (or FAILED, with the error) when it ends, with its dataset manifest. `fromRun` rebuilds a run's
 * training set from its manifest's offsets — the same dataset hash or a failure — and trains it
 * with the run's configuration: on the CPU, the same weights bit for bit.
 */
export interface TrainJobOptions {
  readonly kafka: Kafka;
  readonly topicPrefix: string;
  readonly registryUrl: string;
  /** Registered schema id of registry.models values. */
  readonly modelsSchemaId: number;
  /** Registered schema id of registry.experiments values (looked up when absent). */
  readonly experimentsSchemaId?: number;
  /** Feature view versions (registry.features). */
  readonly versions: ReadonlyMap<string, number>;
  readonly artifactsDir: string;
  readonly model: ModelDefinition;
  /** The scored events to train on (event time by default; see EventRange). */
  readonly range?: EventRange;
  /** The architecture (default: the definition's, or the rebuilt run's). */
  readonly trainer?: TrainerKind;
  /** tfjs (default) or jax. */
  readonly engine?: TrainerEngine;
  readonly epochs?: number;
  readonly seed?: number;
  /** Other hyperparameters over the definition's (or the rebuilt run's). */
  readonly params?: Partial<Pick<ModelDefinition['params'], 'learningRate' | 'batchSize' | 'hidden' | 'l2'>>;
  /** Aliases the new version takes (e.g. champion). */
  readonly aliases?: readonly string[];
  /** Fewest positive labels in the training slice to train at all. */
  readonly minPositives?: number;
  /** Why it runs: manual (default), or an alert of monitoring.alerts (`{ kind: 'alert', alertId }`), ... */
  readonly trigger?: TrainTrigger;
  /** Rebuild this run's training set from its manifest (run id or a unique prefix). */
  readonly fromRun?: string;
  /** The JAX trainer's Python, device and files (engine jax). */
  readonly jax?: JaxSettings;
  /** Keep each JAX run's files in `<runsDir>/<run id>/` (the dataset folder a GPU machine can train on). */
  readonly runsDir?: string;
  readonly logger: Logger;
  readonly onProgress?: (read: number, total: number) => void;
}

export type TrainTrigger =
  | { readonly kind: 'manual' }
  | { readonly kind: 'demo' }
  | { readonly kind: 'alert'; readonly alertId: string }
  | { readonly kind: 'schedule'; readonly reason?: string };

export interface TrainReport {
  readonly runId: string;
  readonly version: ModelVersion;
  readonly evaluation: Evaluation;
  readonly trainAuc: number;
  readonly trainRows: number;
  readonly testRows: number;
  readonly epochSeconds: readonly (number | null)[];
  readonly backend: string;
  readonly trainer: string;
  /** Largest |trainer score − onnxruntime score| on the held-out rows. */
  readonly parityMaxDiff: number;
  readonly datasetSha256: string;
  readonly network: ScoringNetwork;
  /** With fromRun: the run rebuilt (its dataset hash was matched, or the job failed). */
  readonly rebuiltFrom: ExperimentRun | null;
  readonly seconds: number;
}

export class NotEnoughHistoryError extends SluiceError {}
export class DatasetMismatchError extends SluiceError {}

export function experimentsTopic(options: Pick<TrainJobOptions, 'kafka' | 'topicPrefix' | 'registryUrl'>): ExperimentsTopic {
  return { kafka: options.kafka, topic: `${options.topicPrefix}registry.experiments`, registryUrl: options.registryUrl };
}

/** A run's hyperparameters as registry.experiments stores them (strings). */
export function paramsOf(config: {
  readonly kind: TrainerKind;
  readonly epochs: number;
  readonly learningRate: number;
  readonly batchSize: number;
  readonly hidden: number;
  readonly l2: number;
  readonly seed: number;
}): Record<string, string> {
  return {
    kind: config.kind,
    epochs: String(config.epochs),
    learningRate: String(config.learningRate),
    batchSize: String(config.batchSize),
    ...(config.kind === 'mlp' ? { hidden: String(config.hidden) } : {}),
    l2: String(config.l2),
    seed: String(config.seed),
  };
}

/** The configuration a run's params describe (what --from-run trains again). */
function configOfRun(
  run: ExperimentRun,
  fallback: ModelDefinition,
): { kind: TrainerKind; engine: TrainerEngine } & ModelDefinition['params'] {
  const number = (name: string, otherwise: number): number => {
    const value = Number(run.params[name]);
    return run.params[name] !== undefined && Number.isFinite(value) ? value : otherwise;
  };
  const kind = run.params.kind === 'logistic' || run.params.kind === 'mlp' ? run.params.kind : fallback.trainer;
  return {
    kind,
    engine: run.params.engine === 'jax' ? 'jax' : 'tfjs',
    epochs: number('epochs', fallback.params.epochs),
    learningRate: number('learningRate', fallback.params.learningRate),
    batchSize: number('batchSize', fallback.params.batchSize),
    hidden: number('hidden', fallback.params.hidden),
    l2: number('l2', fallback.params.l2),
    seed: run.seed ?? number('seed', fallback.params.seed),
  };
}

/** The commit the code runs from, and whether tracked files differ from it. */
export async function codeFacts(): Promise<{ readonly commit: string | null; readonly dirty: boolean | null }> {
  const git = async (...args: string[]): Promise<string | null> => {
    try {
      return (await promisify(execFile)('git', args, { cwd: PROJECT_ROOT, timeout: 5_000 })).stdout;
    } catch {
      return null;
    }
  };
  const commit = (await git('rev-parse', 'HEAD'))?.trim() || null;
  const status = await git('status', '--porcelain', '--untracked-files=no');
  return { commit, dirty: status === null ? null : status.trim() !== '' };
}

/** The training set of a run: built from the topics now, or rebuilt from a manifest (hash checked by the caller). */
export async function loadTrainingSet(
  options: Pick<TrainJobOptions, 'kafka' | 'topicPrefix' | 'registryUrl' | 'versions' | 'range' | 'onProgress'>,
  model: ModelDefinition,
  rebuild: Rebuild | null,
): Promise<TrainingSet> {
  return buildTrainingSet(rebuild?.model ?? model, {
    kafka: options.kafka,
    topicPrefix: options.topicPrefix,
    registryUrl: options.registryUrl,
    versions: rebuild?.versions ?? options.versions,
    ...(rebuild ? { range: rebuild.range, pinned: rebuild.pinned } : options.range ? { range: options.range } : {}),
    ...(options.onProgress ? { onProgress: options.onProgress } : {}),
  });
}

/** Rows [from, to) of a training set. */
export function sliceSet(set: TrainingSet, from: number, to: number): { readonly rows: TrainingSet['rows']; readonly labels: number[] } {
  return { rows: set.rows.slice(from, to), labels: set.labels.slice(from, to) };
}

export function checkHistory(model: ModelDefinition, set: TrainingSet, split: Split, minPositives = 5): void {
  const training = set.labels.slice(0, split.trainEnd);
  const test = set.labels.slice(split.validationEnd);
  const positives = training.filter((label) => label === 1).length;
  if (positives < minPositives || test.every((label) => label === test[0]))
    throw new NotEnoughHistoryError(
      'SLUICE_NOT_ENOUGH_HISTORY',
      `not enough labelled history for ${model.name}: ${set.rows.length} labelled events, ${positives} positives in the training slice, ${test.filter((label) => label === 1).length} in the test slice (${set.unlabelled} still await their label window)`,
    );
}

export interface Finished {
  readonly version: ModelVersion | null;
  readonly evaluation: Evaluation;
  readonly trainAuc: number;
  readonly parityMaxDiff: number;
  readonly metrics: Record<string, number>;
  readonly seconds: number;
}

/**
 * The ONNX graph of a trained network, its parity with the trainer's own test scores, the held-out
 * evaluation with onnxruntime's scores, and (with `register`) the artifact and the registered version.
 */
export async function finishModel(options: {
  readonly model: ModelDefinition;
  readonly set: TrainingSet;
  readonly training: { readonly rows: TrainingSet['rows']; readonly labels: readonly number[] };
  readonly test: { readonly rows: TrainingSet['rows']; readonly labels: readonly number[] };
  readonly network: ScoringNetwork;
  readonly trainerTestScores: Float32Array;
  readonly register?: {
    readonly kafka: Kafka;
    readonly topicPrefix: string;
    readonly registryUrl: string;
    readonly modelsSchemaId: number;
    readonly artifactsDir: string;
    readonly trainer: string;
    readonly params: Readonly<Record<string, string>>;
    readonly codeCommit: string | null;
    readonly runId: string;
    readonly aliases: readonly string[];
    readonly manifest: DatasetManifest;
  };
}): Promise<Finished> {
  const started = performance.now();
  const { model, set, training, test, network } = options;
  const onnx = toOnnx(network, model.name);
  const scorer = await OnnxScorer.load(onnx, set.inputs.length);
  let testScores: Float32Array;
  let trainScores: Float32Array;
  try {
    testScores = await scorer.score(toBatch(network, test.rows));
    trainScores = await scorer.score(toBatch(network, training.rows));
  } finally {
    await scorer.close();
  }
  let parityMaxDiff = 0;
  for (let index = 0; index < testScores.length; index++)
    parityMaxDiff = Math.max(parityMaxDiff, Math.abs((testScores[index] ?? 0) - (options.trainerTestScores[index] ?? Number.NaN)));
  if (options.trainerTestScores.length !== testScores.length) parityMaxDiff = Number.POSITIVE_INFINITY;
  const evaluation = evaluate([...testScores], test.labels, model.threshold);
  const trainAuc = evaluate([...trainScores], training.labels, model.threshold).auc;
  const metrics: Record<string, number> = {
    auc: evaluation.auc,
    log_loss: evaluation.log_loss,
    precision: evaluation.precision,
    recall: evaluation.recall,
    ece: evaluation.ece,
    train_auc: trainAuc,
    train_rows: training.rows.length,
    test_rows: test.rows.length,
    test_positives: evaluation.positives,
    onnx_parity_max_diff: parityMaxDiff,
  };
  const register = options.register;
  if (!register) return { version: null, evaluation, trainAuc, parityMaxDiff, metrics, seconds: (performance.now() - started) / 1000 };
  const metadata: ModelMetadata = {
    name: model.name,
    inputs: set.inputs,
    fill: [...network.mean],
    threshold: model.threshold,
    trainer: register.trainer,
    metrics,
    baseline: Object.fromEntries(set.inputs.map((input, column) => [input, baselineOf(training.rows.map((row) => row[column] ?? null))])),
  };
  const sha = await new ArtifactStore(register.artifactsDir).put(onnx, metadata);
  const version = await registerModelVersion(
    {
      kafka: register.kafka,
      topic: `${register.topicPrefix}registry.models`,
      registryUrl: register.registryUrl,
      schemaId: register.modelsSchemaId,
    },
    {
      name: model.name,
      artifact_sha256: sha,
      trainer: register.trainer,
      params: register.params,
      metrics: Object.fromEntries(Object.entries(metrics).filter(([, value]) => Number.isFinite(value))),
      dataset: { ranges: register.manifest.ranges, feature_versions: register.manifest.feature_versions },
      code_commit: register.codeCommit,
      run_id: register.runId,
      created_at: Date.now(),
    },
    register.aliases,
  );
  return { version, evaluation, trainAuc, parityMaxDiff, metrics, seconds: (performance.now() - started) / 1000 };
}

function triggerOf(trigger: TrainTrigger | undefined, fromRun: ExperimentRun | null): RunTrigger {
  const kind = fromRun && (!trigger || trigger.kind === 'manual') ? 'rebuild' : (trigger?.kind ?? 'manual');
  return {
    kind,
    alert_id: trigger?.kind === 'alert' ? trigger.alertId : null,
    parent_run_id: null,
    from_run_id: fromRun?.run_id ?? null,
  };
}

function resources(cpuBefore: NodeJS.CpuUsage): Record<string, number> {
  const cpu = process.cpuUsage(cpuBefore);
  return { process_cpu_seconds: (cpu.user + cpu.system) / 1e6, process_max_rss_mb: process.resourceUsage().maxRSS / 1024 };
}

export async function trainModel(options: TrainJobOptions): Promise<TrainReport> {
  const started = performance.now();
  const startedAt = Date.now();
  const cpuBefore = process.cpuUsage();
  const runId = randomUUID();
  const target = experimentsTopic(options);
  const experiments = {
    ...target,
    schemaId: options.experimentsSchemaId ?? (await experimentsSchemaId(options.registryUrl, target.topic)),
  };

  // ---- what to train: the definition's configuration, or the rebuilt run's -----------------
  const rebuilt = options.fromRun ? findRun(await readExperiments(target), options.fromRun) : null;
  if (rebuilt && !rebuilt.dataset?.dataset_sha256)
    throw new DatasetMismatchError('SLUICE_RUN_WITHOUT_MANIFEST', `run ${rebuilt.run_id} has no dataset manifest to rebuild from`);
  const rebuild = rebuilt?.dataset ? rebuildFrom(rebuilt.dataset, options.model) : null;
  const model = rebuild?.model ?? options.model;
  const base = rebuilt ? configOfRun(rebuilt, model) : { kind: model.trainer, engine: 'tfjs' as TrainerEngine, ...model.params };
  const engine = options.engine ?? base.engine;
  const config = {
    kind: options.trainer ?? base.kind,
    epochs: options.epochs ?? base.epochs,
    learningRate: options.params?.learningRate ?? base.learningRate,
    batchSize: options.params?.batchSize ?? base.batchSize,
    hidden: options.params?.hidden ?? base.hidden,
    l2: options.params?.l2 ?? base.l2,
    seed: options.seed ?? base.seed,
  };
  const code = await codeFacts();
  const params = {
    engine,
    ...paramsOf(config),
    ...(options.range && !rebuild ? { range: describeRange(options.range) } : {}),
    ...(rebuilt ? { from_run: rebuilt.run_id } : {}),
  };
  const run: ExperimentRun = {
    experiment: model.name,
    run_id: runId,
    status: 'RUNNING',
    params,
    metrics: {},
    dataset: null,
    code_commit: code.commit,
    environment: { node: process.version, ...(code.dirty !== null ? { code_dirty: String(code.dirty) } : {}) },
    resources: {},
    started_at: startedAt,
    ended_at: null,
    model_version: null,
    error: null,
    trainer: `${engine}-${config.kind}`,
    seed: config.seed,
    trigger: triggerOf(options.trigger, rebuilt),
    epochs: [],
    machine: null,
    durations: {},
  };
  await publishRuns(experiments, [run]);
  let manifest: DatasetManifest | null = null;
  let durations: Record<string, number> = {};
  try {
    // ---- inputs: the training set from replayed topics -------------------------------------
    const set = await loadTrainingSet(options, model, rebuild);
    const split = timeSplit(set.rows.length, rebuild?.testFraction ?? model.testFraction, 0);
    const sha256 = datasetHash(set);
    manifest = manifestOf(model, set, split, sha256);
    durations = { dataset_seconds: (performance.now() - started) / 1000 };
    if (rebuilt && sha256 !== rebuilt.dataset?.dataset_sha256)
      throw new DatasetMismatchError(
        'SLUICE_DATASET_MISMATCH',
        `the rebuilt training set of run ${rebuilt.run_id} hashes to ${sha256}, the run's to ${rebuilt.dataset?.dataset_sha256}: the same offsets gave other rows`,
      );
    checkHistory(model, set, split, options.minPositives);
    const training = sliceSet(set, 0, split.trainEnd);
    const test = sliceSet(set, split.validationEnd, set.rows.length);
    options.logger.info(
      {
        model: model.name,
        run: runId,
        labelled: set.rows.length,
        trainRows: training.rows.length,
        testRows: test.rows.length,
        dataset: sha256,
      },
      'training set built',
    );

    // ---- transformation: train, evaluate, export ------------------------------------------
    const jax: JaxSettings = {
      ...options.jax,
      ...(options.runsDir && !options.jax?.dir ? { dir: path.join(options.runsDir, runId) } : {}),
      onLine: options.jax?.onLine ?? ((line) => options.logger.debug({ run: runId }, line)),
    };
    const trained: EngineRun = await trainWith(engine, set.inputs, training, test, config, jax);

    // ---- outputs: the artifact, the registered version, the finished run --------------------
    const finished = await finishModel({
      model,
      set,
      training,
      test,
      network: trained.network,
      trainerTestScores: trained.testScores,
      register: {
        kafka: options.kafka,
        topicPrefix: options.topicPrefix,
        registryUrl: options.registryUrl,
        modelsSchemaId: options.modelsSchemaId,
        artifactsDir: options.artifactsDir,
        trainer: trained.trainer,
        params,
        codeCommit: code.commit,
        runId,
        aliases: options.aliases ?? [],
        manifest,
      },
    });
    const version = finished.version;
    if (!version) throw new Error('the model was not registered');
    durations = {
      ...durations,
      ...trained.durations,
      evaluate_register_seconds: finished.seconds,
      total_seconds: (performance.now() - started) / 1000,
    };
    await publishRuns(experiments, [
      {
        ...run,
        status: 'FINISHED',
        metrics: finished.metrics,
        dataset: manifest,
        environment: { ...run.environment, ...trained.environment },
        resources: resources(cpuBefore),
        ended_at: Date.now(),
        model_version: version.version,
        trainer: trained.trainer,
        epochs: trained.epochs,
        machine: trained.machine,
        durations,
      },
    ]);
    return {
      runId,
      version,
      evaluation: finished.evaluation,
      trainAuc: finished.trainAuc,
      trainRows: training.rows.length,
      testRows: test.rows.length,
      epochSeconds: trained.epochs.map((epoch) => epoch.seconds),
      backend: trained.trainer.split('@')[1] ?? engine,
      trainer: trained.trainer,
      parityMaxDiff: finished.parityMaxDiff,
      datasetSha256: sha256,
      network: trained.network,
      rebuiltFrom: rebuilt,
      seconds: (performance.now() - started) / 1000,
    };
  } catch (error) {
    await publishRuns(experiments, [
      {
        ...run,
        status: 'FAILED',
        dataset: manifest,
        error: errorMessage(error),
        ended_at: Date.now(),
        resources: resources(cpuBefore),
        durations: { ...durations, total_seconds: (performance.now() - started) / 1000 },
      },
    ]).catch((publishError: unknown) => options.logger.warn({ err: publishError, run: runId }, 'could not record the failed run'));
    throw error;
  }
}
