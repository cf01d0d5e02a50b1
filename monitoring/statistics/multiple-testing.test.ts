import { describe, expect, it } from 'vitest';
import { referenceFixtures } from './fixtures/reference.js';
import { benjaminiHochberg, bonferroni } from './multiple-testing.js';

const fixtures = referenceFixtures();

describe('benjaminiHochberg against scipy.stats.false_discovery_control(method="bh")', () => {
  it.each(fixtures.fdr.map((testCase) => [testCase.pvalues.length, testCase] as const))('%i p-values', (_size, testCase) => {
    const adjusted = benjaminiHochberg(testCase.pvalues);
    expect(adjusted).toHaveLength(testCase.bh.length);
    adjusted.forEach((value, index) => {
      expect(Math.abs((value ?? Number.NaN) - (testCase.bh[index] ?? Number.NaN)), `index ${index}`).toBeLessThanOrEqual(1e-12);
    });
  });
});

describe('benjaminiHochberg', () => {
  it('skips features without a p-value: not counted in m, left null', () => {
    expect(benjaminiHochberg([0.01, null, 0.04, Number.NaN, 0.03])).toEqual([0.03, null, 0.04, null, 0.04]);
  });

  it('returns nothing for nothing', () => {
    expect(benjaminiHochberg([])).toEqual([]);
    expect(benjaminiHochberg([null])).toEqual([null]);
  });
});

describe('bonferroni', () => {
  it('multiplies by the number of valid p-values and caps at 1', () => {
    expect(bonferroni([0.01, 0.2, null, 0.5])).toEqual([0.03, 0.6000000000000001, null, 1]);
    expect(bonferroni([1.5, 0.1])).toEqual([null, 0.1]);
  });
});
