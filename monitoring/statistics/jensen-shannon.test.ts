import { describe, expect, it } from 'vitest';
import { closeTo, referenceFixtures } from './fixtures/reference.js';
import { jensenShannon, type JensenShannonResult } from './jensen-shannon.js';
import type { Insufficient } from './result.js';

const fixtures = referenceFixtures();

function distance(result: JensenShannonResult | Insufficient): number {
  if (result.status !== 'ok') throw new Error(`expected a verdict, got ${JSON.stringify(result)}`);
  return result.distance;
}

describe('jensenShannon against scipy.spatial.distance.jensenshannon(base=2)', () => {
  it.each(fixtures.binned.map((testCase) => [testCase.dataset, testCase] as const))('decile bins: %s', (_name, testCase) => {
    expect(closeTo(distance(jensenShannon(testCase.reference_counts, testCase.current_counts)), testCase.jensenshannon, 1e-9, 1e-12)).toBe(
      true,
    );
  });

  it.each(fixtures.categorical.map((testCase) => [testCase.name, testCase] as const))('categories: %s', (_name, testCase) => {
    expect(closeTo(distance(jensenShannon(testCase.reference_counts, testCase.current_counts)), testCase.jensenshannon, 1e-9, 1e-12)).toBe(
      true,
    );
  });
});

describe('jensenShannon', () => {
  it('is 0 for equal distributions, 1 for disjoint ones, and symmetric', () => {
    expect(distance(jensenShannon([2, 4, 6], [1, 2, 3]))).toBe(0);
    expect(distance(jensenShannon([5, 0], [0, 7]))).toBeCloseTo(1, 15);
    expect(distance(jensenShannon([1, 2, 7], [3, 3, 4]))).toBeCloseTo(distance(jensenShannon([3, 3, 4], [1, 2, 7])), 15);
  });

  it('handles a bin empty on one side without an epsilon', () => {
    // p = (1, 0), q = (1/2, 1/2): m = (3/4, 1/4); KL(p‖m) = log2(4/3), KL(q‖m) = (log2(2/3) + log2(2)) / 2
    const expected = Math.sqrt((Math.log2(4 / 3) + (Math.log2(2 / 3) + 1) / 2) / 2);
    expect(distance(jensenShannon([4, 0], [3, 3]))).toBeCloseTo(expected, 15);
  });

  it('gives no verdict for an empty window or below the minimum', () => {
    expect(jensenShannon([1, 1], [0, 0])).toMatchObject({ status: 'insufficient', reason: 'empty' });
    expect(jensenShannon([1, 1], [1, 1], { minCount: 3 })).toMatchObject({ status: 'insufficient', reason: 'below-minimum' });
  });

  it('rejects mismatched vectors', () => {
    expect(() => jensenShannon([1], [1, 2])).toThrow(RangeError);
  });
});
