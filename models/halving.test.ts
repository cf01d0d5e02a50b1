import { describe, expect, it } from 'vitest';
import { cull, plannedEpochs, rungs } from './halving.js';

describe('successive halving', () => {
  it('puts rungs at r, rη, rη², … below the most epochs, and at the most epochs', () => {
    expect(rungs({ minEpochs: 2, eta: 3 }, 15)).toEqual([2, 6, 15]);
    expect(rungs({ minEpochs: 1, eta: 3 }, 6)).toEqual([1, 3, 6]);
    expect(rungs({ minEpochs: 1, eta: 2 }, 8)).toEqual([1, 2, 4, 8]);
    expect(rungs({ minEpochs: 5, eta: 3 }, 3)).toEqual([3]);
    expect(() => rungs({ minEpochs: 0, eta: 3 }, 3)).toThrow(/minEpochs/);
    expect(() => rungs({ minEpochs: 1, eta: 1 }, 3)).toThrow(/eta/);
  });

  it('keeps the best ⌊n/η⌋ (at least one) by loss, non-finite last, ties by order', () => {
    const entries = [
      { index: 0, loss: 0.5 },
      { index: 1, loss: Number.NaN },
      { index: 2, loss: 0.3 },
      { index: 3, loss: 0.3 },
      { index: 4, loss: 0.9 },
      { index: 5, loss: 0.1 },
    ];
    expect(cull(entries, 3, false)).toEqual({ kept: [2, 5], stopped: [3, 0, 4, 1] });
    expect(cull(entries.slice(0, 2), 3, false)).toEqual({ kept: [0], stopped: [1] });
    expect(cull(entries, 3, true)).toEqual({ kept: [0, 1, 2, 3, 4, 5], stopped: [] });
  });

  it('never stops a kept trial, and a kept trial takes no place of the others', () => {
    const entries = [
      { index: 0, loss: 5, keep: true },
      { index: 1, loss: 0.2 },
      { index: 2, loss: 0.1 },
      { index: 3, loss: 0.3 },
      { index: 4, loss: 0.4 },
      { index: 5, loss: 0.5 },
      { index: 6, loss: 0.6 },
    ];
    expect(cull(entries, 3, false)).toEqual({ kept: [0, 1, 2], stopped: [3, 4, 5, 6] });
  });

  it('plans the trial-epochs of a schedule', () => {
    // 32 trials of 15 epochs, one kept: rungs 2, 6, 15 → 31 → 10 → 3 contenders
    expect(plannedEpochs(new Array<number>(32).fill(15), [true, ...new Array<boolean>(31).fill(false)], { minEpochs: 2, eta: 3 })).toBe(
      15 + 31 * 2 + 10 * 4 + 3 * 9,
    );
    expect(plannedEpochs([3, 4], [false, false], undefined)).toBe(7);
  });
});
