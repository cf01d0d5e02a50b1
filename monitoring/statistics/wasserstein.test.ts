import { describe, expect, it } from 'vitest';
import { normalSample } from './fixtures/generate.js';
import { closeTo, dataset, referenceFixtures } from './fixtures/reference.js';
import { KllSketch, kllRankErrorBound } from './kll.js';
import type { Insufficient } from './result.js';
import { wasserstein, wassersteinSketch, type WassersteinResult } from './wasserstein.js';

const fixtures = referenceFixtures();

function ok(result: WassersteinResult | Insufficient): WassersteinResult {
  if (result.status !== 'ok') throw new Error(`expected a verdict, got ${JSON.stringify(result)}`);
  return result;
}

function sketchOf(values: ArrayLike<number>, seed: number): KllSketch {
  const sketch = new KllSketch({ seed });
  for (let index = 0; index < values.length; index++) sketch.add(values[index]);
  return sketch;
}

describe('wasserstein against scipy.stats.wasserstein_distance', () => {
  it.each(fixtures.wasserstein.map((testCase) => [testCase.dataset, testCase] as const))('%s', (name, testCase) => {
    const { reference, current } = dataset(name);
    const result = ok(wasserstein(reference, current));
    expect(closeTo(result.distance, testCase.distance, 1e-9, 1e-12), `${result.distance} vs ${testCase.distance}`).toBe(true);
    expect(result.errorBound).toBe(0);
  });
});

describe('wassersteinSketch', () => {
  it('stays within (ε_ref + ε_cur)·range of the exact distance', () => {
    for (const name of ['normal_shift', 'lognormal_amounts', 'disjoint']) {
      const { reference, current } = dataset(name);
      const exact = fixtures.wasserstein.find((testCase) => testCase.dataset === name)?.distance ?? Number.NaN;
      const result = ok(wassersteinSketch(sketchOf(reference, 1), sketchOf(current, 2)));
      const range = Math.max(...reference, ...current) - Math.min(...reference, ...current);
      expect(result.errorBound).toBeCloseTo(2 * kllRankErrorBound(200) * range, 10);
      expect(Math.abs(result.distance - exact), name).toBeLessThanOrEqual(result.errorBound);
    }
  });

  it('stays within the bound on 50,000-value windows', () => {
    const reference = normalSample(21, 50_000);
    const current = normalSample(22, 50_000, 0.1, 1.2);
    const exact = ok(wasserstein(reference, current)).distance;
    const result = ok(wassersteinSketch(sketchOf(reference, 3), sketchOf(current, 4)));
    expect(Math.abs(result.distance - exact)).toBeLessThanOrEqual(result.errorBound);
  });

  it('is exact while both sketches hold every value', () => {
    const { reference, current } = dataset('small_5_7');
    expect(ok(wassersteinSketch(sketchOf(reference, 1), sketchOf(current, 2)))).toEqual(ok(wasserstein(reference, current)));
  });

  it('refuses empty sketches', () => {
    expect(wassersteinSketch(new KllSketch(), sketchOf([1], 1))).toMatchObject({ status: 'insufficient', reason: 'empty' });
  });
});

describe('wasserstein edge cases', () => {
  it('is the distance between the values for two one-valued samples, 0 when they agree', () => {
    expect(ok(wasserstein([3, 3, 3], [3, 3])).distance).toBe(0);
    expect(ok(wasserstein([1, 1], [4.5, 4.5, 4.5])).distance).toBe(3.5);
  });

  it('leaves out and counts invalid values', () => {
    const result = ok(wasserstein([0, Number.NaN, 1], [null, 2, Infinity, 3, -Infinity]));
    expect(result).toMatchObject({ distance: 2, referenceCount: 2, currentCount: 2, referenceInvalid: 1, currentInvalid: 3 });
  });

  it('gives no verdict for empty, all-missing or too small windows', () => {
    expect(wasserstein([1, 2], [])).toMatchObject({ status: 'insufficient', reason: 'empty' });
    expect(wasserstein([1, 2], [Number.NaN, null])).toMatchObject({ status: 'insufficient', reason: 'empty', currentCount: 0 });
    expect(wasserstein([1, 2], [1, 2], { minCount: 3 })).toMatchObject({ status: 'insufficient', reason: 'below-minimum' });
  });
});
