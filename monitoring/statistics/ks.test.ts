import { describe, expect, it } from 'vitest';
import { normalSample } from './fixtures/generate.js';
import { closeTo, dataset, referenceFixtures } from './fixtures/reference.js';
import { KllSketch, kllRankErrorBound } from './kll.js';
import { ksTwoSample, ksTwoSampleSketch, type KsResult } from './ks.js';
import type { Insufficient } from './result.js';

const fixtures = referenceFixtures();

function ok(result: KsResult | Insufficient): KsResult {
  if (result.status !== 'ok') throw new Error(`expected a verdict, got ${JSON.stringify(result)}`);
  return result;
}

function sketchOf(values: ArrayLike<number>, seed: number, k = 200): KllSketch {
  const sketch = new KllSketch({ k, seed });
  for (let index = 0; index < values.length; index++) sketch.add(values[index]);
  return sketch;
}

describe('ksTwoSample against scipy.stats.ks_2samp', () => {
  it.each(fixtures.ks.map((testCase) => [testCase.dataset, testCase] as const))('%s', (name, testCase) => {
    const { reference, current } = dataset(name);
    const exact = ok(ksTwoSample(reference, current, { method: 'exact' }));
    expect(exact.method).toBe('exact');
    expect(Math.abs(exact.statistic - testCase.exact.statistic)).toBeLessThanOrEqual(1e-12);
    expect(closeTo(exact.pValue, testCase.exact.pvalue, 1e-6), `exact p ${exact.pValue} vs ${testCase.exact.pvalue}`).toBe(true);

    const asymp = ok(ksTwoSample(reference, current, { method: 'asymp' }));
    expect(asymp.method).toBe('asymp');
    expect(Math.abs(asymp.statistic - testCase.asymp.statistic)).toBeLessThanOrEqual(1e-12);
    expect(closeTo(asymp.pValue, testCase.asymp.pvalue, 1e-6), `asymp p ${asymp.pValue} vs ${testCase.asymp.pvalue}`).toBe(true);

    // Every fixture has at most 10,000 values a side, so scipy's auto is exact.
    const auto = ok(ksTwoSample(reference, current));
    expect(auto.method).toBe('exact');
    expect(closeTo(auto.pValue, testCase.auto.pvalue, 1e-6)).toBe(true);
    expect(auto).toMatchObject({
      referenceCount: reference.length,
      currentCount: current.length,
      referenceInvalid: 0,
      currentInvalid: 0,
      errorBound: 0,
    });
  });

  it('does not depend on the input order', () => {
    const { reference, current } = dataset('lognormal_amounts');
    const shuffled = [...reference].reverse();
    expect(ksTwoSample(shuffled, current)).toEqual(ksTwoSample(reference, current));
  });
});

describe('ksTwoSampleSketch', () => {
  it('stays within ε_ref + ε_cur of scipy D on the 2,000 / 3,000 normal samples', () => {
    for (const name of ['normal_shift', 'normal_same', 'lognormal_amounts', 'disjoint']) {
      const { reference, current } = dataset(name);
      const expected = fixtures.ks.find((testCase) => testCase.dataset === name)?.exact.statistic ?? Number.NaN;
      const result = ok(ksTwoSampleSketch(sketchOf(reference, 1), sketchOf(current, 2)));
      expect(result.errorBound).toBeCloseTo(2 * kllRankErrorBound(200), 15);
      expect(Math.abs(result.statistic - expected), name).toBeLessThanOrEqual(result.errorBound);
      expect(result.method).toBe('asymp');
    }
  });

  it('stays within the bound on 50,000-value windows, over several seeds', () => {
    const reference = normalSample(11, 50_000);
    const current = normalSample(12, 50_000, 0.05);
    const exact = ok(ksTwoSample(reference, current));
    for (let seed = 0; seed < 5; seed++) {
      const result = ok(ksTwoSampleSketch(sketchOf(reference, seed), sketchOf(current, seed + 100)));
      expect(Math.abs(result.statistic - exact.statistic)).toBeLessThanOrEqual(result.errorBound);
      expect(result.referenceCount).toBe(50_000);
    }
  });

  it('is exact, bound 0, while both sketches still hold every value', () => {
    const { reference, current } = dataset('small_5_7');
    const fromSketches = ok(ksTwoSampleSketch(sketchOf(reference, 1), sketchOf(current, 2)));
    const fromSamples = ok(ksTwoSample(reference, current));
    expect(fromSketches).toEqual(fromSamples);
    const scipy = fixtures.ks.find((testCase) => testCase.dataset === 'small_5_7')?.exact;
    expect(fromSketches.pValue).toBeCloseTo(scipy?.pvalue ?? Number.NaN, 12);
  });

  it('reports the sketches’ invalid counts and refuses empty sketches', () => {
    const reference = sketchOf([1, 2, 3], 1);
    const current = new KllSketch();
    current.add(Number.NaN);
    current.add(null);
    expect(ksTwoSampleSketch(reference, current)).toEqual({
      status: 'insufficient',
      reason: 'empty',
      referenceCount: 3,
      currentCount: 0,
      minCount: 1,
    });
    current.add(2);
    expect(ok(ksTwoSampleSketch(reference, current)).currentInvalid).toBe(2);
  });
});

describe('ksTwoSample edge cases', () => {
  it('gives no verdict for an empty window, never NaN', () => {
    expect(ksTwoSample([1, 2, 3], [])).toEqual({
      status: 'insufficient',
      reason: 'empty',
      referenceCount: 3,
      currentCount: 0,
      minCount: 1,
    });
    expect(ksTwoSample([], [1])).toMatchObject({ status: 'insufficient', reason: 'empty' });
  });

  it('treats an all-missing window as empty and counts nothing as valid', () => {
    expect(ksTwoSample([1, 2, 3], [Number.NaN, null, undefined, Infinity, -Infinity])).toMatchObject({
      status: 'insufficient',
      reason: 'empty',
      currentCount: 0,
    });
  });

  it('refuses samples below the configured minimum', () => {
    expect(ksTwoSample([1, 2, 3, 4], [1, 2, 3], { minCount: 4 })).toEqual({
      status: 'insufficient',
      reason: 'below-minimum',
      referenceCount: 4,
      currentCount: 3,
      minCount: 4,
    });
    expect(ksTwoSample([1, 2, 3, 4], [1, 2, 3, 4], { minCount: 4 }).status).toBe('ok');
  });

  it('leaves out and counts NaN and ±Infinity instead of ranking them', () => {
    const { reference, current } = dataset('small_5_7');
    const dirty = ok(ksTwoSample([Number.NaN, ...reference, Infinity], [...current, null, -Infinity, undefined]));
    const clean = ok(ksTwoSample(reference, current));
    expect(dirty).toEqual({ ...clean, referenceInvalid: 2, currentInvalid: 3 });
  });

  it('handles one-valued samples: equal values give D = 0 and p = 1, distinct ones D = 1', () => {
    expect(ok(ksTwoSample([4, 4, 4], [4, 4]))).toMatchObject({ statistic: 0, pValue: 1 });
    const apart = ok(ksTwoSample([1, 1, 1, 1], [2, 2, 2, 2]));
    expect(apart.statistic).toBe(1);
    expect(apart.pValue).toBeCloseTo(2 / 70, 15); // 2 of the C(8,4) = 70 orderings separate completely
  });
});
