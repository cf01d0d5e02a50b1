import { describe, expect, it } from 'vitest';
import { closeTo, referenceFixtures } from './fixtures/reference.js';
import { PSI_EPSILON, psi, type PsiResult } from './psi.js';
import type { Insufficient } from './result.js';

const fixtures = referenceFixtures();

function value(result: PsiResult | Insufficient): number {
  if (result.status !== 'ok') throw new Error(`expected a verdict, got ${JSON.stringify(result)}`);
  return result.value;
}

describe('psi against numpy with Evidently’s epsilon', () => {
  it('uses the same epsilon as the fixtures (Evidently: 0.0001)', () => {
    expect(PSI_EPSILON).toBe(fixtures.psi_epsilon);
  });

  it.each(fixtures.binned.map((testCase) => [testCase.dataset, testCase] as const))('decile bins: %s', (_name, testCase) => {
    expect(closeTo(value(psi(testCase.reference_counts, testCase.current_counts)), testCase.psi, 1e-9, 1e-12)).toBe(true);
  });

  it.each(fixtures.categorical.map((testCase) => [testCase.name, testCase] as const))(
    'categories with an other bucket: %s',
    (_name, testCase) => {
      expect(closeTo(value(psi(testCase.reference_counts, testCase.current_counts)), testCase.psi, 1e-9, 1e-12)).toBe(true);
    },
  );
});

describe('psi', () => {
  it('is 0 for identical proportions and grows with the shift', () => {
    expect(value(psi([10, 20, 30], [1, 2, 3]))).toBe(0);
    expect(value(psi([10, 10], [9, 11]))).toBeLessThan(value(psi([10, 10], [5, 15])));
  });

  it('replaces an empty bin’s 0 proportion by epsilon without renormalizing', () => {
    // r = (0.5, 0.5), c = (1, 0 → 0.0001)
    const expected = (0.5 - 1) * Math.log(0.5 / 1) + (0.5 - 0.0001) * Math.log(0.5 / 0.0001);
    expect(value(psi([5, 5], [4, 0]))).toBeCloseTo(expected, 14);
    expect(value(psi([5, 5], [4, 0], { epsilon: 1e-6 }))).toBeGreaterThan(value(psi([5, 5], [4, 0])));
  });

  it('replaces 0 proportions as Evidently does with zeroFill evidently', () => {
    // Evidently 0.7.23's own PSI (evidently.legacy.calculations.stattests.psi._psi) on categorical
    // data: reference a×50,000 b×49,999 c×1, current a×30 b×60 d×10. The reference's smallest
    // proportion is 1e-5, so its empty bin (d) gets 1e-11; the current side's is 0.1, so its empty
    // bin (c) gets 0.0001.
    const reference = [50_000, 49_999, 1, 0];
    const current = [30, 60, 0, 10];
    expect(closeTo(value(psi(reference, current, { zeroFill: 'evidently' })), 2.4231934292903206, 1e-12, 0)).toBe(true);
    expect(value(psi(reference, current))).toBeLessThan(2.4231934292903206 - 0.5);
  });

  it('reports per-bin contributions that sum to the value', () => {
    const result = psi([30, 50, 20], [20, 50, 30]);
    if (result.status !== 'ok') throw new Error('expected a verdict');
    expect(result.contributions).toHaveLength(3);
    expect(result.contributions[1]).toBe(0);
    expect(result.contributions.reduce((total, term) => total + term, 0)).toBeCloseTo(result.value, 15);
  });

  it('gives no verdict for an empty window or below the minimum', () => {
    expect(psi([1, 2, 3], [0, 0, 0])).toEqual({ status: 'insufficient', reason: 'empty', referenceCount: 6, currentCount: 0, minCount: 1 });
    expect(psi([1, 2, 3], [1, 0, 0], { minCount: 5 })).toMatchObject({ status: 'insufficient', reason: 'below-minimum' });
  });

  it('rejects mismatched bins and impossible counts', () => {
    expect(() => psi([1, 2], [1, 2, 3])).toThrow(RangeError);
    expect(() => psi([1, -2], [1, 2])).toThrow(RangeError);
    expect(() => psi([1, Number.NaN], [1, 2])).toThrow(RangeError);
    expect(() => psi([1, 2], [1, 2], { epsilon: 0 })).toThrow(RangeError);
  });
});
