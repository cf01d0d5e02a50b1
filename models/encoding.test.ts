import { describe, expect, it } from 'vitest';
import { uniformRandom } from '../common/random.js';
import { encodedInputs, encodeRows, learnEncodings, rowFor } from './encoding.js';
import { auc } from './metrics.js';
import { OnnxScorer, toBatch, toOnnx } from './network.js';
import { train } from './trainer.js';

describe('one-hot encoding of categorical inputs', () => {
  it('learns the categories by frequency, names a column per category, and leaves unseen and missing values all zeros', () => {
    const encodings = learnEncodings(
      ['channel', 'country'],
      [
        ['ONLINE', 'NL'],
        ['ATM', 'NL'],
        ['ONLINE', null],
        ['ONLINE', 'DE'],
      ],
    );
    expect(encodings).toEqual([
      { field: 'channel', categories: ['ONLINE', 'ATM'] },
      { field: 'country', categories: ['NL', 'DE'] },
    ]);
    expect(encodedInputs(['amount'], encodings)).toEqual(['amount', 'channel=ONLINE', 'channel=ATM', 'country=NL', 'country=DE']);
    expect(
      encodeRows(
        [[1], [2]],
        [
          ['ATM', 'FR'],
          [null, 'DE'],
        ],
        encodings,
      ),
    ).toEqual([
      [1, 0, 1, 0, 0],
      [2, 0, 0, 0, 1],
    ]);
    // What inference builds from named values is the same row.
    const inputs = encodedInputs(['amount'], encodings);
    expect(rowFor(inputs, encodings, { amount: 1 }, { channel: 'ATM', country: 'FR' })).toEqual([1, 0, 1, 0, 0]);
    expect(rowFor(inputs, encodings, { amount: null }, { channel: null, country: 'DE' })).toEqual([null, 0, 0, 0, 1]);
    // A model stored without a vocabulary scores its numeric inputs by name, as before.
    expect(rowFor(['b', 'a'], undefined, { a: 1, b: 2 }, {})).toEqual([2, 1]);
  });

  it('trains with one-hot columns and keeps onnxruntime-node within 1e-5 of the trainer', async () => {
    const random = uniformRandom(3);
    const channels = ['ONLINE', 'IN_STORE', 'ATM'];
    const numeric: (number | null)[][] = [];
    const categorical: (string | null)[][] = [];
    const labels: number[] = [];
    for (let index = 0; index < 4_000; index++) {
      const channel = channels[Math.floor(random() * 3)] ?? null;
      const amount = Math.exp(3 + random() * 2);
      numeric.push([amount]);
      categorical.push([channel]);
      labels.push(random() < (channel === 'ONLINE' && amount > 60 ? 0.8 : 0.05) ? 1 : 0);
    }
    const encodings = learnEncodings(['channel'], categorical);
    const rows = encodeRows(numeric, categorical, encodings);
    const features = encodedInputs(['amount'], encodings);
    const trained = await train(rows, labels, { kind: 'mlp', features, seed: 2, epochs: 8, learningRate: 0.03, batchSize: 128, hidden: 8 });
    const scorer = await OnnxScorer.load(toOnnx(trained.network, 'onehot'), features.length);
    try {
      const fromOnnx = await scorer.score(toBatch(trained.network, rows));
      const fromTrainer = await trained.predict(rows);
      let worst = 0;
      for (let index = 0; index < fromOnnx.length; index++)
        worst = Math.max(worst, Math.abs((fromOnnx[index] ?? 0) - (fromTrainer[index] ?? 0)));
      expect(worst).toBeLessThan(1e-5);
      expect(auc([...fromOnnx], labels)).toBeGreaterThan(0.8);
    } finally {
      await scorer.close();
    }
  }, 60_000);
});
