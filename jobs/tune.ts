import { randomUUID } from 'node:crypto';
import fs from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { errorMessage } from '../common/errors.js';
import { jaxFacts, jaxSplit, type TrainerEngine } from './engines.js';
import { datasetHash, manifestOf, timeSplit } from './manifest.js';
import {
  checkHistory,
  codeFacts,
  experimentsTopic,
  finishModel,
  loadTrainingSet,
  paramsOf,
  sliceSet,
  type TrainJobOptions,
} from './train.js';
import {
  cpuMachine,
  experimentsSchemaId,
  publishRuns,
  type DatasetManifest,
  type EpochMetrics,
  type ExperimentRun,
  type Machine,
} from '../models/experiments.js';
import { cull, plannedEpochs, rungs, type HalvingSpec } from '../models/halving.js';
import { pythonFor, runJax, writeJaxInputs, type JaxResult } from '../models/jax.js';
import { evaluate, type Evaluation } from '../models/metrics.js';
import type { ScoringNetwork } from '../models/network.js';
import type { ModelVersion } from '../models/registry.js';
import { gridTrials, randomTrials, type ParamSpec, type TrialParams } from '../models/search.js';
import { poolMatrix, TfjsPool, type TrialEpoch } from '../models/tfjs-pool.js';

/**
 * `sluice tune <model>`: many configurations on one training set. The rows are split by time into
 * training, validation (the latest share before the held-out slice) and the held-out test slice
 * that plain training holds out too. Trial 0 is the model's own configuration (the baseline, never
 * stopped); the others come from a random or grid search. Successive halving stops the trials
 * with the worst validation loss at each rung (models/halving.ts). TensorFlow.js trials run in a
 * pool of worker threads, one per granted core; the JAX trainer trains them all in one vectorized
 * program. Every trial is an experiment (its parent the tuning run, itself one); the trial with the
 * lowest validation loss is evaluated on the held-out slice and registered as a candidate.
 */
export interface TuneJobOptions extends Omit<
  TrainJobOptions,
  'trainer' | 'fromRun' | 'trigger' | 'epochs' | 'seed' | 'params' | 'minPositives'
> {
  readonly trials: number;
  readonly search: 'random' | 'grid';
  readonly space: readonly ParamSpec[];
  /** Seeds the random search (default: the model's seed). */
  readonly searchSeed?: number;
  /** The most epochs a trial trains (default: the definition's). */
  readonly epochs?: number;
  /** Successive halving (null: every trial trains all its epochs). */
  readonly halving?: HalvingSpec | null;
  /** The share of the non-held-out rows, the latest, used for validation. */
  readonly validationFraction?: number;
  /** TensorFlow.js worker threads (default: the cores). */
  readonly parallel?: number;
  readonly minPositives?: number;
  /** Trial-epochs trained so far of those planned. */
  readonly onTrialProgress?: (done: number, total: number) => void;
}

export interface TrialOutcome {
  readonly index: number;
  readonly runId: string;
  readonly config: TrialParams;
  readonly status: 'completed' | 'stopped';
  readonly epochsTrained: number;
  readonly validation: Evaluation;
  readonly epochs: readonly EpochMetrics[];
  readonly seconds: number;
}

export interface TuneReport {
  readonly runId: string;
  readonly trials: readonly TrialOutcome[];
  readonly best: TrialOutcome;
  readonly baseline: TrialOutcome;
  readonly version: ModelVersion;
  /** The best trial on the held-out slice (onnxruntime's scores). */
  readonly evaluation: Evaluation;
  readonly parityMaxDiff: number;
  readonly datasetSha256: string;
  readonly trainRows: number;
  readonly validationRows: number;
  readonly testRows: number;
  readonly engine: TrainerEngine;
  readonly trainer: string;
  readonly machine: Machine;
  /** Seconds training the trials (the pool or the trainer process, after the data was built). */
  readonly trainSeconds: number;
  readonly seconds: number;
}

/** items[index], which the caller knows is there. */
function at<T>(items: readonly T[], index: number): T {
  const item = items[index];
  if (item === undefined) throw new RangeError(`no item ${index} of ${items.length}`);
  return item;
}

interface TrainedTrial {
  readonly status: 'completed' | 'stopped';
  readonly epochs: readonly EpochMetrics[];
  readonly network: ScoringNetwork;
  readonly validationScores: Float32Array;
  readonly testScores: Float32Array;
  readonly seconds: number;
}

/** Every trial trained (halving applied) on TensorFlow.js worker threads. */
async function tuneOnTfjs(
  configs: readonly TrialParams[],
  data: Parameters<typeof TfjsPool.start>[0],
  halving: HalvingSpec | null,
  parallel: number,
  progress: (epochs: number) => void,
): Promise<TrainedTrial[]> {
  const pool = TfjsPool.start(data, Math.min(parallel, configs.length));
  try {
    const trials = configs.map((config, index) => ({
      index,
      id: `trial-${index}`,
      config,
      logs: [] as TrialEpoch[],
      result: undefined as TrainedTrial | undefined,
    }));
    await Promise.all(trials.map((trial) => pool.create(trial.id, trial.config)));
    const collect = async (trial: (typeof trials)[number], status: TrainedTrial['status']): Promise<void> => {
      const finished = await pool.finish(trial.id);
      await pool.dispose(trial.id);
      trial.result = {
        status,
        epochs: trial.logs.map((epoch) => ({
          epoch: epoch.epoch,
          train_loss: epoch.loss,
          validation_loss: epoch.validationLoss,
          seconds: epoch.seconds,
        })),
        network: finished.network,
        validationScores: finished.scores.validation ?? new Float32Array(),
        testScores: finished.scores.test ?? new Float32Array(),
        seconds: trial.logs.reduce((sum, epoch) => sum + epoch.seconds, 0),
      };
    };
    const most = Math.max(...configs.map((config) => config.epochs));
    let alive = trials;
    const schedule = halving ? rungs(halving, most) : [most];
    for (const [number, rung] of schedule.entries()) {
      await Promise.all(
        alive.map(async (trial) => {
          const trained = await pool.trainTo(trial.id, Math.min(rung, trial.config.epochs));
          trial.logs.push(...trained);
          progress(trained.length);
        }),
      );
      if (!halving) break;
      const { kept, stopped } = cull(
        alive.map((trial) => ({ index: trial.index, loss: trial.logs.at(-1)?.validationLoss ?? Number.NaN, keep: trial.index === 0 })),
        halving.eta,
        number === schedule.length - 1,
      );
      await Promise.all(stopped.map((index) => collect(at(trials, index), 'stopped')));
      alive = kept.map((index) => at(trials, index));
    }
    await Promise.all(alive.map((trial) => collect(trial, 'completed')));
    return trials.map((trial) => {
      if (!trial.result) throw new Error(`trial ${trial.index} has no result`);
      return trial.result;
    });
  } finally {
    await pool.close();
  }
}

/** Every trial trained in one JAX process (vectorized; halving in the trainer). */
async function tuneOnJax(
  configs: readonly TrialParams[],
  job: {
    features: readonly string[];
    train: ReturnType<typeof jaxSplit>;
    validation: ReturnType<typeof jaxSplit>;
    test: ReturnType<typeof jaxSplit>;
  },
  halving: HalvingSpec | null,
  options: Pick<TuneJobOptions, 'jax' | 'logger'> & { readonly dir: string; readonly keep: boolean },
  progress: (line: string) => void,
): Promise<{ trials: TrainedTrial[]; result: JaxResult }> {
  const dataDir = path.join(options.dir, 'data');
  try {
    await writeJaxInputs(dataDir, {
      ...job,
      trials: configs.map((config, index) => ({ id: `trial-${index}`, ...config, keep: index === 0 })),
      device: options.jax?.device ?? 'auto',
      writeScores: true,
      ...(halving ? { successiveHalving: halving } : {}),
    });
    const result = await runJax({
      python: pythonFor(options.jax?.python),
      dataDir,
      outDir: path.join(options.dir, 'out'),
      ...(options.jax?.device ? { device: options.jax.device } : {}),
      onLine: (line) => {
        options.logger.debug(line);
        progress(line);
      },
    });
    const trials = result.trials.map((trial, index) => ({
      status: trial.status,
      epochs: trial.trainLoss.map((loss, epoch) => ({
        epoch: epoch + 1,
        train_loss: loss,
        validation_loss: trial.valLoss?.[epoch] ?? null,
        seconds: null,
      })),
      network: trial.network,
      validationScores: result.scores.validation?.[index] ?? new Float32Array(),
      testScores: result.scores.test?.[index] ?? new Float32Array(),
      seconds: trial.seconds,
    }));
    return { trials, result };
  } finally {
    if (!options.keep) await fs.rm(options.dir, { recursive: true, force: true });
  }
}

export async function tuneModel(options: TuneJobOptions): Promise<TuneReport> {
  const started = performance.now();
  const startedAt = Date.now();
  const { model } = options;
  const engine = options.engine ?? 'tfjs';
  const halving = options.halving === undefined ? { minEpochs: 2, eta: 3 } : options.halving;
  const validationFraction = options.validationFraction ?? 0.2;
  const target = experimentsTopic(options);
  const experiments = {
    ...target,
    schemaId: options.experimentsSchemaId ?? (await experimentsSchemaId(options.registryUrl, target.topic)),
  };
  const code = await codeFacts();
  const runId = randomUUID();

  // ---- the trials: the baseline first, then the search's proposals -------------------------
  const base: TrialParams = { kind: model.trainer, ...model.params, ...(options.epochs !== undefined ? { epochs: options.epochs } : {}) };
  const configs =
    options.search === 'grid'
      ? gridTrials(base, options.space)
      : randomTrials(base, options.space, options.trials, options.searchSeed ?? model.params.seed);
  const space = options.space.map((spec) =>
    spec.type === 'choice'
      ? `${spec.name}=${spec.values.join(',')}`
      : `${spec.name}=${spec.low}..${spec.high}${spec.scale === 'log' ? ':log' : ''}${spec.integer ? ':int' : ''}`,
  );
  const tuning: ExperimentRun = {
    experiment: model.name,
    run_id: runId,
    status: 'RUNNING',
    params: {
      engine,
      search: options.search,
      trials: String(configs.length),
      space: space.join(' '),
      halving: halving ? `minEpochs=${halving.minEpochs} eta=${halving.eta}` : 'off',
      validation_fraction: String(validationFraction),
      ...(options.search === 'random' ? { search_seed: String(options.searchSeed ?? model.params.seed) } : {}),
    },
    metrics: {},
    dataset: null,
    code_commit: code.commit,
    environment: { node: process.version, ...(code.dirty !== null ? { code_dirty: String(code.dirty) } : {}) },
    resources: {},
    started_at: startedAt,
    ended_at: null,
    model_version: null,
    error: null,
    trainer: `${engine}-tuning`,
    seed: options.searchSeed ?? model.params.seed,
    trigger: { kind: 'tuning', alert_id: null, parent_run_id: null, from_run_id: null },
    epochs: [],
    machine: null,
    durations: {},
  };
  const trialRuns: ExperimentRun[] = configs.map((config, index) => ({
    ...tuning,
    run_id: randomUUID(),
    params: { engine, trial: String(index), ...(index === 0 ? { baseline: 'true' } : {}), ...paramsOf(config) },
    trainer: `${engine}-${config.kind}`,
    seed: config.seed,
    trigger: { kind: 'trial', alert_id: null, parent_run_id: runId, from_run_id: null },
  }));
  await publishRuns(experiments, [tuning, ...trialRuns]);

  let manifest: DatasetManifest | null = null;
  try {
    // ---- inputs: one training set, split train | validation | held out ------------------------
    const set = await loadTrainingSet(options, model, null);
    const split = timeSplit(set.rows.length, model.testFraction, validationFraction);
    const sha256 = datasetHash(set);
    manifest = manifestOf(model, set, split, sha256);
    checkHistory(model, set, split, options.minPositives);
    const training = sliceSet(set, 0, split.trainEnd);
    const validation = sliceSet(set, split.trainEnd, split.validationEnd);
    const test = sliceSet(set, split.validationEnd, set.rows.length);
    const datasetSeconds = (performance.now() - started) / 1000;
    options.logger.info(
      {
        model: model.name,
        run: runId,
        trials: configs.length,
        train: training.rows.length,
        validation: validation.rows.length,
        test: test.rows.length,
      },
      'tuning set built',
    );

    // ---- transformation: the trials -----------------------------------------------------------
    const total = plannedEpochs(
      configs.map((config) => config.epochs),
      configs.map((_, index) => index === 0),
      halving ?? undefined,
    );
    let done = 0;
    options.onTrialProgress?.(0, total);
    const trainStarted = performance.now();
    let trained: TrainedTrial[];
    let machine: Machine;
    let trainerName: string;
    let environment: Record<string, string> = {};
    const width = set.inputs.length;
    if (engine === 'tfjs') {
      trained = await tuneOnTfjs(
        configs,
        {
          features: set.inputs,
          train: poolMatrix(training.rows, training.labels, width),
          validation: poolMatrix(validation.rows, validation.labels, width),
          test: poolMatrix(test.rows, test.labels, width),
        },
        halving,
        options.parallel ?? os.availableParallelism(),
        (epochs) => {
          done += epochs;
          options.onTrialProgress?.(done, total);
        },
      );
      machine = cpuMachine();
      trainerName = 'tfjs@wasm';
      environment = {
        tfjs: '4.22.0',
        backend: 'wasm',
        workers: String(Math.min(options.parallel ?? os.availableParallelism(), configs.length)),
      };
    } else {
      const dir = options.runsDir ? path.join(options.runsDir, runId) : await fs.mkdtemp(path.join(os.tmpdir(), 'sluice-tune-'));
      const jax = await tuneOnJax(
        configs,
        {
          features: set.inputs,
          train: jaxSplit(training.rows, training.labels, width),
          validation: jaxSplit(validation.rows, validation.labels, width),
          test: jaxSplit(test.rows, test.labels, width),
        },
        halving,
        { ...(options.jax ? { jax: options.jax } : {}), logger: options.logger, dir, keep: options.runsDir !== undefined },
        (line) => {
          // "rung 1 at epoch 6: kept 3 of 10": the rungs are the progress the trainer reports
          const rung = /rung (\d+) at epoch (\d+)/.exec(line);
          if (rung)
            options.onTrialProgress?.(
              Math.min(
                total,
                Math.round(
                  (total * (Number(rung[1]) + 1)) /
                    (halving ? rungs(halving, Math.max(...configs.map((config) => config.epochs))).length : 1),
                ),
              ),
              total,
            );
        },
      );
      trained = jax.trials;
      const facts = jaxFacts(jax.result);
      machine = facts.machine;
      environment = { ...facts.environment, trainer_compile_seconds: String(jax.result.timing.compileSeconds) };
      trainerName = `jax@${jax.result.device.platform}`;
    }
    const trainSeconds = (performance.now() - trainStarted) / 1000;
    options.onTrialProgress?.(total, total);

    // ---- outputs: every trial's record, the best registered as a candidate --------------------
    const outcomes: TrialOutcome[] = trained.map((trial, index) => ({
      index,
      runId: at(trialRuns, index).run_id,
      config: at(configs, index),
      status: trial.status,
      epochsTrained: trial.epochs.length,
      validation: evaluate([...trial.validationScores], validation.labels, model.threshold),
      epochs: trial.epochs,
      seconds: trial.seconds,
    }));
    const loss = (outcome: TrialOutcome): number =>
      Number.isFinite(outcome.validation.log_loss) ? outcome.validation.log_loss : Number.POSITIVE_INFINITY;
    const best = outcomes
      .filter((outcome) => outcome.status === 'completed')
      .reduce((winner, outcome) => (loss(outcome) < loss(winner) ? outcome : winner));
    const baseline = at(outcomes, 0);
    const bestTrial = at(trained, best.index);
    const finished = await finishModel({
      model,
      set,
      training,
      test,
      network: bestTrial.network,
      trainerTestScores: bestTrial.testScores,
      register: {
        kafka: options.kafka,
        topicPrefix: options.topicPrefix,
        registryUrl: options.registryUrl,
        modelsSchemaId: options.modelsSchemaId,
        artifactsDir: options.artifactsDir,
        trainer: `${engine}-${best.config.kind}@${trainerName.split('@')[1] ?? ''}`,
        params: { ...at(trialRuns, best.index).params, tuning_run: runId },
        codeCommit: code.commit,
        runId: best.runId,
        aliases: options.aliases ?? ['candidate'],
        manifest,
      },
    });
    const version = finished.version;
    if (!version) throw new Error('the best trial was not registered');
    const endedAt = Date.now();
    await publishRuns(experiments, [
      ...outcomes.map((outcome): ExperimentRun => ({
        ...at(trialRuns, outcome.index),
        status: 'FINISHED',
        params: {
          ...at(trialRuns, outcome.index).params,
          ...(outcome.status === 'stopped' ? { stopped_at_epoch: String(outcome.epochsTrained) } : {}),
        },
        metrics: {
          validation_log_loss: outcome.validation.log_loss,
          validation_auc: outcome.validation.auc,
          epochs_trained: outcome.epochsTrained,
          ...(outcome.index === best.index ? finished.metrics : {}),
        },
        dataset: manifest,
        environment: { ...tuning.environment, ...environment },
        ended_at: endedAt,
        model_version: outcome.index === best.index ? version.version : null,
        trainer: `${engine}-${outcome.config.kind}@${trainerName.split('@')[1] ?? ''}`,
        epochs: outcome.epochs,
        machine,
        durations: { train_seconds: outcome.seconds },
      })),
      {
        ...tuning,
        status: 'FINISHED',
        metrics: {
          best_validation_log_loss: best.validation.log_loss,
          best_validation_auc: best.validation.auc,
          baseline_validation_log_loss: baseline.validation.log_loss,
          baseline_validation_auc: baseline.validation.auc,
          completed_trials: outcomes.filter((outcome) => outcome.status === 'completed').length,
          auc: finished.evaluation.auc,
          log_loss: finished.evaluation.log_loss,
          onnx_parity_max_diff: finished.parityMaxDiff,
        },
        params: { ...tuning.params, best_run: best.runId, best_trial: String(best.index) },
        dataset: manifest,
        environment: { ...tuning.environment, ...environment },
        ended_at: endedAt,
        model_version: version.version,
        trainer: trainerName,
        machine,
        durations: {
          dataset_seconds: datasetSeconds,
          train_seconds: trainSeconds,
          evaluate_register_seconds: finished.seconds,
          total_seconds: (performance.now() - started) / 1000,
        },
      },
    ]);
    return {
      runId,
      trials: outcomes,
      best,
      baseline,
      version,
      evaluation: finished.evaluation,
      parityMaxDiff: finished.parityMaxDiff,
      datasetSha256: sha256,
      trainRows: training.rows.length,
      validationRows: validation.rows.length,
      testRows: test.rows.length,
      engine,
      trainer: trainerName,
      machine,
      trainSeconds,
      seconds: (performance.now() - started) / 1000,
    };
  } catch (error) {
    const ended = { status: 'FAILED' as const, dataset: manifest, error: errorMessage(error), ended_at: Date.now() };
    await publishRuns(
      experiments,
      [...trialRuns, tuning].map((run) => ({ ...run, ...ended })),
    ).catch((publishError: unknown) => options.logger.warn({ err: publishError, run: runId }, 'could not record the failed tuning run'));
    throw error;
  }
}
