import type { DeploymentsTopic } from '../models/rollout.js';
import { execFile } from 'node:child_process';
import { randomUUID } from 'node:crypto';
import { promisify } from 'node:util';
import type { Kafka } from 'kafkajs';
import type { Logger } from 'pino';
import { PROJECT_ROOT } from '../common/config.js';
import { SluiceError } from '../common/errors.js';
import { buildTrainingSet, type TrainingSet } from './dataset.js';
import { evaluate, type Evaluation } from '../models/metrics.js';
import { OnnxScorer, toBatch, toOnnx } from '../models/network.js';
import { ArtifactStore, baselineOf, registerModelVersion, type ModelMetadata, type ModelVersion } from '../models/registry.js';
import { train, type TrainerKind } from '../models/trainer.js';
import type { ModelDefinition } from '../topology/models.js';
import { describeRange, type EventRange } from './range.js';

/**
 * `sluice train <model>`: a point-in-time training set from replayed topics, a time split (the
 * latest share held out), training with TensorFlow.js, evaluation on the held-out slice, the ONNX
 * model (checked against the trainer's own scores), the drift baseline of every input, and a new
 * version in the model registry with its lineage.
 */
export interface TrainJobOptions {
  readonly kafka: Kafka;
  readonly topicPrefix: string;
  readonly registryUrl: string;
  /** Registered schema id of registry.models values. */
  readonly modelsSchemaId: number;
  /** Feature view versions (registry.features). */
  readonly versions: ReadonlyMap<string, number>;
  readonly artifactsDir: string;
  readonly model: ModelDefinition;
  /** The scored events to train on (event time by default; see EventRange). */
  readonly range?: EventRange;
  readonly trainer?: TrainerKind;
  readonly epochs?: number;
  readonly seed?: number;
  /** Aliases the new version takes (e.g. champion). */
  readonly aliases?: readonly string[];
  /** registry.deployments: a version registered as champion is also a DIRECT deployment record there. */
  readonly deployments?: DeploymentsTopic;
  /** Fewest positive labels in the training slice to train at all. */
  readonly minPositives?: number;
  readonly logger: Logger;
  readonly onProgress?: (read: number, total: number) => void;
}

export interface TrainReport {
  readonly version: ModelVersion;
  readonly evaluation: Evaluation;
  readonly trainAuc: number;
  readonly trainRows: number;
  readonly testRows: number;
  readonly epochSeconds: readonly number[];
  readonly backend: string;
  /** Largest |trainer score − onnxruntime score| on the held-out rows. */
  readonly parityMaxDiff: number;
  readonly seconds: number;
}

export class NotEnoughHistoryError extends SluiceError {}

export async function trainModel(options: TrainJobOptions): Promise<TrainReport> {
  const started = performance.now();
  const { model } = options;
  const trainer = options.trainer ?? model.trainer;
  const params = {
    ...model.params,
    ...(options.epochs !== undefined ? { epochs: options.epochs } : {}),
    ...(options.seed !== undefined ? { seed: options.seed } : {}),
  };

  // ---- inputs: the training set from replayed topics -----------------------------------------
  const set = await buildTrainingSet(model, {
    kafka: options.kafka,
    topicPrefix: options.topicPrefix,
    registryUrl: options.registryUrl,
    versions: options.versions,
    ...(options.range ? { range: options.range } : {}),
    ...(options.onProgress ? { onProgress: options.onProgress } : {}),
  });
  const split = Math.floor(set.rows.length * (1 - model.testFraction));
  const slice = (from: number, to: number): Pick<TrainingSet, 'rows' | 'labels'> => ({
    rows: set.rows.slice(from, to),
    labels: set.labels.slice(from, to),
  });
  const training = slice(0, split);
  const test = slice(split, set.rows.length);
  const positives = training.labels.filter((label) => label === 1).length;
  if (positives < (options.minPositives ?? 5) || test.labels.every((label) => label === test.labels[0])) {
    throw new NotEnoughHistoryError(
      'SLUICE_NOT_ENOUGH_HISTORY',
      `not enough labelled history for ${model.name}: ${set.rows.length} labelled events, ${positives} positives in the training slice, ${test.labels.filter((label) => label === 1).length} in the test slice (${set.unlabelled} still await their label window)`,
    );
  }
  options.logger.info(
    { model: model.name, labelled: set.rows.length, trainRows: training.rows.length, testRows: test.rows.length, positives },
    'training set built',
  );

  // ---- transformation: train, evaluate, export ------------------------------------------------
  const trained = await train(training.rows, training.labels, {
    kind: trainer,
    features: set.inputs,
    seed: params.seed,
    epochs: params.epochs,
    learningRate: params.learningRate,
    batchSize: params.batchSize,
    hidden: params.hidden,
    l2: params.l2,
  });
  const onnx = toOnnx(trained.network, model.name);
  const scorer = await OnnxScorer.load(onnx, set.inputs.length);
  let testScores: Float32Array;
  let trainScores: Float32Array;
  try {
    testScores = await scorer.score(toBatch(trained.network, test.rows));
    trainScores = await scorer.score(toBatch(trained.network, training.rows));
  } finally {
    await scorer.close();
  }
  const fromTrainer = await trained.predict(test.rows);
  let parityMaxDiff = 0;
  for (let index = 0; index < testScores.length; index++)
    parityMaxDiff = Math.max(parityMaxDiff, Math.abs((testScores[index] ?? 0) - (fromTrainer[index] ?? 0)));
  const evaluation = evaluate([...testScores], test.labels, model.threshold);
  const trainAuc = evaluate([...trainScores], training.labels, model.threshold).auc;

  // ---- outputs: the artifact and the registered version ---------------------------------------
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
  const metadata: ModelMetadata = {
    name: model.name,
    inputs: set.inputs,
    fill: [...trained.network.mean],
    threshold: model.threshold,
    trainer: `tfjs-${trainer}`,
    metrics,
    baseline: Object.fromEntries(set.inputs.map((input, column) => [input, baselineOf(training.rows.map((row) => row[column] ?? null))])),
  };
  const sha = await new ArtifactStore(options.artifactsDir).put(onnx, metadata);
  const version = await registerModelVersion(
    {
      kafka: options.kafka,
      topic: `${options.topicPrefix}registry.models`,
      registryUrl: options.registryUrl,
      schemaId: options.modelsSchemaId,
      ...(options.deployments ? { deployments: options.deployments, actor: 'sluice train' } : {}),
    },
    {
      name: model.name,
      artifact_sha256: sha,
      trainer: `tfjs-${trainer}@${trained.backend}`,
      params: {
        ...Object.fromEntries(Object.entries(params).map(([key, value]) => [key, String(value)])),
        ...(options.range ? { range: describeRange(options.range) } : {}),
      },
      metrics: Object.fromEntries(Object.entries(metrics).filter(([, value]) => Number.isFinite(value))),
      dataset: {
        ranges: set.ranges.map((range) => ({
          topic: range.topic,
          partition: range.partition,
          start_offset: Number(range.start),
          end_offset: Number(range.end),
        })),
        feature_versions: set.featureVersions,
      },
      code_commit: await codeCommit(),
      run_id: randomUUID(),
      created_at: Date.now(),
    },
    options.aliases ?? [],
  );
  return {
    version,
    evaluation,
    trainAuc,
    trainRows: training.rows.length,
    testRows: test.rows.length,
    epochSeconds: trained.epochSeconds,
    backend: trained.backend,
    parityMaxDiff,
    seconds: (performance.now() - started) / 1000,
  };
}

async function codeCommit(): Promise<string | null> {
  try {
    const { stdout } = await promisify(execFile)('git', ['rev-parse', 'HEAD'], { cwd: PROJECT_ROOT, timeout: 5_000 });
    return stdout.trim() || null;
  } catch {
    return null;
  }
}
