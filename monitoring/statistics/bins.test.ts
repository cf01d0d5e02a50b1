import { describe, expect, it } from 'vitest';
import {
  addCategory,
  addToHistogram,
  binIndex,
  categoryVector,
  createCategoryCounts,
  createHistogram,
  histogramTotal,
  mergeCategoryCounts,
  mergeHistograms,
  quantileBinEdges,
  referenceCategories,
  sampleQuantiles,
  sortedBinCounts,
  type CategoryCounts,
  type Histogram,
} from './bins.js';
import { dataset, referenceFixtures } from './fixtures/reference.js';
import { KllSketch, kllRankErrorBound } from './kll.js';

const fixtures = referenceFixtures();

function histogramOf(edges: readonly number[], values: readonly (number | null | undefined)[]): Histogram {
  const histogram = createHistogram(edges);
  for (const value of values) addToHistogram(histogram, value);
  return histogram;
}

function tableOf(categories: readonly string[], values: readonly (string | number | boolean | null | undefined)[]): CategoryCounts {
  const table = createCategoryCounts(categories);
  for (const value of values) addCategory(table, value);
  return table;
}

describe('quantileBinEdges and histograms against the numpy fixtures', () => {
  it.each(fixtures.binned.map((testCase) => [testCase.dataset, testCase] as const))('%s', (name, testCase) => {
    const { reference, current } = dataset(name);
    const edges = quantileBinEdges(sampleQuantiles(reference), testCase.bins);
    expect(edges).toEqual(testCase.edges);
    expect(histogramOf(edges ?? [], reference).counts).toEqual(testCase.reference_counts);
    expect(histogramOf(edges ?? [], current).counts).toEqual(testCase.current_counts);
  });

  it('collapses tied cut points: Poisson counts give 6 bins, a one-valued reference 2', () => {
    expect(quantileBinEdges(sampleQuantiles(dataset('ties_poisson').reference))).toEqual([1, 2, 3, 4, 5]);
    const oneValued = quantileBinEdges(sampleQuantiles(dataset('one_valued_reference').reference));
    expect(oneValued).toEqual([2.5]);
    expect(histogramOf(oneValued ?? [], [2.5, 2.5, 2.4, 2.6, 100]).counts).toEqual([3, 2]);
  });

  it('takes cut points from a KLL sketch: exact while small, within the rank bound when large', () => {
    const small = dataset('small_5_7').reference;
    const smallSketch = new KllSketch();
    for (const value of small) smallSketch.add(value);
    expect(quantileBinEdges(smallSketch)).toEqual(quantileBinEdges(sampleQuantiles(small)));

    const { reference } = dataset('normal_shift');
    const sketch = new KllSketch({ seed: 8 });
    for (const value of reference) sketch.add(value);
    const edges = quantileBinEdges(sketch) ?? [];
    expect(edges).toHaveLength(9);
    const sorted = [...reference].sort((left, right) => left - right);
    edges.forEach((edge, index) => {
      const rank = sorted.filter((value) => value <= edge).length / sorted.length;
      expect(Math.abs(rank - (index + 1) / 10)).toBeLessThan(kllRankErrorBound(200));
    });
  });

  it('has no bins for an empty or all-missing reference', () => {
    expect(quantileBinEdges(sampleQuantiles([]))).toBeUndefined();
    expect(quantileBinEdges(sampleQuantiles([Number.NaN, null, Infinity]))).toBeUndefined();
    expect(quantileBinEdges(new KllSketch())).toBeUndefined();
  });

  it('rejects a bin count that is not a positive integer', () => {
    expect(() => quantileBinEdges(sampleQuantiles([1, 2]), 0)).toThrow(RangeError);
    expect(() => quantileBinEdges(sampleQuantiles([1, 2]), 2.5)).toThrow(RangeError);
  });
});

describe('histogram', () => {
  it('uses right-closed, open-ended bins', () => {
    const edges = [0, 10];
    expect([-1e300, 0, 0.0001, 10, 10.5, 1e300].map((value) => binIndex(edges, value))).toEqual([0, 0, 1, 1, 2, 2]);
    expect(binIndex([], 42)).toBe(0);
  });

  it('counts NaN, ±Infinity and missing values as invalid, never in a bin', () => {
    const histogram = histogramOf([0, 10], [5, Number.NaN, Infinity, -Infinity, null, undefined, -3]);
    expect(histogram).toEqual({ edges: [0, 10], counts: [1, 1, 0], invalid: 5 });
    expect(histogramTotal(histogram)).toBe(2);
  });

  it('merges to the histogram of the concatenated windows', () => {
    const edges = [1, 2, 3];
    const left = histogramOf(edges, [0, 1, 2, 2.5, Number.NaN]);
    const right = histogramOf(edges, [3, 4, 1.5, null]);
    expect(mergeHistograms(left, right)).toEqual(histogramOf(edges, [0, 1, 2, 2.5, Number.NaN, 3, 4, 1.5, null]));
    expect(left.counts).toEqual([2, 1, 1, 0]);
  });

  it('counts sorted values in their bins as addToHistogram does, values on the edges and ties included', () => {
    let state = 11;
    const random = (): number => (state = (state * 1_103_515_245 + 12_345) % 2 ** 31) / 2 ** 31;
    const values = Float64Array.from({ length: 5_000 }, () => Math.floor(random() * 40) / 4 - 3).sort();
    for (const edges of [[], [0], [-3, -1.25, 0, 0.5, 6.75], [-10], [20], [-2.5, 1e-9, 2.25]]) {
      const histogram = createHistogram(edges);
      for (const value of values) addToHistogram(histogram, value);
      expect(sortedBinCounts(values, edges)).toEqual(histogram.counts);
    }
    expect(sortedBinCounts(new Float64Array(0), [1, 2])).toEqual([0, 0, 0]);
  });

  it('refuses to merge histograms over different bins', () => {
    expect(() => mergeHistograms(createHistogram([1, 2]), createHistogram([1, 3]))).toThrow(RangeError);
    expect(() => mergeHistograms(createHistogram([1, 2]), createHistogram([1]))).toThrow(RangeError);
  });

  it('survives a JSON round trip and keeps counting', () => {
    const restored = JSON.parse(JSON.stringify(histogramOf([0], [-1, 1]))) as Histogram;
    addToHistogram(restored, 5);
    expect(restored).toEqual({ edges: [0], counts: [1, 2], invalid: 0 });
  });

  it('rejects edges that are not strictly ascending finite numbers', () => {
    expect(() => createHistogram([1, 1])).toThrow(RangeError);
    expect(() => createHistogram([2, 1])).toThrow(RangeError);
    expect(() => createHistogram([0, Infinity])).toThrow(RangeError);
  });
});

describe('category counts', () => {
  it.each(fixtures.categorical.map((testCase) => [testCase.name, testCase] as const))(
    'match the fixture vectors: %s',
    (_name, testCase) => {
      const categories = referenceCategories(testCase.reference, testCase.max_categories);
      expect(categories).toEqual(testCase.categories);
      expect(categoryVector(tableOf(categories, testCase.reference))).toEqual(testCase.reference_counts);
      expect(categoryVector(tableOf(categories, testCase.current))).toEqual(testCase.current_counts);
    },
  );

  it('puts categories unseen in the reference into other, and missing values into invalid', () => {
    const table = tableOf(['a', 'b'], ['a', 'b', 'b', 'zzz', 'new', null, undefined, Number.NaN, 7, true]);
    expect(table).toEqual({ categories: ['a', 'b'], counts: [1, 2], other: 4, invalid: 3 });
    expect(categoryVector(table)).toEqual([1, 2, 4]);
  });

  it('counts numbers and booleans by their string form', () => {
    expect(tableOf(['1', 'true'], [1, true, '1']).counts).toEqual([2, 1]);
  });

  it('orders reference categories by count, then name, and keeps at most maxCategories', () => {
    expect(referenceCategories(['b', 'a', 'c', 'c', 'b', null, 'd'])).toEqual(['b', 'c', 'a', 'd']);
    expect(referenceCategories(['b', 'a', 'c', 'c', 'b', 'd'], 2)).toEqual(['b', 'c']);
    expect(referenceCategories([null, undefined])).toEqual([]);
  });

  it('merges tables over the same categories', () => {
    const left = tableOf(['x', 'y'], ['x', 'q', null]);
    const right = tableOf(['x', 'y'], ['y', 'y', 'x']);
    expect(mergeCategoryCounts(left, right)).toEqual({ categories: ['x', 'y'], counts: [2, 2], other: 1, invalid: 1 });
    expect(() => mergeCategoryCounts(left, createCategoryCounts(['y', 'x']))).toThrow(RangeError);
  });

  it('keeps counting after a JSON round trip', () => {
    const restored = JSON.parse(JSON.stringify(tableOf(['x', 'y'], ['x']))) as CategoryCounts;
    addCategory(restored, 'y');
    addCategory(restored, 'w');
    expect(restored).toEqual({ categories: ['x', 'y'], counts: [1, 1], other: 1, invalid: 0 });
  });

  it('rejects duplicate categories', () => {
    expect(() => createCategoryCounts(['a', 'a'])).toThrow(RangeError);
  });

  it('handles an all-missing reference: no categories, everything else is other', () => {
    const categories = referenceCategories([null, null]);
    expect(categoryVector(tableOf(categories, ['a', 'b', null]))).toEqual([2]);
  });
});
