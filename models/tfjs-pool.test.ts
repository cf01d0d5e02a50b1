import { afterAll, describe, expect, it } from 'vitest';
import { uniformRandom } from '../common/random.js';
import { logLoss } from './metrics.js';
import { poolMatrix, TfjsPool } from './tfjs-pool.js';
import { TfjsTrial, train, TrainingData, type TrialConfig } from './trainer.js';

function dataset(seed: number, count: number): { rows: (number | null)[][]; labels: number[] } {
  const random = uniformRandom(seed);
  const rows: (number | null)[][] = [];
  const labels: number[] = [];
  for (let index = 0; index < count; index++) {
    const amount = random() * 10;
    rows.push([amount, random() < 0.1 ? null : random() * 3, random()]);
    labels.push(random() < (amount > 7 ? 0.7 : 0.1) ? 1 : 0);
  }
  return { rows, labels };
}

const features = ['amount', 'maybe', 'noise'];
const training = dataset(1, 1_500);
const validation = dataset(2, 400);
const bits = (values: ArrayLike<number>): string => Buffer.from(Float32Array.from(values).buffer).toString('hex');

describe('the TensorFlow.js pool', () => {
  const pool = TfjsPool.start(
    {
      features,
      train: poolMatrix(training.rows, training.labels, features.length),
      validation: poolMatrix(validation.rows, validation.labels, features.length),
    },
    2,
  );
  afterAll(() => pool.close());

  it('trains each trial in a worker to the weights and losses the main thread computes, whatever the worker', async () => {
    const configs: TrialConfig[] = [
      { kind: 'mlp', seed: 3, learningRate: 0.01, batchSize: 64, hidden: 8, l2: 0.001 },
      { kind: 'logistic', seed: 4, learningRate: 0.05, batchSize: 128 },
      { kind: 'mlp', seed: 3, learningRate: 0.003, batchSize: 64, hidden: 5 },
    ];
    const ids = configs.map((_, index) => `t${index}`);
    await Promise.all(configs.map((config, index) => pool.create(ids[index]!, config)));
    expect(new Set(ids.map((id) => pool.workerOf(id))).size).toBe(2);
    // two steps, as successive halving continues a survivor
    const first = await Promise.all(ids.map((id) => pool.trainTo(id, 1)));
    const second = await Promise.all(ids.map((id) => pool.trainTo(id, 3)));
    expect(first.map((epochs) => epochs.map((epoch) => epoch.epoch))).toEqual([[1], [1], [1]]);
    expect(second.map((epochs) => epochs.map((epoch) => epoch.epoch))).toEqual([
      [2, 3],
      [2, 3],
      [2, 3],
    ]);
    const data = await TrainingData.prepare(training.rows, training.labels, features);
    const input = data.standardize(validation.rows);
    try {
      for (const [index, config] of configs.entries()) {
        const finished = await pool.finish(ids[index]!);
        const alone = await TfjsTrial.create(data, config);
        const losses: number[] = [];
        for (let epoch = 1; epoch <= 3; epoch++) {
          await alone.trainTo(epoch);
          losses.push(logLoss(await alone.scores(input), validation.labels));
        }
        expect(finished.network.layers.map((layer) => bits(layer.weights) + bits(layer.bias))).toEqual(
          alone.network().layers.map((layer) => bits(layer.weights) + bits(layer.bias)),
        );
        expect([...first[index]!, ...second[index]!].map((epoch) => epoch.validationLoss)).toEqual(losses);
        expect(bits(finished.scores.validation!)).toBe(bits(await alone.scores(input)));
        // and train() in one go gives the same weights
        const once = await train(training.rows, training.labels, { ...config, features, epochs: 3 });
        expect(once.network.layers.map((layer) => bits(layer.weights))).toEqual(
          finished.network.layers.map((layer) => bits(layer.weights)),
        );
        alone.dispose();
      }
    } finally {
      input.dispose();
      data.dispose();
    }
    await pool.dispose('t0');
    await expect(pool.trainTo('t0', 4)).rejects.toThrow(/no trial t0/);
  }, 60_000);

  it('reports what failed in a worker as an error naming the worker, and goes on serving', async () => {
    await expect(pool.create('bad', { kind: 'mlp', seed: 1, learningRate: 0.01, batchSize: 32, hidden: -4 }, 1)).rejects.toThrow(
      /TensorFlow.js worker 1: .*units/i,
    );
    await pool.create('good', { kind: 'logistic', seed: 1, learningRate: 0.01, batchSize: 32 }, 1);
    expect((await pool.trainTo('good', 1)).map((epoch) => epoch.epoch)).toEqual([1]);
  }, 30_000);
});
