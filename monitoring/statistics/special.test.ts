import { describe, expect, it } from 'vitest';
import { closeTo, referenceFixtures } from './fixtures/reference.js';
import {
  chiSquareSf,
  kolmogorovSf,
  kolmogorovSmirnovSf,
  ksTwoSamplePValue,
  logGamma,
  regularizedGammaQ,
  roundHalfEven,
  smirnovSf,
} from './special.js';

const special = referenceFixtures().special;

/** Reports the worst cases instead of the first, so a failure shows how far off a branch is. */
function mismatches<T>(cases: readonly T[], check: (item: T) => boolean): T[] {
  return cases.filter((item) => !check(item));
}

describe('logGamma', () => {
  it('matches scipy.special.gammaln to 1e-14 (absolute near the zeros at 1 and 2)', () => {
    expect(mismatches(special.gammaln, ({ x, value }) => closeTo(logGamma(x), value, 1e-14, 2e-15))).toEqual([]);
  });

  it('handles poles, reflection and non-numbers', () => {
    expect(logGamma(0)).toBe(Infinity);
    expect(logGamma(-3)).toBe(Infinity);
    expect(logGamma(Number.NaN)).toBeNaN();
    expect(logGamma(-0.5)).toBeCloseTo(Math.log(2 * Math.sqrt(Math.PI)), 13);
    expect(logGamma(0.5)).toBeCloseTo(Math.log(Math.sqrt(Math.PI)), 14);
  });
});

describe('regularizedGammaQ', () => {
  it('matches scipy.special.gammaincc to 1e-12 relative', () => {
    expect(mismatches(special.gammaincc, ({ a, x, value }) => closeTo(regularizedGammaQ(a, x), value, 1e-12, 1e-300))).toEqual([]);
  });

  it('has the closed form e^-x at a = 1 and the right limits', () => {
    expect(regularizedGammaQ(1, 3)).toBeCloseTo(Math.exp(-3), 15);
    expect(regularizedGammaQ(2.5, 0)).toBe(1);
    expect(regularizedGammaQ(2.5, Infinity)).toBe(0);
    expect(() => regularizedGammaQ(0, 1)).toThrow(RangeError);
    expect(() => regularizedGammaQ(1, -1)).toThrow(RangeError);
  });

  it('gives chi-square tails: chi2.sf(3.841458820694124, 1) = 0.05', () => {
    expect(chiSquareSf(3.841458820694124, 1)).toBeCloseTo(0.05, 14);
    expect(chiSquareSf(0, 4)).toBe(1);
    expect(() => chiSquareSf(1, 0)).toThrow(RangeError);
  });
});

describe('kolmogorovSf (limiting Q_KS series)', () => {
  it('matches scipy.special.kolmogorov to 1e-14 absolute and 1e-12 relative', () => {
    expect(mismatches(special.kolmogorov, ({ x, sf }) => closeTo(kolmogorovSf(x), sf, 1e-12, 1e-14))).toEqual([]);
  });

  it('is continuous across the switch between its two series at 0.82', () => {
    expect(kolmogorovSf(0.82)).toBeCloseTo(kolmogorovSf(0.82 + 1e-12), 11);
    expect(kolmogorovSf(0)).toBe(1);
  });
});

describe('smirnovSf (one-sided, finite n)', () => {
  it('matches scipy.special.smirnov to 1e-10 relative over n = 1..2,000,000', () => {
    expect(mismatches(special.smirnov, ({ n, d, sf }) => closeTo(smirnovSf(n, d), sf, 1e-10, 1e-300))).toEqual([]);
  });
});

describe('kolmogorovSmirnovSf (two-sided, finite n: scipy.stats.kstwo.sf)', () => {
  it('matches scipy to 1e-9 relative on a grid through every method branch', () => {
    expect(mismatches(special.kstwo, ({ n, d, sf }) => closeTo(kolmogorovSmirnovSf(n, d), sf, 1e-9, 1e-300))).toEqual([]);
  });

  it('approaches the limiting distribution for large n', () => {
    const n = 1_000_000;
    expect(kolmogorovSmirnovSf(n, 1.2 / Math.sqrt(n))).toBeCloseTo(kolmogorovSf(1.2), 3);
  });

  it('rejects sizes that are not positive integers', () => {
    expect(() => kolmogorovSmirnovSf(0, 0.1)).toThrow(RangeError);
    expect(() => kolmogorovSmirnovSf(2.5, 0.1)).toThrow(RangeError);
  });
});

describe('ksTwoSamplePValue', () => {
  it('chooses exact up to 10,000 values per sample and asymp above (scipy auto)', () => {
    expect(ksTwoSamplePValue(0.02, 10_000, 9_000).method).toBe('exact');
    expect(ksTwoSamplePValue(0.02, 10_001, 9_000).method).toBe('asymp');
    expect(ksTwoSamplePValue(0.02, 10_001, 9_000, 'exact').method).toBe('exact');
    expect(ksTwoSamplePValue(0.02, 50, 60, 'asymp').method).toBe('asymp');
  });

  it('gives the textbook exact values for tiny samples', () => {
    // n1 = n2 = 2: of the C(4,2) = 6 orderings, 2 separate the samples completely (D = 1).
    expect(ksTwoSamplePValue(1, 2, 2, 'exact').pValue).toBeCloseTo(2 / 6, 15);
    // n1 = 1, n2 = 2: D = 1 when the single value is outside the pair: 2 of 3 orderings.
    expect(ksTwoSamplePValue(1, 1, 2, 'exact').pValue).toBeCloseTo(2 / 3, 15);
    expect(ksTwoSamplePValue(0, 3, 4, 'exact')).toEqual({ pValue: 1, statistic: 0, method: 'exact' });
  });

  it('rounds d to the lattice h / lcm(n1, n2) in exact mode only', () => {
    expect(ksTwoSamplePValue(0.3333333333333337, 3, 6, 'exact').statistic).toBe(1 / 3);
    expect(ksTwoSamplePValue(0.3333333333333337, 3, 6, 'asymp').statistic).toBe(0.3333333333333337);
  });

  it('is symmetric in the two sizes', () => {
    expect(ksTwoSamplePValue(0.2, 40, 70, 'exact').pValue).toBe(ksTwoSamplePValue(0.2, 70, 40, 'exact').pValue);
  });

  it('rejects a statistic outside [0, 1]', () => {
    expect(() => ksTwoSamplePValue(1.5, 3, 4)).toThrow(RangeError);
    expect(() => ksTwoSamplePValue(Number.NaN, 3, 4)).toThrow(RangeError);
  });
});

describe('roundHalfEven', () => {
  it('rounds ties to even like numpy', () => {
    expect([0.5, 1.5, 2.5, 2.4999, 2.5001, 3].map(roundHalfEven)).toEqual([0, 2, 2, 2, 3, 3]);
  });
});
