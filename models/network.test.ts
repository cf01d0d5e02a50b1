import { describe, expect, it } from 'vitest';
import { auc } from './metrics.js';
import { OnnxScorer, toBatch, toOnnx } from './network.js';
import { train, type TrainerKind } from './trainer.js';
import { uniformRandom } from '../common/random.js';

/** 10,000 rows of 4 features (some missing) with a nonlinear fraud-like rule and label noise. */
function dataset(seed: number): { rows: (number | null)[][]; labels: number[] } {
  const random = uniformRandom(seed);
  const rows: (number | null)[][] = [];
  const labels: number[] = [];
  for (let index = 0; index < 10_000; index++) {
    const amount = Math.exp(3 + random() * 3);
    const count = Math.floor(random() * 10);
    const noise = random();
    const missing = random() < 0.05 ? null : random() * 100;
    const risky = amount > 300 && count > 5;
    rows.push([amount, count, noise, missing]);
    labels.push(random() < (risky ? 0.9 : 0.03) ? 1 : 0);
  }
  return { rows, labels };
}

describe('trainers and ONNX', () => {
  for (const kind of ['logistic', 'mlp'] as TrainerKind[]) {
    it(`${kind}: onnxruntime-node gives the trainer's scores to 1e-5 on 10,000 rows, and learns`, async () => {
      const { rows, labels } = dataset(11);
      const options = {
        kind,
        features: ['amount', 'count', 'noise', 'maybe'],
        seed: 5,
        epochs: kind === 'mlp' ? 10 : 6,
        learningRate: 0.03,
        batchSize: 256,
        hidden: 12,
      };
      const trained = await train(rows, labels, options);
      const scorer = await OnnxScorer.load(toOnnx(trained.network, 'test'), 4);
      try {
        const fromOnnx = await scorer.score(toBatch(trained.network, rows));
        const fromTrainer = await trained.predict(rows);
        expect(fromOnnx.length).toBe(10_000);
        let worst = 0;
        for (let index = 0; index < fromOnnx.length; index++)
          worst = Math.max(worst, Math.abs((fromOnnx[index] ?? 0) - (fromTrainer[index] ?? 0)));
        expect(worst).toBeLessThan(1e-5);
        expect(auc([...fromOnnx], labels)).toBeGreaterThan(0.72); // half the positives are label noise: about 0.78 is the best possible;
      } finally {
        await scorer.close();
      }
      // Seeded: the same run gives the same weights.
      const again = await train(rows, labels, options);
      expect(again.network.layers.map((layer) => [...layer.weights])).toEqual(trained.network.layers.map((layer) => [...layer.weights]));
    }, 60_000);
  }
});
