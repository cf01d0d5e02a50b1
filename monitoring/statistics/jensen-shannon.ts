import { checkSameLength, checkSampleSizes, countsTotal, type Insufficient, type SampleSizeOptions } from './result.js';

export interface JensenShannonResult {
  readonly status: 'ok';
  /** The Jensen–Shannon distance in bits, in [0, 1]. */
  readonly distance: number;
  readonly referenceCount: number;
  readonly currentCount: number;
}

/**
 * Jensen–Shannon distance, base 2, between the distributions of two count vectors over the same
 * bins or categories (scipy.spatial.distance.jensenshannon(p, q, base=2)): with p and q the
 * normalized counts and m = (p + q) / 2, √((KL(p‖m) + KL(q‖m)) / 2) with KL in bits; a bin empty
 * on one side contributes 0·ln 0 = 0, so no epsilon is needed. Symmetric, 0 for identical
 * distributions, 1 for disjoint ones. Agrees with scipy to about 1e-15 absolute (where rounding
 * would make scipy's radicand slightly negative and return NaN, this returns 0). Insufficient
 * when a side's total is 0 or below options.minCount; RangeError for vectors of different lengths
 * or negative/non-finite counts.
 */
export function jensenShannon(
  referenceCounts: readonly number[],
  currentCounts: readonly number[],
  options: SampleSizeOptions = {},
): JensenShannonResult | Insufficient {
  checkSameLength(referenceCounts, currentCounts);
  const referenceTotal = countsTotal(referenceCounts, 'reference counts');
  const currentTotal = countsTotal(currentCounts, 'current counts');
  const insufficient = checkSampleSizes(referenceTotal, currentTotal, options.minCount);
  if (insufficient) return insufficient;
  let divergence = 0;
  referenceCounts.forEach((referenceCount, index) => {
    const p = referenceCount / referenceTotal;
    const q = (currentCounts[index] ?? 0) / currentTotal;
    const m = (p + q) / 2;
    if (p > 0) divergence += p * Math.log(p / m);
    if (q > 0) divergence += q * Math.log(q / m);
  });
  return {
    status: 'ok',
    distance: Math.sqrt(Math.max(0, divergence / Math.LN2 / 2)),
    referenceCount: referenceTotal,
    currentCount: currentTotal,
  };
}
