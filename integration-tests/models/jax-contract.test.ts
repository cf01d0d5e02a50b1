import fs from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { uniformRandom } from '../../common/random.js';
import { auc } from '../../models/metrics.js';
import { contractDatasetHash, JaxTrainerError, runJax, writeJaxInputs, type JaxJob, type JaxSplit } from '../../models/jax.js';
import { OnnxScorer, toBatch, toOnnx } from '../../models/network.js';
import { train } from '../../models/trainer.js';
import { JAX_PYTHON, SKIP_JAX } from './jax-python.js';

/**
 * The file contract end to end on the CPU: TypeScript writes the .npy files and spec.json, the
 * Python trainer trains, TypeScript reads result.json, writes the ONNX graph with its own writer and
 * scores it with onnxruntime-node — the same scores the trainer computed, to 1e-5.
 */
const features = ['amount', 'count', 'maybe', 'noise'];

function rows(seed: number, count: number): { rows: (number | null)[][]; labels: number[] } {
  const random = uniformRandom(seed);
  const out: (number | null)[][] = [];
  const labels: number[] = [];
  for (let index = 0; index < count; index++) {
    const amount = Math.exp(3 + random() * 3);
    const number = Math.floor(random() * 10);
    const maybe = random() < 0.05 ? null : random() * 100;
    out.push([amount, number, maybe, random()]);
    labels.push(random() < (amount > 300 && number > 5 ? 0.85 : 0.05) ? 1 : 0);
  }
  return { rows: out, labels };
}

function split(data: { rows: (number | null)[][]; labels: number[] }): JaxSplit {
  const values = new Float32Array(data.rows.length * features.length);
  data.rows.forEach((row, index) => row.forEach((value, column) => (values[index * features.length + column] = value ?? Number.NaN)));
  return { values, labels: Float32Array.from(data.labels) };
}

const training = rows(1, 4_000);
const validation = rows(2, 1_000);
const test = rows(3, 1_000);
const dirs: string[] = [];
const scratch = async (): Promise<string> => {
  const dir = await fs.mkdtemp(path.join(os.tmpdir(), 'sluice-jax-it-'));
  dirs.push(dir);
  return dir;
};
const bits = (values: Float32Array): string => Buffer.from(values.buffer, values.byteOffset, values.byteLength).toString('hex');

describe.skipIf(SKIP_JAX)('the JAX trainer through its file contract (CPU)', () => {
  afterAll(async () => {
    for (const dir of dirs) await fs.rm(dir, { recursive: true, force: true });
  });

  const job: JaxJob = {
    features,
    train: split(training),
    validation: split(validation),
    test: split(test),
    trials: [
      { id: 'baseline', kind: 'mlp', hidden: 16, learningRate: 0.00003, batchSize: 128, epochs: 6, l2: 0, seed: 42, keep: true },
      { id: 'a', kind: 'mlp', hidden: 8, learningRate: 0.01, batchSize: 128, epochs: 6, l2: 0.0001, seed: 42 },
      { id: 'b', kind: 'mlp', hidden: 32, learningRate: 0.003, batchSize: 128, epochs: 6, l2: 0, seed: 42 },
      { id: 'c', kind: 'logistic', learningRate: 0.02, batchSize: 256, epochs: 6, l2: 0, seed: 7 },
      { id: 'd', kind: 'mlp', hidden: 12, learningRate: 0.0001, batchSize: 128, epochs: 6, l2: 0, seed: 42 },
    ],
    device: 'cpu',
    writeScores: true,
    successiveHalving: { minEpochs: 2, eta: 3 },
  };

  it('trains what TypeScript wrote; onnxruntime scores its networks as the trainer did (< 1e-5); reruns bit for bit', async () => {
    const dir = await scratch();
    const written = await writeJaxInputs(path.join(dir, 'data'), job);
    expect(written.datasetSha256).toBe(contractDatasetHash(job));
    const result = await runJax({ python: JAX_PYTHON, dataDir: path.join(dir, 'data'), outDir: path.join(dir, 'out'), device: 'cpu' });
    expect(result.datasetSha256).toBe(written.datasetSha256);
    expect(result.device.platform).toBe('cpu');
    expect(result.trials.map((trial) => trial.id)).toEqual(['baseline', 'a', 'b', 'c', 'd']);
    // halving at epoch 2 keeps 1 of the 4 contenders, and the kept baseline whatever its loss
    const baseline = result.trials[0]!;
    expect(baseline.status).toBe('completed');
    expect(baseline.epochsTrained).toBe(6);
    expect(result.trials.filter((trial) => trial.status === 'completed')).toHaveLength(2);
    expect(result.trials.filter((trial) => trial.status === 'stopped').every((trial) => trial.epochsTrained === 2)).toBe(true);
    for (const [index, trial] of result.trials.entries()) {
      expect(trial.network.features).toEqual(features);
      const scorer = await OnnxScorer.load(toOnnx(trial.network, `t${index}`), features.length);
      try {
        const fromOnnx = await scorer.score(toBatch(trial.network, test.rows));
        const fromTrainer = result.scores.test![index]!;
        expect(fromTrainer).toHaveLength(test.rows.length);
        let worst = 0;
        for (let row = 0; row < fromOnnx.length; row++) worst = Math.max(worst, Math.abs(fromOnnx[row]! - fromTrainer[row]!));
        expect(worst).toBeLessThan(1e-5);
        // the trainer's AUC is the one TypeScript computes from the same scores
        expect(trial.test?.auc).toBeCloseTo(auc([...fromTrainer], test.labels), 9);
      } finally {
        await scorer.close();
      }
    }
    const winner = result.trials.find((trial) => trial.status === 'completed' && trial.id !== 'baseline')!;
    expect(winner.test!.auc!).toBeGreaterThan(0.6); // a quarter of the positives are label noise: about 0.7 is what 6 epochs reach

    const again = await runJax({ python: JAX_PYTHON, dataDir: path.join(dir, 'data'), outDir: path.join(dir, 'again'), device: 'cpu' });
    expect(again.trials.map((trial) => trial.network.layers.map((layer) => bits(layer.weights) + bits(layer.bias)))).toEqual(
      result.trials.map((trial) => trial.network.layers.map((layer) => bits(layer.weights) + bits(layer.bias))),
    );
  }, 110_000);

  it('trains as TensorFlow.js does: the same losses and AUC on the same data and configurations (five seeds)', async () => {
    // The random draws differ (JAX's threefry, TF.js's seedrandom): one seed against one seed differs
    // by the seed's luck (±0.015 AUC here); five seeds each side measure the trainers.
    const dir = await scratch();
    const seeds = [42, 1, 2, 3, 4];
    const config = { kind: 'mlp' as const, hidden: 16, learningRate: 0.01, batchSize: 128, epochs: 8, l2: 0 };
    await writeJaxInputs(path.join(dir, 'data'), {
      features,
      train: split(training),
      test: split(test),
      trials: seeds.map((seed) => ({ id: `seed-${seed}`, ...config, seed })),
      writeScores: true,
    });
    const result = await runJax({ python: JAX_PYTHON, dataDir: path.join(dir, 'data'), outDir: path.join(dir, 'out'), device: 'cpu' });
    const mean = (values: readonly number[]): number => values.reduce((sum, value) => sum + value, 0) / values.length;
    const jaxAuc = mean(seeds.map((_, index) => auc([...result.scores.test![index]!], test.labels)));
    const jaxLoss = mean(result.trials.map((trial) => trial.trainLoss.at(-1)!));
    const tfjsAucs: number[] = [];
    const tfjsLosses: number[] = [];
    let tfjsMean: Float32Array | undefined;
    for (const seed of seeds) {
      const trained = await train(training.rows, training.labels, { ...config, seed, features });
      tfjsAucs.push(auc([...(await trained.predict(test.rows))], test.labels));
      tfjsLosses.push(trained.epochs.at(-1)!.loss);
      tfjsMean = trained.network.mean;
    }
    process.stdout.write(
      `synthetic data, five seeds: held-out AUC JAX ${jaxAuc.toFixed(4)} vs TensorFlow.js ${mean(tfjsAucs).toFixed(4)}; last-epoch train loss ${jaxLoss.toFixed(4)} vs ${mean(tfjsLosses).toFixed(4)}\n`,
    );
    expect(Math.abs(jaxAuc - mean(tfjsAucs))).toBeLessThan(0.01);
    expect(Math.abs(jaxLoss - mean(tfjsLosses)) / mean(tfjsLosses)).toBeLessThan(0.02);
    // the same standardization as the TypeScript trainer (float64 statistics stored as float32)
    const jaxMean = result.trials[0]!.network.mean;
    for (let column = 0; column < features.length; column++) expect(jaxMean[column]).toBeCloseTo(tfjsMean![column]!, 3);
  }, 110_000);

  it("fails with the trainer's own message on bad input, and names a Python that cannot run", async () => {
    const dir = await scratch();
    await writeJaxInputs(path.join(dir, 'data'), { ...job, trials: [{ ...job.trials[1]!, learningRate: -1 }] });
    await expect(runJax({ python: JAX_PYTHON, dataDir: path.join(dir, 'data'), outDir: path.join(dir, 'out') })).rejects.toThrow(
      /exited with status 2:\nsluice_jax: invalid input: spec.json: trial "a": learningRate must be a finite number > 0/,
    );
    await expect(
      runJax({ python: path.join(dir, 'no-python'), dataDir: path.join(dir, 'data'), outDir: path.join(dir, 'out') }),
    ).rejects.toThrow(JaxTrainerError);
  }, 60_000);
});
