import { spawn } from 'node:child_process';
import { createHash } from 'node:crypto';
import { existsSync } from 'node:fs';
import fs from 'node:fs/promises';
import path from 'node:path';
import { PROJECT_ROOT } from '../common/config.js';
import { SluiceError } from '../common/errors.js';
import type { DenseLayer, ScoringNetwork } from './network.js';
import { decodeNpy, encodeNpy } from './npy.js';
import type { TrainerKind } from '../topology/models.js';

/**
 * The TypeScript side of the JAX trainer (models/jax, its file contract in models/jax/CONTRACT.md):
 * writes a training set as .npy arrays plus spec.json, runs `python -m sluice_jax` on them, and
 * reads result.json back — weights in the ScoringNetwork layout, per-epoch losses, metrics, the
 * device it ran on and the hash of the data it read. The trainer runs on a GPU when its JAX has one
 * and on the CPU otherwise, and the same folder trains on a machine without Node.js.
 */

/** The Python package's folder (the trainer runs with it as the working directory). */
export const JAX_DIR = path.join(PROJECT_ROOT, 'models', 'jax');

/** Where the README's virtual environment puts Python (created from models/jax/requirements.txt). */
export const DEFAULT_PYTHON = path.join(PROJECT_ROOT, '.venv-jax', 'bin', 'python');

/** The configured Python, else the project's virtual environment, else python3 on the PATH. */
export function pythonFor(configured?: string): string {
  if (configured) return configured;
  return existsSync(DEFAULT_PYTHON) ? DEFAULT_PYTHON : 'python3';
}

/** A split: rows × features row-major (NaN = missing) and 0/1 labels. */
export interface JaxSplit {
  readonly values: Float32Array;
  readonly labels: Float32Array;
}

export interface JaxTrial {
  readonly id: string;
  readonly kind: TrainerKind;
  readonly hidden?: number;
  readonly learningRate: number;
  readonly batchSize: number;
  readonly epochs: number;
  readonly l2: number;
  readonly seed: number;
  /** Never stopped by successive halving (the baseline). */
  readonly keep?: boolean;
}

export interface JaxJob {
  readonly features: readonly string[];
  readonly train: JaxSplit;
  readonly validation?: JaxSplit;
  readonly test?: JaxSplit;
  readonly trials: readonly JaxTrial[];
  readonly successiveHalving?: { readonly minEpochs: number; readonly eta: number };
  readonly device?: 'auto' | 'cpu' | 'gpu';
  /** Also write the trainer's own scores of the validation and test splits (for the ONNX parity check). */
  readonly writeScores?: boolean;
}

export interface JaxSplitMetrics {
  readonly auc: number | null;
  readonly logLoss: number | null;
  readonly rows: number;
  readonly positives: number;
}

export interface JaxTrialResult {
  readonly id: string;
  readonly index: number;
  readonly status: 'completed' | 'stopped';
  readonly epochsTrained: number;
  readonly stoppedAtEpoch: number | null;
  readonly network: ScoringNetwork;
  readonly trainLoss: readonly number[];
  readonly valLoss: readonly number[] | null;
  readonly validation: JaxSplitMetrics | null;
  readonly test: JaxSplitMetrics | null;
  readonly seconds: number;
  readonly wallSeconds: number;
}

export interface JaxResult {
  readonly trainer: { readonly name: string; readonly version: string };
  readonly jax: { readonly version: string; readonly jaxlib: string | null; readonly numpy: string };
  readonly device: {
    readonly requested: string;
    readonly platform: string;
    readonly kind: string;
    readonly name: string;
    readonly count: number;
  };
  readonly host: { readonly python: string; readonly system: string; readonly machine: string; readonly cpus: number | null };
  readonly datasetSha256: string;
  readonly timing: {
    readonly totalSeconds: number;
    readonly setupSeconds: number;
    readonly compileSeconds: number;
    readonly trainSeconds: number;
    readonly evalSeconds: number;
    readonly trialsPerSecond: number | null;
    readonly trainTrialsPerSecond: number | null;
  };
  readonly trials: readonly JaxTrialResult[];
  /** scores_val.npy / scores_test.npy: [trials, rows] as one Float32Array per trial. */
  readonly scores: { readonly validation?: readonly Float32Array[]; readonly test?: readonly Float32Array[] };
  /** Wall seconds of the whole Python process (start-up and JAX import included). */
  readonly processSeconds: number;
}

export class JaxTrainerError extends SluiceError {}

/** The contract's arrays, in the order of its dataset hash. */
type ArrayName = 'X' | 'y' | 'X_val' | 'y_val' | 'X_test' | 'y_test';

function arraysOf(job: JaxJob): [ArrayName, Float32Array, number[]][] {
  const width = job.features.length;
  const out: [ArrayName, Float32Array, number[]][] = [];
  const add = (x: ArrayName, y: ArrayName, split: JaxSplit | undefined): void => {
    if (!split) return;
    const rows = split.labels.length;
    if (split.values.length !== rows * width)
      throw new JaxTrainerError('SLUICE_JAX_INPUT', `${x}: ${split.values.length} values are not ${rows} rows × ${width} features`);
    out.push([x, split.values, [rows, width]], [y, split.labels, [rows]]);
  };
  add('X', 'y', job.train);
  add('X_val', 'y_val', job.validation);
  add('X_test', 'y_test', job.test);
  return out;
}

/** The contract's dataset hash (section 6.3): SHA-256 of the float32 bytes of X, y, X_val, y_val, X_test, y_test. */
export function contractDatasetHash(job: Pick<JaxJob, 'features' | 'train' | 'validation' | 'test'>): string {
  const hash = createHash('sha256');
  for (const [, values] of arraysOf({ ...job, trials: [] })) {
    const bytes = encodeNpy(values, [values.length]); // little-endian float32, whatever the host
    hash.update(bytes.subarray(bytes.length - values.length * 4));
  }
  return hash.digest('hex');
}

/** Writes the job's files into `dir` (created): the folder `python -m sluice_jax --data <dir>` reads. */
export async function writeJaxInputs(dir: string, job: JaxJob): Promise<{ readonly datasetSha256: string }> {
  await fs.mkdir(dir, { recursive: true });
  for (const [name, values, shape] of arraysOf(job)) await fs.writeFile(path.join(dir, `${name}.npy`), encodeNpy(values, shape));
  const spec = {
    version: 1,
    features: job.features,
    trials: job.trials.map((trial) => ({
      id: trial.id,
      kind: trial.kind,
      ...(trial.kind === 'mlp' ? { hidden: trial.hidden ?? 16 } : {}),
      learningRate: trial.learningRate,
      batchSize: trial.batchSize,
      epochs: trial.epochs,
      l2: trial.l2,
      seed: trial.seed,
      ...(trial.keep ? { keep: true } : {}),
    })),
    device: job.device ?? 'auto',
    ...(job.successiveHalving ? { successiveHalving: job.successiveHalving } : {}),
    ...(job.writeScores ? { writeScores: true } : {}),
  };
  await fs.writeFile(path.join(dir, 'spec.json'), `${JSON.stringify(spec, null, 1)}\n`);
  return { datasetSha256: contractDatasetHash(job) };
}

function floats(text: string): Float32Array {
  const bytes = Buffer.from(text, 'base64');
  const out = new Float32Array(bytes.length / 4);
  for (let index = 0; index < out.length; index++) out[index] = bytes.readFloatLE(index * 4);
  return out;
}

interface RawLayer {
  readonly inputs: number;
  readonly outputs: number;
  readonly activation: 'relu' | 'sigmoid';
  readonly weights: string;
  readonly bias: string;
}

interface RawTrial extends Omit<JaxTrialResult, 'network'> {
  readonly network: { readonly features: string[]; readonly mean: string; readonly std: string; readonly layers: RawLayer[] };
}

function networkOf(raw: RawTrial['network']): ScoringNetwork {
  const layers: DenseLayer[] = raw.layers.map((layer) => ({
    inputs: layer.inputs,
    outputs: layer.outputs,
    activation: layer.activation,
    weights: floats(layer.weights),
    bias: floats(layer.bias),
  }));
  return { features: raw.features, mean: floats(raw.mean), std: floats(raw.std), layers };
}

export interface RunJaxOptions {
  readonly python: string;
  /** A folder holding the inputs (writeJaxInputs). */
  readonly dataDir: string;
  /** Where result.json (and scores) go; created. */
  readonly outDir: string;
  readonly device?: 'auto' | 'cpu' | 'gpu';
  readonly signal?: AbortSignal;
  /** The trainer's progress lines (stderr). */
  readonly onLine?: (line: string) => void;
}

/**
 * Runs the trainer on a prepared folder. The child's stdin stays open while this process lives:
 * `--watch-stdin` makes it exit when that pipe closes, so it never outlives us (also after SIGKILL).
 */
export async function runJax(options: RunJaxOptions): Promise<JaxResult> {
  await fs.mkdir(options.outDir, { recursive: true });
  const resultFile = path.join(options.outDir, 'result.json');
  await fs.rm(resultFile, { force: true }); // never read an older run's result
  const args = ['-m', 'sluice_jax', '--data', path.resolve(options.dataDir), '--out', path.resolve(options.outDir), '--watch-stdin'];
  if (options.device) args.push('--device', options.device);
  const started = performance.now();
  const child = spawn(options.python, args, { cwd: JAX_DIR, stdio: ['pipe', 'pipe', 'pipe'] });
  const killOnExit = (): void => void child.kill('SIGKILL');
  process.once('exit', killOnExit);
  const abort = (): void => void child.kill('SIGTERM');
  options.signal?.addEventListener('abort', abort, { once: true });
  const stderr: string[] = [];
  let partial = '';
  child.stderr.setEncoding('utf8').on('data', (chunk: string) => {
    const lines = (partial + chunk).split('\n');
    partial = lines.pop() ?? '';
    for (const line of lines) {
      stderr.push(line);
      if (stderr.length > 200) stderr.shift();
      options.onLine?.(line);
    }
  });
  child.stdout.resume();
  let status: number | null;
  try {
    status = await new Promise<number | null>((resolve, reject) => {
      child.once('error', (error) =>
        reject(
          new JaxTrainerError(
            'SLUICE_JAX_PYTHON',
            `cannot run ${options.python} (${error.message}); create the trainer's environment: python3 -m venv .venv-jax && .venv-jax/bin/pip install -r models/jax/requirements.txt`,
            { cause: error },
          ),
        ),
      );
      child.once('close', (code) => resolve(code));
    });
  } finally {
    process.removeListener('exit', killOnExit);
    options.signal?.removeEventListener('abort', abort);
    child.stdin.destroy();
  }
  if (partial) stderr.push(partial);
  if (status !== 0) {
    const tail = stderr
      .filter((line) => line.trim() !== '')
      .slice(-15)
      .join('\n');
    const hint = /No module named '?(jax|numpy)/.test(tail)
      ? ` (${options.python} lacks the trainer's packages: pip install -r models/jax/requirements.txt)`
      : '';
    throw new JaxTrainerError('SLUICE_JAX_FAILED', `the JAX trainer exited with status ${status}${hint}:\n${tail}`, {
      context: { status },
    });
  }
  const raw = JSON.parse(await fs.readFile(resultFile, 'utf8')) as Omit<JaxResult, 'trials' | 'scores' | 'processSeconds'> & {
    readonly trials: RawTrial[];
  };
  const scores: { validation?: Float32Array[]; test?: Float32Array[] } = {};
  for (const [split, file] of [
    ['validation', 'scores_val.npy'],
    ['test', 'scores_test.npy'],
  ] as const) {
    const location = path.join(options.outDir, file);
    if (!existsSync(location)) continue;
    const { shape, data } = decodeNpy(await fs.readFile(location));
    const columns = shape[1] ?? 0;
    scores[split] = Array.from({ length: shape[0] ?? 0 }, (_, trial) => data.slice(trial * columns, (trial + 1) * columns));
  }
  return {
    ...raw,
    trials: raw.trials.map((trial) => ({ ...trial, network: networkOf(trial.network) })),
    scores,
    processSeconds: (performance.now() - started) / 1000,
  };
}
