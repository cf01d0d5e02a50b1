import { checkSameLength, checkSampleSizes, countsTotal, type Insufficient, type SampleSizeOptions } from './result.js';

/**
 * Population Stability Index over fixed bins or categories:
 * PSI = Σ_i (r_i - c_i)·ln(r_i / c_i), with r_i and c_i the reference's and current window's
 * proportions in bin i. Rules of thumb: < 0.1 stable, 0.1–0.25 some shift, > 0.25 major shift.
 */

/**
 * Replaces a 0 proportion, where ln(r/c) would be infinite. Evidently's psi (get_binned_data with
 * feel_zeroes) replaces 0 proportions by 0.0001 on both sides and does not renormalize; so does
 * this module, so values agree with Evidently's and with the plain numpy formula.
 */
export const PSI_EPSILON = 0.0001;

export interface PsiOptions extends SampleSizeOptions {
  /** Stand-in for a 0 proportion; default PSI_EPSILON (0.0001). */
  readonly epsilon?: number;
}

export interface PsiResult {
  readonly status: 'ok';
  readonly value: number;
  /** Each bin's term (r_i - c_i)·ln(r_i / c_i), all ≥ 0: which bins moved. */
  readonly contributions: readonly number[];
  readonly referenceCount: number;
  readonly currentCount: number;
}

/**
 * PSI of current bin counts against reference bin counts over the same bins (e.g. Histogram.counts
 * or categoryVector of both tables). Proportions are counts over each side's total; a 0 proportion
 * becomes options.epsilon. Agrees with numpy's evaluation of the same formula to about 1e-15
 * relative. Insufficient when a side's total is 0 (empty window) or below options.minCount;
 * RangeError for vectors of different lengths or negative/non-finite counts.
 */
export function psi(
  referenceCounts: readonly number[],
  currentCounts: readonly number[],
  options: PsiOptions = {},
): PsiResult | Insufficient {
  checkSameLength(referenceCounts, currentCounts);
  const referenceTotal = countsTotal(referenceCounts, 'reference counts');
  const currentTotal = countsTotal(currentCounts, 'current counts');
  const insufficient = checkSampleSizes(referenceTotal, currentTotal, options.minCount);
  if (insufficient) return insufficient;
  const epsilon = options.epsilon ?? PSI_EPSILON;
  if (!(epsilon > 0)) throw new RangeError(`psi epsilon must be > 0, got ${epsilon}`);
  const contributions = referenceCounts.map((referenceCount, index) => {
    const reference = referenceCount / referenceTotal || epsilon;
    const current = (currentCounts[index] ?? 0) / currentTotal || epsilon;
    return (reference - current) * Math.log(reference / current);
  });
  return {
    status: 'ok',
    value: contributions.reduce((total, term) => total + term, 0),
    contributions,
    referenceCount: referenceTotal,
    currentCount: currentTotal,
  };
}
