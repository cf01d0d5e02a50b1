import os from 'node:os';
import cliProgress from 'cli-progress';
import { ConfigError } from '../../common/errors.js';
import { tuneModel } from '../../jobs/tune.js';
import { defaultSpace, parseParam } from '../../models/search.js';
import { modelNamed } from '../../topology/index.js';
import type { CommandContext } from '../action.js';
import { progressBar } from '../progress.js';
import { rangeOf, type RangeOptions } from '../range.js';
import { commandTopology } from '../topology.js';
import { cell, formatTable } from '../table.js';
import { deviceOption, numberOption, registryWriter, trainerOption, trainingTarget } from './models.js';

export interface TuneOptions extends RangeOptions {
  readonly trials?: string;
  readonly search?: string;
  readonly param?: readonly string[];
  readonly trainer?: string;
  readonly epochs?: string;
  readonly minEpochs?: string;
  readonly eta?: string;
  readonly halving?: boolean;
  readonly validation?: string;
  readonly parallel?: string;
  readonly seed?: string;
  readonly python?: string;
  readonly device?: string;
  readonly alias?: string;
}

/** A bar of trial-epochs on a terminal (stderr), nothing elsewhere. */
function trialBar(): { update(done: number, total: number): void; stop(): void } {
  if (!process.stderr.isTTY) return { update: () => undefined, stop: () => undefined };
  const bar = new cliProgress.SingleBar(
    {
      stream: process.stderr,
      format: 'tune   [{bar}] {percentage}% | {value}/{total} trial-epochs | {duration_formatted}',
      hideCursor: true,
    },
    cliProgress.Presets.shades_classic,
  );
  let started = false;
  return {
    update(done, total) {
      if (!started) {
        bar.start(total, done);
        started = true;
      } else bar.update(Math.min(done, total));
    },
    stop() {
      if (started) bar.stop();
    },
  };
}

/** `sluice tune <model>`: a search over hyperparameters with successive halving; the best trial registered as a candidate. */
export async function tuneCommand(context: CommandContext, name: string, options: TuneOptions): Promise<number> {
  const range = rangeOf(options);
  const topology = await commandTopology(context.config);
  const model = modelNamed(topology, name);
  const { engine, kind } = trainerOption(options.trainer, undefined);
  if (kind) throw new ConfigError('tune searches the architecture with --param kind=logistic,mlp; --trainer is tfjs or jax here');
  const search = options.search ?? 'random';
  if (search !== 'random' && search !== 'grid') throw new ConfigError(`--search is random or grid, got "${search}"`);
  const space = options.param && options.param.length > 0 ? options.param.map(parseParam) : defaultSpace();
  const trials = numberOption('--trials', options.trials) ?? 32;
  const epochs = numberOption('--epochs', options.epochs);
  const validationFraction = numberOption('--validation', options.validation) ?? 0.2;
  if (!(validationFraction > 0 && validationFraction < 1))
    throw new ConfigError(`--validation is a share in (0, 1), got ${validationFraction}`);
  const halving =
    options.halving === false
      ? null
      : { minEpochs: numberOption('--min-epochs', options.minEpochs) ?? 2, eta: numberOption('--eta', options.eta) ?? 3 };
  const parallel = numberOption('--parallel', options.parallel) ?? os.availableParallelism();
  const device = deviceOption(options.device);
  const searchSeed = numberOption('--seed', options.seed);

  const registry = await registryWriter(context, topology);
  const target = await trainingTarget(context, registry, topology);
  const replay = progressBar('replay');
  const bar = trialBar();
  const report = await tuneModel({
    ...target,
    model,
    range,
    ...(engine ? { engine } : {}),
    trials,
    search,
    space,
    ...(searchSeed !== undefined ? { searchSeed } : {}),
    ...(epochs !== undefined ? { epochs } : {}),
    halving,
    validationFraction,
    parallel,
    jax: { ...(options.python ? { python: options.python } : {}), ...(device ? { device } : {}) },
    aliases: [options.alias ?? 'candidate'],
    logger: context.logger,
    onProgress: (done, total) => replay.update(done, total),
    onTrialProgress: (done, total) => {
      replay.stop();
      bar.update(done, total);
    },
  });
  bar.stop();
  const ranked = [...report.trials].sort(
    (left, right) =>
      (left.status === right.status ? 0 : left.status === 'completed' ? -1 : 1) || left.validation.log_loss - right.validation.log_loss,
  );
  const shown = ranked.slice(0, 10);
  process.stdout.write(
    [
      `tuning run ${report.runId}: ${report.trials.length} trials of ${name} on ${report.engine === 'jax' ? `JAX (${report.trainer.split('@')[1] ?? '?'}, ${report.machine.device_name})` : `TensorFlow.js (${Math.min(parallel, report.trials.length)} worker threads)`}, ${search} search, ${halving ? `successive halving (min ${halving.minEpochs} epochs, eta ${halving.eta})` : 'no halving'}`,
      `  rows: ${report.trainRows} train, ${report.validationRows} validation, ${report.testRows} held out; dataset ${report.datasetSha256}`,
      `  trials trained in ${report.trainSeconds.toFixed(1)} s (${(report.trials.length / report.trainSeconds).toFixed(2)} trials/s); all in ${report.seconds.toFixed(1)} s`,
      '',
    ].join('\n'),
  );
  process.stdout.write(
    formatTable(
      ['trial', 'run', 'status', 'kind', 'lr', 'hidden', 'l2', 'batch', 'epochs', 'val loss', 'val AUC'],
      shown.map((trial) => [
        `${trial.index}${trial.index === 0 ? ' (baseline)' : ''}${trial.index === report.best.index ? ' *' : ''}`,
        trial.runId.slice(0, 8),
        trial.status,
        trial.config.kind,
        String(trial.config.learningRate),
        trial.config.kind === 'mlp' ? String(trial.config.hidden) : '-',
        String(trial.config.l2),
        String(trial.config.batchSize),
        `${trial.epochsTrained}/${trial.config.epochs}`,
        cell(trial.validation.log_loss, 5),
        cell(trial.validation.auc, 4),
      ]),
    ),
  );
  if (ranked.length > shown.length)
    process.stdout.write(`  … ${ranked.length - shown.length} more: sluice experiments ls --parent ${report.runId}\n`);
  const { best, baseline, evaluation } = report;
  process.stdout.write(
    [
      '',
      `best: trial ${best.index} (run ${best.runId}), validation log loss ${cell(best.validation.log_loss, 5)} vs the baseline's ${cell(baseline.validation.log_loss, 5)} (AUC ${cell(best.validation.auc, 4)} vs ${cell(baseline.validation.auc, 4)})`,
      `registered ${name} v${report.version.version} as ${report.version.aliases.join(', ') || 'no alias'}: held-out AUC ${cell(evaluation.auc, 4)}, log loss ${cell(evaluation.log_loss, 4)}; ONNX vs trainer max |Δ| ${report.parityMaxDiff.toExponential(2)}`,
      `promote it with: sluice models promote ${name} ${report.version.version}`,
      '',
    ].join('\n'),
  );
  return 0;
}
