import { existsSync } from 'node:fs';
import fs from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { loadConfig, PROJECT_ROOT } from '../common/config.js';
import { uniformRandom } from '../common/random.js';
import demo from '../examples/fraud/sluice.config.js';
import { DEFAULT_PYTHON, runJax, writeJaxInputs, type JaxJob, type JaxSplit } from '../models/jax.js';
import { randomTrials, parseParam, type TrialParams } from '../models/search.js';
import { poolMatrix, TfjsPool } from '../models/tfjs-pool.js';
import { modelInputs } from '../topology/models.js';
import { printTable } from './report.js';

/**
 * `npm run bench -- training [--rows N] [--epochs N] [--trials 1,32,512] [--gpu-results DIR]`:
 * trials per second when tuning, for 1, 32 and 512 configurations of the fraud model's MLP (its 9
 * inputs; hidden 8–64, learning rates and L2 drawn), each trained for the same epochs on the same
 * seeded dataset, without halving (every trial does the same work):
 *
 * - TensorFlow.js (wasm) in a pool of worker threads, one per core, warmed up first (a trial is
 *   counted when its weights came back);
 * - the JAX trainer on the CPU, all trials in one vectorized program (counted when result.json
 *   holds them trained to the last epoch): trials/s over the whole Python process (start-up, JAX
 *   import and XLA compilation included), over its training call (compilation included), and over
 *   the compiled epochs alone.
 *
 * The dataset files it writes (one folder per trial count, `X.npy`, `y.npy`, `spec.json` for the
 * GPU) are what a GPU machine trains on with the standalone trainer; it prints the commands. With
 * `--gpu-results DIR` (the `out-<N>` folders brought back) it adds the GPU's figures and ratios.
 */
interface Settings {
  readonly rows: number;
  readonly epochs: number;
  readonly counts: readonly number[];
  readonly gpuResults: string | undefined;
}

function settings(argv: readonly string[]): Settings {
  const value = (name: string): string | undefined => {
    const index = argv.indexOf(name);
    return index >= 0 ? argv[index + 1] : undefined;
  };
  return {
    rows: Number(value('--rows') ?? 10_000),
    epochs: Number(value('--epochs') ?? 2),
    counts: (value('--trials') ?? '1,32,512').split(',').map(Number),
    gpuResults: value('--gpu-results'),
  };
}

/** Columns of several scales, 2% missing, labels from a nonlinear score with noise (seeded). */
function dataset(rows: number, width: number, seed: number): { split: JaxSplit; matrix: ReturnType<typeof poolMatrix> } {
  const random = uniformRandom(seed);
  const values: (number | null)[][] = [];
  const labels: number[] = [];
  const scales = Array.from({ length: width }, () => 1 + random() * 50);
  for (let row = 0; row < rows; row++) {
    const z = Array.from({ length: width }, () => random() * 2 - 1);
    const score = 2.5 * z[0]! * z[1]! + Math.sin(3 * z[2]!) + z[3]! - 1;
    labels.push(random() < 1 / (1 + Math.exp(-3 * score)) ? 1 : 0);
    values.push(z.map((entry, column) => (random() < 0.02 ? null : entry * scales[column]! + column)));
  }
  const flat = new Float32Array(rows * width);
  values.forEach((row, index) => row.forEach((entry, column) => (flat[index * width + column] = entry ?? Number.NaN)));
  return { split: { values: flat, labels: Float32Array.from(labels) }, matrix: poolMatrix(values, labels, width) };
}

function trialsFor(count: number, epochs: number): TrialParams[] {
  const base: TrialParams = { kind: 'mlp', learningRate: 0.01, batchSize: 256, hidden: 16, l2: 0, epochs, seed: 42 };
  return randomTrials(base, ['lr=1e-4..1e-1:log', 'hidden=8,16,32,64', 'l2=0,1e-5,1e-4,1e-3'].map(parseParam), count, 1_000 + count);
}

async function tfjsRate(pool: TfjsPool, trials: readonly TrialParams[]): Promise<{ done: number; seconds: number }> {
  const started = performance.now();
  let done = 0;
  await Promise.all(
    trials.map(async (trial, index) => {
      const id = `t${trials.length}-${index}`;
      await pool.create(id, trial);
      const epochs = await pool.trainTo(id, trial.epochs);
      const finished = await pool.finish(id);
      await pool.dispose(id);
      if (epochs.length === trial.epochs && finished.network.layers.length === 2) done++;
    }),
  );
  return { done, seconds: (performance.now() - started) / 1000 };
}

export async function main(): Promise<void> {
  const options = settings(process.argv.slice(3));
  const model = demo.models.find((candidate) => candidate.name === 'fraud');
  if (!model) throw new Error('no fraud model');
  const features = modelInputs(model);
  const { split, matrix } = dataset(options.rows, features.length, 7);
  const outDir = path.join(loadConfig().dataDir, 'bench', 'training');
  await fs.rm(outDir, { recursive: true, force: true });
  const cores = os.availableParallelism();
  const rows: Record<string, string | number>[] = [];
  const cpuRates = new Map<number, { tfjs: number; jax: number }>();

  // ---- TensorFlow.js: a warm pool of worker threads, one per core --------------------------
  const pool = TfjsPool.start({ features, train: matrix }, cores);
  try {
    await tfjsRate(pool, trialsFor(cores, 1)); // warm-up: each worker loads the wasm backend once
    for (const count of options.counts) {
      const { done, seconds } = await tfjsRate(pool, trialsFor(count, options.epochs));
      cpuRates.set(count, { tfjs: done / seconds, jax: Number.NaN });
      rows.push({
        trainer: `TensorFlow.js wasm, ${cores} worker threads`,
        configurations: count,
        trained: done,
        seconds: seconds.toFixed(1),
        'trials/s': (done / seconds).toFixed(2),
        'trials/s (compiled epochs only)': '-',
      });
    }
  } finally {
    await pool.close();
  }

  // ---- JAX on the CPU: all trials of a count in one vectorized program ------------------------
  const python = existsSync(DEFAULT_PYTHON) ? DEFAULT_PYTHON : undefined;
  for (const count of options.counts) {
    const job: JaxJob = {
      features,
      train: split,
      trials: trialsFor(count, options.epochs).map((trial, index) => ({ id: `t${index}`, ...trial })),
      device: 'gpu',
    };
    const dir = path.join(outDir, `trials-${count}`);
    await writeJaxInputs(dir, job); // spec.json says gpu: the file a GPU machine trains on as it is
    if (!python) continue;
    const result = await runJax({ python, dataDir: dir, outDir: path.join(outDir, `cpu-out-${count}`), device: 'cpu' });
    const done = result.trials.filter((trial) => trial.epochsTrained === options.epochs).length;
    cpuRates.set(count, { tfjs: cpuRates.get(count)?.tfjs ?? Number.NaN, jax: done / result.processSeconds });
    rows.push({
      trainer: `JAX ${result.jax.version} CPU (${result.device.kind}), one process`,
      configurations: count,
      trained: done,
      seconds: `${result.processSeconds.toFixed(1)} (compile ${result.timing.compileSeconds.toFixed(1)})`,
      'trials/s': `${(done / result.processSeconds).toFixed(2)} (in-trainer ${(done / result.timing.totalSeconds).toFixed(2)})`,
      'trials/s (compiled epochs only)': (done / result.timing.trainSeconds).toFixed(1),
    });
  }

  // ---- GPU: figures brought back from a GPU machine, when given ------------------------------
  if (options.gpuResults) {
    for (const count of options.counts) {
      const file = path.join(options.gpuResults, `out-${count}`, 'result.json');
      if (!existsSync(file)) continue;
      const result = JSON.parse(await fs.readFile(file, 'utf8')) as {
        device: { kind: string; platform: string };
        trials: { epochsTrained: number }[];
        timing: { totalSeconds: number; trainSeconds: number; compileSeconds: number };
      };
      const done = result.trials.filter((trial) => trial.epochsTrained === options.epochs).length;
      const cpu = cpuRates.get(count);
      rows.push({
        trainer: `JAX ${result.device.platform.toUpperCase()} (${result.device.kind}), carried dataset`,
        configurations: count,
        trained: done,
        seconds: `${result.timing.totalSeconds.toFixed(1)} in-trainer (compile ${result.timing.compileSeconds.toFixed(1)})`,
        'trials/s': `${(done / result.timing.totalSeconds).toFixed(2)} in-trainer; ×${cpu ? (done / result.timing.totalSeconds / cpu.tfjs).toFixed(1) : '?'} TF.js CPU`,
        'trials/s (compiled epochs only)': (done / result.timing.trainSeconds).toFixed(1),
      });
    }
  }

  printTable(
    `Training throughput: the fraud MLP (${features.length} inputs, hidden 8–64), ${options.rows.toLocaleString('en')} rows, ${options.epochs} epochs per trial, batch 256, no halving; ${cores} cores`,
    rows,
  );
  if (!python)
    process.stdout.write(
      `\nJAX skipped: no ${DEFAULT_PYTHON} (python3 -m venv .venv-jax && .venv-jax/bin/pip install -r models/jax/requirements.txt)\n`,
    );
  const archive = path.join(os.tmpdir(), 'sluice-training-bench.tgz');
  process.stdout.write(
    [
      '',
      'GPU: not measured by this run (no GPU here). The dataset files are written for it:',
      `  ${outDir}/trials-{${options.counts.join(',')}}/  (X.npy, y.npy, spec.json with device "gpu")`,
      'Carry them and the trainer (Python with JAX and numpy is all the GPU machine needs; no Node.js):',
      `  tar -czf ${archive} -C ${PROJECT_ROOT} models/jax -C ${outDir} ${options.counts.map((count) => `trials-${count}`).join(' ')}`,
      'On the GPU machine:',
      `  mkdir -p bench && tar -xzf sluice-training-bench.tgz -C bench && cd bench/models/jax`,
      ...options.counts.map((count) => `  python -m sluice_jax --data ../../trials-${count} --out ../../out-${count} --device gpu`),
      'Bring bench/out-* back and add the GPU rows and ratios here:',
      `  npm run bench -- training --rows ${options.rows} --epochs ${options.epochs} --trials ${options.counts.join(',')} --gpu-results <folder holding out-*>`,
      '',
    ].join('\n'),
  );
}
