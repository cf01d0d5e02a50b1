import fs from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { SluiceError } from '../common/errors.js';
import { cpuMachine, type EpochMetrics, type Machine } from '../models/experiments.js';
import { contractDatasetHash, pythonFor, runJax, writeJaxInputs, type JaxResult, type JaxSplit, type JaxTrial } from '../models/jax.js';
import type { ScoringNetwork } from '../models/network.js';
import { train, type TrainerKind } from '../models/trainer.js';

/**
 * The two training engines behind one call: TensorFlow.js in this process (wasm, CPU), and the JAX
 * trainer as a child process through its file contract (GPU when its JAX sees one, else CPU).
 * Both train the same architecture with the same optimizer; their random draws differ.
 */
export type TrainerEngine = 'tfjs' | 'jax';

export interface EngineConfig {
  readonly kind: TrainerKind;
  readonly epochs: number;
  readonly learningRate: number;
  readonly batchSize: number;
  readonly hidden: number;
  readonly l2: number;
  readonly seed: number;
}

export interface JaxSettings {
  /** The Python with the trainer's packages (default: the project's .venv-jax, else python3). */
  readonly python?: string;
  readonly device?: 'auto' | 'cpu' | 'gpu';
  /** Keep the trainer's input and output files here (else a temporary folder, removed after). */
  readonly dir?: string;
  readonly onLine?: (line: string) => void;
}

type Rows = readonly (readonly (number | null)[])[];

export interface EngineRun {
  readonly network: ScoringNetwork;
  /** The trainer's own scores of the test rows (for the ONNX parity check). */
  readonly testScores: Float32Array;
  readonly epochs: readonly EpochMetrics[];
  /** e.g. tfjs-mlp@wasm, jax-mlp@cpu. */
  readonly trainer: string;
  readonly machine: Machine;
  readonly environment: Readonly<Record<string, string>>;
  readonly durations: Readonly<Record<string, number>>;
}

export class EngineError extends SluiceError {}

export const TFJS_VERSION = '4.22.0';

/** Rows as float32 (missing: NaN) for the JAX trainer's files. */
export function jaxSplit(rows: Rows, labels: readonly number[], width: number): JaxSplit {
  const values = new Float32Array(rows.length * width);
  rows.forEach((row, index) => {
    for (let column = 0; column < width; column++) values[index * width + column] = row[column] ?? Number.NaN;
  });
  return { values, labels: Float32Array.from(labels) };
}

/** The machine and library facts of a JAX result. */
export function jaxFacts(result: JaxResult): { machine: Machine; environment: Record<string, string> } {
  return {
    machine: {
      device: result.device.platform === 'cpu' ? 'CPU' : 'GPU',
      device_name: result.device.platform === 'cpu' ? cpuMachine().device_name : result.device.kind,
      host: os.hostname(),
      cpus: result.host.cpus ?? os.availableParallelism(),
    },
    environment: {
      trainer: `${result.trainer.name} ${result.trainer.version}`,
      python: result.host.python,
      jax: result.jax.version,
      jaxlib: result.jax.jaxlib ?? '',
      numpy: result.jax.numpy,
      jax_device: `${result.device.platform}:${result.device.kind}`,
      node: process.version,
    },
  };
}

/** Trains one configuration on the training rows; scores the test rows with the trainer itself. */
export async function trainWith(
  engine: TrainerEngine,
  features: readonly string[],
  training: { readonly rows: Rows; readonly labels: readonly number[] },
  test: { readonly rows: Rows; readonly labels: readonly number[] },
  config: EngineConfig,
  jax: JaxSettings = {},
): Promise<EngineRun> {
  const started = performance.now();
  if (engine === 'tfjs') {
    const trained = await train(training.rows, training.labels, { ...config, features });
    const testScores = await trained.predict(test.rows);
    return {
      network: trained.network,
      testScores,
      epochs: trained.epochs.map((epoch) => ({
        epoch: epoch.epoch,
        train_loss: epoch.loss,
        validation_loss: null,
        seconds: epoch.seconds,
      })),
      trainer: `tfjs-${config.kind}@${trained.backend}`,
      machine: cpuMachine(),
      environment: { tfjs: TFJS_VERSION, backend: trained.backend, node: process.version },
      durations: { train_seconds: (performance.now() - started) / 1000 },
    };
  }
  const width = features.length;
  const dir = jax.dir ?? (await fs.mkdtemp(path.join(os.tmpdir(), 'sluice-jax-')));
  try {
    const job = {
      features,
      train: jaxSplit(training.rows, training.labels, width),
      test: jaxSplit(test.rows, test.labels, width),
      trials: [{ id: 'run', ...config } satisfies JaxTrial],
      device: jax.device ?? 'auto',
      writeScores: true,
    };
    const written = await writeJaxInputs(path.join(dir, 'data'), job);
    const result = await runJax({
      python: pythonFor(jax.python),
      dataDir: path.join(dir, 'data'),
      outDir: path.join(dir, 'out'),
      ...(jax.device ? { device: jax.device } : {}),
      ...(jax.onLine ? { onLine: jax.onLine } : {}),
    });
    if (result.datasetSha256 !== written.datasetSha256)
      throw new EngineError(
        'SLUICE_JAX_DATASET',
        `the JAX trainer read a dataset with hash ${result.datasetSha256}, the files written hash to ${written.datasetSha256}`,
      );
    const trial = result.trials[0];
    const testScores = result.scores.test?.[0];
    if (!trial || !testScores) throw new EngineError('SLUICE_JAX_RESULT', 'result.json holds no trial or no test scores');
    const facts = jaxFacts(result);
    return {
      network: trial.network,
      testScores,
      epochs: trial.trainLoss.map((loss, index) => ({ epoch: index + 1, train_loss: loss, validation_loss: null, seconds: null })),
      trainer: `jax-${config.kind}@${result.device.platform}`,
      machine: facts.machine,
      environment: { ...facts.environment, jax_dataset_sha256: contractDatasetHash(job) },
      durations: {
        train_seconds: (performance.now() - started) / 1000,
        trainer_process_seconds: result.processSeconds,
        trainer_compile_seconds: result.timing.compileSeconds,
        trainer_fit_seconds: result.timing.trainSeconds,
      },
    };
  } finally {
    if (!jax.dir) await fs.rm(dir, { recursive: true, force: true });
  }
}
