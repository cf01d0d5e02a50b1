import type { KllSketch } from './kll.js';
import { checkSampleSizes, type Insufficient, type SampleSizeOptions } from './result.js';
import { finiteSorted } from './samples.js';
import { ksTwoSamplePValue, type KsPValueMethod } from './special.js';

/**
 * Two-sample Kolmogorov–Smirnov test: D = sup_x |F_ref(x) - F_cur(x)| between the two empirical
 * CDFs, with its two-sided p-value (scipy.stats.ks_2samp semantics, see ksTwoSamplePValue), either
 * exactly from samples or approximately from two KLL sketches.
 */

export interface KsOptions extends SampleSizeOptions {
  /** How the p-value is computed; default 'auto' (exact up to 10,000 values per side). */
  readonly method?: KsPValueMethod;
}

export interface KsResult {
  readonly status: 'ok';
  /** D in [0, 1]. In exact mode rounded to the lattice h / lcm(n_ref, n_cur), as scipy returns it. */
  readonly statistic: number;
  readonly pValue: number;
  readonly method: 'exact' | 'asymp';
  /** Bound on |statistic - D of the full data|: 0 from samples, ε_ref + ε_cur from sketches. */
  readonly errorBound: number;
  readonly referenceCount: number;
  readonly currentCount: number;
  /** Values left out as invalid (NaN, ±Infinity, null). */
  readonly referenceInvalid: number;
  readonly currentInvalid: number;
}

/**
 * KS test of two samples, exact: D to the last bit of scipy's, p-value as ksTwoSamplePValue.
 * Inputs need not be sorted; invalid entries (NaN, ±Infinity, null, undefined) are left out and
 * counted. Insufficient when a side has no valid values or fewer than options.minCount. Time
 * O(n log n) for sorting plus the p-value's (exact mode: up to about 2·D·n_ref·n_cur steps).
 */
export function ksTwoSample(
  reference: ArrayLike<number | null | undefined>,
  current: ArrayLike<number | null | undefined>,
  options: KsOptions = {},
): KsResult | Insufficient {
  const left = finiteSorted(reference);
  const right = finiteSorted(current);
  const insufficient = checkSampleSizes(left.values.length, right.values.length, options.minCount);
  if (insufficient) return insufficient;
  const d = sortedSamplesStatistic(left.values, right.values);
  const { pValue, statistic, method } = ksTwoSamplePValue(d, left.values.length, right.values.length, options.method);
  return {
    status: 'ok',
    statistic,
    pValue,
    method,
    errorBound: 0,
    referenceCount: left.values.length,
    currentCount: right.values.length,
    referenceInvalid: left.invalid,
    currentInvalid: right.invalid,
  };
}

/**
 * KS test from two KLL sketches: D between the sketches' estimated CDFs. Each sketch's estimated
 * CDF is within its rank error ε of its data's empirical CDF at every x, so by the triangle
 * inequality |D_sketch - D_exact| ≤ ε_ref + ε_cur (errorBound; 0 for a sketch that has not
 * compacted yet). The bound holds with the sketches' confidence (about 99% each, see
 * kllRankErrorBound). The p-value is ksTwoSamplePValue's for D_sketch and the sketches' counts:
 * with options.method (default 'auto') when both sketches are still exact, otherwise always
 * 'asymp', since an approximate D does not lie on the exact method's lattice. Invalid counts are
 * the sketches' invalidCount.
 */
export function ksTwoSampleSketch(reference: KllSketch, current: KllSketch, options: KsOptions = {}): KsResult | Insufficient {
  const insufficient = checkSampleSizes(reference.count, current.count, options.minCount);
  if (insufficient) return insufficient;
  const left = reference.cdfPoints();
  const right = current.cdfPoints();
  const d = stepFunctionDistance(left.values, left.ranks, right.values, right.ranks);
  const exact = reference.isExact && current.isExact;
  const { pValue, statistic, method } = ksTwoSamplePValue(d, reference.count, current.count, exact ? options.method : 'asymp');
  return {
    status: 'ok',
    statistic,
    pValue,
    method,
    errorBound: reference.rankErrorBound + current.rankErrorBound,
    referenceCount: reference.count,
    currentCount: current.count,
    referenceInvalid: reference.invalidCount,
    currentInvalid: current.invalidCount,
  };
}

/**
 * sup |F_a - F_b| between the empirical CDFs of two ascending, finite, non-empty samples,
 * evaluated (like scipy) as i/n_a - j/n_b at every distinct value.
 */
function sortedSamplesStatistic(a: Float64Array, b: Float64Array): number {
  let i = 0;
  let j = 0;
  let largest = 0;
  while (i < a.length || j < b.length) {
    const value = Math.min(a[i] ?? Infinity, b[j] ?? Infinity);
    while (i < a.length && (a[i] ?? Infinity) <= value) i++;
    while (j < b.length && (b[j] ?? Infinity) <= value) j++;
    largest = Math.max(largest, Math.abs(i / a.length - j / b.length));
  }
  return largest;
}

/** sup |F_a - F_b| between two right-continuous step CDFs given by their jump points and levels. */
function stepFunctionDistance(aValues: Float64Array, aRanks: Float64Array, bValues: Float64Array, bRanks: Float64Array): number {
  let i = 0;
  let j = 0;
  let largest = 0;
  while (i < aValues.length || j < bValues.length) {
    const value = Math.min(aValues[i] ?? Infinity, bValues[j] ?? Infinity);
    if ((aValues[i] ?? Infinity) === value) i++;
    if ((bValues[j] ?? Infinity) === value) j++;
    const fa = i === 0 ? 0 : (aRanks[i - 1] ?? 0);
    const fb = j === 0 ? 0 : (bRanks[j - 1] ?? 0);
    largest = Math.max(largest, Math.abs(fa - fb));
  }
  return largest;
}
