import { describe, expect, it } from 'vitest';
import { chiSquare, type ChiSquareResult } from './chi-square.js';
import { closeTo, referenceFixtures } from './fixtures/reference.js';
import type { Insufficient } from './result.js';

const fixtures = referenceFixtures();

function ok(result: ChiSquareResult | Insufficient): ChiSquareResult {
  if (result.status !== 'ok') throw new Error(`expected a verdict, got ${JSON.stringify(result)}`);
  return result;
}

describe('chiSquare against scipy.stats.chi2_contingency(correction=False)', () => {
  it.each(fixtures.categorical.map((testCase) => [testCase.name, testCase] as const))('categories: %s', (_name, testCase) => {
    const result = ok(chiSquare(testCase.reference_counts, testCase.current_counts));
    expect(result.dof).toBe(testCase.chi2.dof);
    expect(closeTo(result.statistic, testCase.chi2.statistic, 1e-9, 1e-12)).toBe(true);
    expect(closeTo(result.pValue, testCase.chi2.pvalue, 1e-9, 1e-300), `p ${result.pValue} vs ${testCase.chi2.pvalue}`).toBe(true);
  });

  it.each(fixtures.contingency.map((testCase, index) => [fixtures.binned[index]?.dataset ?? String(index), testCase] as const))(
    'decile bin counts: %s',
    (_name, testCase) => {
      const result = ok(chiSquare(testCase.reference_counts, testCase.current_counts));
      expect(result.dof).toBe(testCase.dof);
      expect(closeTo(result.statistic, testCase.statistic, 1e-9, 1e-12)).toBe(true);
      expect(closeTo(result.pValue, testCase.pvalue, 1e-9, 1e-300), `p ${result.pValue} vs ${testCase.pvalue}`).toBe(true);
    },
  );
});

describe('chiSquare', () => {
  it('counts a category unseen in the reference as evidence of drift', () => {
    const without = ok(chiSquare([50, 50, 0], [50, 50, 0]));
    const withUnseen = ok(chiSquare([50, 50, 0], [45, 45, 10]));
    expect(without).toMatchObject({ statistic: 0, pValue: 1, dof: 1, columns: 2 });
    expect(withUnseen.columns).toBe(3);
    expect(withUnseen.dof).toBe(2);
    expect(withUnseen.pValue).toBeLessThan(0.01);
  });

  it('drops columns empty on both sides, like removing them from scipy’s table', () => {
    expect(chiSquare([10, 0, 20, 5], [12, 0, 15, 9])).toEqual({ ...ok(chiSquare([10, 20, 5], [12, 15, 9])), columns: 3 });
  });

  it('gives dof 0, X² 0 and p 1 for a one-valued feature on both sides', () => {
    expect(ok(chiSquare([50, 0], [40, 0]))).toMatchObject({ statistic: 0, dof: 0, pValue: 1, columns: 1 });
  });

  it('matches a hand computation on a 2 × 2 table', () => {
    // expected: row totals 30/30, column totals 25/35 → 12.5, 17.5 per row
    const statistic = 2 * ((10 - 12.5) ** 2 / 12.5 + (20 - 17.5) ** 2 / 17.5);
    expect(ok(chiSquare([10, 20], [15, 15])).statistic).toBeCloseTo(statistic, 13);
  });

  it('gives no verdict for an empty window, an all-missing one (no counts) or below the minimum', () => {
    expect(chiSquare([5, 5], [0, 0])).toMatchObject({ status: 'insufficient', reason: 'empty', currentCount: 0 });
    expect(chiSquare([0, 0], [0, 0])).toMatchObject({ status: 'insufficient', reason: 'empty', referenceCount: 0 });
    expect(chiSquare([5, 5], [1, 2], { minCount: 4 })).toMatchObject({ status: 'insufficient', reason: 'below-minimum' });
  });

  it('rejects mismatched vectors and negative counts', () => {
    expect(() => chiSquare([1, 2], [1])).toThrow(RangeError);
    expect(() => chiSquare([1, -1], [1, 1])).toThrow(RangeError);
  });
});
