import { createHash } from 'node:crypto';
import { describe, expect, it } from 'vitest';
import { sampleQuantiles } from './bins.js';
import { normalSample, uniformSample } from './fixtures/generate.js';
import { KllSketch, kllRankErrorBound } from './kll.js';

function sketchOf(values: ArrayLike<number | null | undefined>, options: { k?: number; seed?: number } = {}): KllSketch {
  const sketch = new KllSketch(options);
  for (let index = 0; index < values.length; index++) sketch.add(values[index]);
  return sketch;
}

/**
 * The largest |estimated rank - true rank| over every point where either CDF steps: the true
 * empirical CDF of data, and the sketch's estimate from cdfPoints(). Both are right-continuous
 * step functions, so checking just at and just before each data value covers all x.
 */
function maxRankError(sketch: KllSketch, data: Float64Array): number {
  const sorted = Float64Array.from(data).sort();
  const { values, ranks } = sketch.cdfPoints();
  const estimate = (x: number, inclusive: boolean): number => {
    let low = 0;
    let high = values.length;
    while (low < high) {
      const middle = (low + high) >>> 1;
      const value = values[middle] ?? Infinity;
      if (inclusive ? value <= x : value < x) low = middle + 1;
      else high = middle;
    }
    return low === 0 ? 0 : (ranks[low - 1] ?? 0);
  };
  let worst = 0;
  for (let index = 0; index < sorted.length; index++) {
    const x = sorted[index] ?? 0;
    if (index > 0 && sorted[index - 1] === x) continue;
    let last = index;
    while (last + 1 < sorted.length && sorted[last + 1] === x) last++;
    worst = Math.max(worst, Math.abs(estimate(x, true) - (last + 1) / sorted.length), Math.abs(estimate(x, false) - index / sorted.length));
  }
  return worst;
}

describe('kllRankErrorBound', () => {
  it('states 1.65% for k = 200 and shrinks with k', () => {
    expect(kllRankErrorBound(200)).toBeCloseTo(0.0165, 4);
    expect(kllRankErrorBound(400)).toBeLessThan(kllRankErrorBound(200));
  });
});

describe('KllSketch rank error, measured', () => {
  const data = uniformSample(2024, 100_000);

  it.each([0, 1, 2, 3, 4])('keeps a 100,000-value random stream within the bound (seed %i, k = 200)', (seed) => {
    const sketch = sketchOf(data, { seed });
    expect(sketch.isExact).toBe(false);
    expect(maxRankError(sketch, data)).toBeLessThan(kllRankErrorBound(200));
  });

  it('keeps a sorted stream within the bound', () => {
    const sorted = Float64Array.from(data).sort();
    expect(maxRankError(sketchOf(sorted, { seed: 7 }), data)).toBeLessThan(kllRankErrorBound(200));
    expect(maxRankError(sketchOf(sorted.slice().reverse(), { seed: 8 }), data)).toBeLessThan(kllRankErrorBound(200));
  });

  it('keeps a merge of ten 10,000-value sketches within the bound', () => {
    const merged = new KllSketch({ seed: 9 });
    for (let part = 0; part < 10; part++) merged.merge(sketchOf(data.subarray(part * 10_000, (part + 1) * 10_000), { seed: 100 + part }));
    expect(merged.count).toBe(100_000);
    expect(maxRankError(merged, data)).toBeLessThan(kllRankErrorBound(200));
  });

  it.each([64, 400])('keeps the bound for k = %i too', (k) => {
    expect(maxRankError(sketchOf(data, { k, seed: 3 }), data)).toBeLessThan(kllRankErrorBound(k));
  });

  it('keeps heavily tied data within the bound', () => {
    const tied = Float64Array.from(data, (value) => Math.floor(value * 20));
    expect(maxRankError(sketchOf(tied, { seed: 5 }), tied)).toBeLessThan(kllRankErrorBound(200));
  });

  it('answers quantiles whose true rank is within the bound', () => {
    const sketch = sketchOf(data, { seed: 1 });
    const exact = sampleQuantiles(data);
    const sorted = Float64Array.from(data).sort();
    for (const q of [0.01, 0.1, 0.25, 0.5, 0.75, 0.9, 0.99]) {
      const value = sketch.quantile(q) ?? Number.NaN;
      let below = 0;
      while (below < sorted.length && (sorted[below] ?? 0) <= value) below++;
      expect(Math.abs(below / sorted.length - q), `q = ${q}`).toBeLessThan(kllRankErrorBound(200));
      expect(Math.abs(value - (exact.quantile(q) ?? 0))).toBeLessThan(0.05);
    }
  });
});

describe('KllSketch memory', () => {
  it('stays bounded: O(k + log n) items however many values arrive', () => {
    const sketch = new KllSketch({ seed: 1 });
    const values = uniformSample(77, 1_000_000);
    let largest = 0;
    values.forEach((value, index) => {
      sketch.add(value);
      if (index % 1000 === 0) largest = Math.max(largest, sketch.retainedCount);
    });
    // 3k for the geometric capacities plus 8 per level; about 13 levels at a million values.
    expect(largest).toBeLessThanOrEqual(3 * 200 + 8 * 14);
    expect(sketch.toBuffer().length).toBeLessThan(10_000);
    expect(sketch.count).toBe(1_000_000);
  });
});

describe('KllSketch exact answers while small', () => {
  const values = [5, 1, 4, 4, 2, 9, -3, 4, 0, 7];

  it('matches the sample quantiles (inverse empirical CDF) and ranks exactly', () => {
    const sketch = sketchOf(values);
    const exact = sampleQuantiles(values);
    expect(sketch.isExact).toBe(true);
    expect(sketch.rankErrorBound).toBe(0);
    for (const q of [0, 0.05, 0.1, 0.15, 0.3, 0.5, 0.55, 0.7, 0.9, 0.95, 1]) expect(sketch.quantile(q), `q = ${q}`).toBe(exact.quantile(q));
    expect(sketch.rank(4)).toBe(0.7);
    expect(sketch.rank(3.99)).toBe(0.4);
    expect(sketch.rank(-10)).toBe(0);
    expect(sketch.rank(100)).toBe(1);
    expect(sketch.cdfPoints()).toEqual({
      values: Float64Array.from([-3, 0, 1, 2, 4, 5, 7, 9]),
      ranks: Float64Array.from([0.1, 0.2, 0.3, 0.4, 0.7, 0.8, 0.9, 1]),
    });
    expect([sketch.min, sketch.max, sketch.count]).toEqual([-3, 9, 10]);
  });

  it('answers the exact extremes for q = 0 and 1 even after compaction', () => {
    const data = normalSample(3, 20_000);
    const sketch = sketchOf(data);
    expect(sketch.quantile(0)).toBe(Math.min(...data));
    expect(sketch.quantile(1)).toBe(Math.max(...data));
  });

  it('rejects q outside [0, 1] and rank(NaN)', () => {
    const sketch = sketchOf(values);
    expect(() => sketch.quantile(1.5)).toThrow(RangeError);
    expect(() => sketch.quantile(Number.NaN)).toThrow(RangeError);
    expect(() => sketch.rank(Number.NaN)).toThrow(RangeError);
  });
});

describe('KllSketch invalid and edge inputs', () => {
  it('counts NaN, ±Infinity, null and undefined as invalid and never inserts them', () => {
    const sketch = new KllSketch();
    expect([Number.NaN, Infinity, -Infinity, null, undefined].map((value) => sketch.add(value))).toEqual([
      false,
      false,
      false,
      false,
      false,
    ]);
    expect(sketch.add(2)).toBe(true);
    expect([sketch.count, sketch.invalidCount, sketch.min, sketch.max]).toEqual([1, 5, 2, 2]);
    expect(sketch.cdfPoints().values).toEqual(Float64Array.from([2]));
  });

  it('answers undefined, never NaN, while empty', () => {
    const sketch = new KllSketch();
    sketch.add(Number.NaN);
    expect([sketch.quantile(0.5), sketch.rank(1), sketch.min, sketch.max]).toEqual([undefined, undefined, undefined, undefined]);
    expect(sketch.cdfPoints()).toEqual({ values: new Float64Array(0), ranks: new Float64Array(0) });
    expect(sketch.toState()).toMatchObject({ count: 0, invalid: 1, min: null, max: null });
  });

  it('handles a one-valued stream: every quantile is that value', () => {
    const sketch = sketchOf(new Float64Array(5_000).fill(3.25), { seed: 4 });
    expect(sketch.isExact).toBe(false);
    expect([sketch.quantile(0.001), sketch.quantile(0.5), sketch.quantile(0.999)]).toEqual([3.25, 3.25, 3.25]);
    expect([sketch.rank(3.25), sketch.rank(3.24)]).toEqual([1, 0]);
  });

  it('stores -0 as 0', () => {
    const sketch = sketchOf([-0]);
    expect(Object.is(sketch.min, 0)).toBe(true);
  });

  it('rejects k outside [8, 65535]', () => {
    expect(() => new KllSketch({ k: 4 })).toThrow(RangeError);
    expect(() => new KllSketch({ k: 200.5 })).toThrow(RangeError);
  });
});

describe('KllSketch merge', () => {
  it('adds counts, invalid counts and extremes; leaves the other sketch alone', () => {
    const left = sketchOf([1, 2, 3, Number.NaN]);
    const right = sketchOf([10, -5, null]);
    const before = right.toBuffer();
    left.merge(right);
    expect([left.count, left.invalidCount, left.min, left.max]).toEqual([5, 2, -5, 10]);
    expect(right.toBuffer().equals(before)).toBe(true);
  });

  it('merges a sketch into itself as two copies', () => {
    const sketch = sketchOf([1, 2]);
    sketch.merge(sketch);
    expect([sketch.count, sketch.rank(1)]).toEqual([4, 0.5]);
  });

  it('refuses sketches with different k', () => {
    expect(() => new KllSketch({ k: 100 }).merge(new KllSketch({ k: 200 }))).toThrow(RangeError);
  });
});

describe('KllSketch determinism and serialization', () => {
  const data = normalSample(99, 30_000, 10, 3);

  it('gives bit-identical state for the same seed and input, and different state for another seed', () => {
    const first = sketchOf(data, { seed: 42 }).toBuffer();
    expect(sketchOf(data, { seed: 42 }).toBuffer().equals(first)).toBe(true);
    expect(sketchOf(data, { seed: 43 }).toBuffer().equals(first)).toBe(false);
  });

  it('continues bit-identically after a store and restore mid-stream (buffer and JSON)', () => {
    const straight = sketchOf(data, { seed: 5 });
    const viaBuffer = sketchOf(data.subarray(0, 12_345), { seed: 5 });
    const restoredFromBuffer = KllSketch.fromBuffer(viaBuffer.toBuffer());
    const restoredFromJson = KllSketch.fromState(JSON.parse(JSON.stringify(viaBuffer.toState())));
    for (const value of data.subarray(12_345)) {
      restoredFromBuffer.add(value);
      restoredFromJson.add(value);
    }
    expect(restoredFromBuffer.toBuffer().equals(straight.toBuffer())).toBe(true);
    expect(restoredFromJson.toBuffer().equals(straight.toBuffer())).toBe(true);
  });

  it('round-trips an empty sketch', () => {
    const empty = new KllSketch({ k: 64, seed: 3 });
    expect(KllSketch.fromBuffer(empty.toBuffer()).toState()).toEqual(empty.toState());
    expect(KllSketch.fromState(JSON.parse(JSON.stringify(empty.toState())))).toEqual(empty);
  });

  it('rejects malformed or inconsistent state', () => {
    const state = sketchOf([1, 2, 3]).toState();
    expect(() => KllSketch.fromState({ ...state, count: 4 })).toThrow(/weights sum/);
    expect(() => KllSketch.fromState({ ...state, levels: [[1, Number.NaN, 3]] })).toThrow(RangeError);
    expect(() => KllSketch.fromState({ ...state, min: null })).toThrow(RangeError);
    expect(() => KllSketch.fromState({ ...state, version: 2 })).toThrow(RangeError);
    expect(() => KllSketch.fromState('nope')).toThrow(RangeError);
    const bytes = sketchOf([1, 2, 3]).toBuffer();
    expect(() => KllSketch.fromBuffer(bytes.subarray(0, bytes.length - 1))).toThrow(RangeError);
    expect(() => KllSketch.fromBuffer(Buffer.from('not a sketch at all, no, not at all, really not'))).toThrow(RangeError);
  });
});

describe('KllSketch stored sketches stay compatible', () => {
  // Digests of sketches as the implementation before typed-array levels built them: a sketch stored
  // in a changelog by one version continues bit-identically under the next, so replays agree.
  const digest = (sketch: KllSketch): string => createHash('sha256').update(sketch.toBuffer()).digest('hex');
  it.each([
    [200, '842f2283343bfbc99c5cd24f08f8138bf552d1f9c63cdef20f3e1c01c49edc70'],
    [400, 'f1fc08ff14e898ea507d76ca5ef9e75d6dcd9750edba8f9ad071994b2d93eb4e'],
    [64, '5960d05bb6b5af5e0ee1a22d3fe07e8679e2e7f9f585d0c2f93461c6835e11e4'],
  ])('gives the same bytes as before for k = %i', (k, expected) => {
    expect(digest(sketchOf(uniformSample(2024, 100_000), { k, seed: 11 }))).toBe(expected);
  });
});

describe('KllSketch.fromSorted', () => {
  const data = uniformSample(2024, 100_000);
  const sorted = Float64Array.from(data).sort();

  it.each([400, 200, 64])('stays within 1/(k+1) of every true rank (k = %i), well inside the streamed bound', (k) => {
    const sketch = KllSketch.fromSorted(sorted, { k });
    expect(sketch.count).toBe(100_000);
    expect(sketch.min).toBe(sorted[0]);
    expect(sketch.max).toBe(sorted[sorted.length - 1]);
    expect(sketch.isExact).toBe(false);
    expect(sketch.retainedCount).toBeLessThanOrEqual(k + 20);
    expect(maxRankError(sketch, data)).toBeLessThanOrEqual(1 / (k + 1));
    expect(1 / (k + 1)).toBeLessThan(kllRankErrorBound(k));
  });

  it('keeps every value, exactly, up to k values', () => {
    const small = Float64Array.from([-2, -0.5, 0, 0, 1, 3.5, 9]);
    const sketch = KllSketch.fromSorted(small, { k: 8 });
    expect(sketch.isExact).toBe(true);
    expect(maxRankError(sketch, small)).toBe(0);
    expect(sketch.quantile(0.5)).toBe(0);
  });

  it('keeps heavily tied data within the bound', () => {
    const tied = Float64Array.from(sorted, (value) => Math.floor(value * 20));
    expect(maxRankError(KllSketch.fromSorted(tied, { k: 200 }), tied)).toBeLessThanOrEqual(1 / 201);
  });

  it('is an ordinary sketch afterwards: it takes values and merges within the streamed bound', () => {
    const sketch = KllSketch.fromSorted(sorted.subarray(0, 50_000).slice().sort(), { k: 200 });
    const half = Float64Array.from(data.subarray(0, 50_000)).sort();
    const rebuilt = KllSketch.fromSorted(half, { k: 200, seed: 4 });
    for (const value of data.subarray(50_000)) rebuilt.add(value);
    expect(rebuilt.count).toBe(100_000);
    expect(maxRankError(rebuilt, data)).toBeLessThan(kllRankErrorBound(200));
    expect(sketch.merge(sketchOf(data.subarray(50_000), { seed: 2 })).count).toBe(100_000);
    expect(
      KllSketch.fromState(JSON.parse(JSON.stringify(rebuilt.toState())))
        .toBuffer()
        .equals(rebuilt.toBuffer()),
    ).toBe(true);
  });

  it('is deterministic, gives an empty sketch for no values, and refuses unsorted or non-finite input', () => {
    expect(
      KllSketch.fromSorted(sorted, { k: 200 })
        .toBuffer()
        .equals(KllSketch.fromSorted(sorted, { k: 200 }).toBuffer()),
    ).toBe(true);
    expect(KllSketch.fromSorted(new Float64Array(0)).count).toBe(0);
    expect(() => KllSketch.fromSorted(Float64Array.from([2, 1]))).toThrow(RangeError);
    expect(() => KllSketch.fromSorted(Float64Array.from([1, Number.NaN]))).toThrow(RangeError);
    expect(() => KllSketch.fromSorted(Float64Array.from([1, Number.POSITIVE_INFINITY]))).toThrow(RangeError);
  });
});
