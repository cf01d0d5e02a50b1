import type { KllSketch } from './kll.js';
import { checkSampleSizes, type Insufficient, type SampleSizeOptions } from './result.js';
import { finiteSorted } from './samples.js';

/**
 * Wasserstein-1 (earth mover's) distance between two one-dimensional distributions,
 * W1 = ∫ |F_ref(x) - F_cur(x)| dx, in the units of the values.
 */

export interface WassersteinResult {
  readonly status: 'ok';
  readonly distance: number;
  /** Bound on |distance - W1 of the full data|: 0 from samples; see wassersteinSketch. */
  readonly errorBound: number;
  readonly referenceCount: number;
  readonly currentCount: number;
  readonly referenceInvalid: number;
  readonly currentInvalid: number;
}

/**
 * W1 between two samples' empirical distributions (scipy.stats.wasserstein_distance without
 * weights): the sum over consecutive distinct values x_i < x_{i+1} of both samples of
 * |F_ref(x_i) - F_cur(x_i)|·(x_{i+1} - x_i). Inputs need not be sorted; invalid entries (NaN,
 * ±Infinity, null, undefined) are left out and counted. Floating-point error about 1e-15
 * relative. Insufficient when a side has no valid values or fewer than options.minCount.
 */
export function wasserstein(
  reference: ArrayLike<number | null | undefined>,
  current: ArrayLike<number | null | undefined>,
  options: SampleSizeOptions = {},
): WassersteinResult | Insufficient {
  const left = finiteSorted(reference);
  const right = finiteSorted(current);
  const insufficient = checkSampleSizes(left.values.length, right.values.length, options.minCount);
  if (insufficient) return insufficient;
  const distance = stepCdfArea(
    left.values,
    (count) => count / left.values.length,
    right.values,
    (count) => count / right.values.length,
  );
  return {
    status: 'ok',
    distance,
    errorBound: 0,
    referenceCount: left.values.length,
    currentCount: right.values.length,
    referenceInvalid: left.invalid,
    currentInvalid: right.invalid,
  };
}

/**
 * W1 between two KLL sketches' estimated distributions. Error bound: both the sketch CDFs and the
 * true ones are 0 below lo = min(min_ref, min_cur) and 1 from hi = max(max_ref, max_cur) on (the
 * sketches keep exact extremes), and in between each sketch CDF is within its rank error ε of the
 * truth at every x. So |W1_sketch - W1| ≤ ∫_lo^hi (|F̂_ref - F_ref| + |F̂_cur - F_cur|) dx
 * ≤ (ε_ref + ε_cur)·(hi - lo): the rank errors times the value range (errorBound; 0 while both
 * sketches are exact). Holds with the sketches' confidence (about 99% each).
 */
export function wassersteinSketch(
  reference: KllSketch,
  current: KllSketch,
  options: SampleSizeOptions = {},
): WassersteinResult | Insufficient {
  const insufficient = checkSampleSizes(reference.count, current.count, options.minCount);
  if (insufficient) return insufficient;
  const left = reference.cdfPoints();
  const right = current.cdfPoints();
  const distance = stepCdfArea(
    left.values,
    (count) => (count === 0 ? 0 : (left.ranks[count - 1] ?? 0)),
    right.values,
    (count) => (count === 0 ? 0 : (right.ranks[count - 1] ?? 0)),
  );
  const low = Math.min(reference.min ?? 0, current.min ?? 0);
  const high = Math.max(reference.max ?? 0, current.max ?? 0);
  return {
    status: 'ok',
    distance,
    errorBound: (reference.rankErrorBound + current.rankErrorBound) * (high - low),
    referenceCount: reference.count,
    currentCount: current.count,
    referenceInvalid: reference.invalidCount,
    currentInvalid: current.invalidCount,
  };
}

/**
 * ∫ |F_a - F_b| dx for two right-continuous step CDFs jumping at the ascending points a and b
 * (repeats allowed). cdfA(i) is F_a just after passing the first i points of a.
 */
function stepCdfArea(a: Float64Array, cdfA: (passed: number) => number, b: Float64Array, cdfB: (passed: number) => number): number {
  let i = 0;
  let j = 0;
  let area = 0;
  let previous = Math.min(a[0] ?? Infinity, b[0] ?? Infinity);
  while (i < a.length || j < b.length) {
    const value = Math.min(a[i] ?? Infinity, b[j] ?? Infinity);
    if (i + j > 0) area += Math.abs(cdfA(i) - cdfB(j)) * (value - previous);
    while (i < a.length && (a[i] ?? Infinity) <= value) i++;
    while (j < b.length && (b[j] ?? Infinity) <= value) j++;
    previous = value;
  }
  return area;
}
