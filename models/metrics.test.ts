import { describe, expect, it } from 'vitest';
import { auc, evaluate } from './metrics.js';

describe('model metrics', () => {
  it('AUC is the share of (positive, negative) pairs ranked right, ties counting half', () => {
    expect(auc([0.1, 0.4, 0.35, 0.8], [0, 0, 1, 1])).toBeCloseTo(0.75, 12);
    expect(auc([0.5, 0.5], [0, 1])).toBe(0.5);
    expect(auc([0.9, 0.1], [1, 0])).toBe(1);
    expect(auc([0.2, 0.3], [1, 1])).toBeNaN();
  });

  it('log loss, precision, recall and calibration by hand', () => {
    const result = evaluate([0.9, 0.6, 0.2, 0.1], [1, 0, 1, 0], 0.5);
    expect(result.log_loss).toBeCloseTo(-(Math.log(0.9) + Math.log(0.4) + Math.log(0.2) + Math.log(0.9)) / 4, 12);
    expect(result.precision).toBe(0.5);
    expect(result.recall).toBe(0.5);
    expect(result.calibration[9]).toEqual({ bin: 9, count: 1, mean_score: 0.9, observed_rate: 1 });
    expect(result.ece).toBeCloseTo((0.1 + 0.6 + 0.8 + 0.1) / 4, 12);
  });
});
