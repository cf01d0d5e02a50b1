import { checkSameLength, checkSampleSizes, countsTotal, type Insufficient, type SampleSizeOptions } from './result.js';

/**
 * Population Stability Index over fixed bins or categories:
 * PSI = Σ_i (r_i - c_i)·ln(r_i / c_i), with r_i and c_i the reference's and current window's
 * proportions in bin i. Rules of thumb: < 0.1 stable, 0.1–0.25 some shift, > 0.25 major shift.
 */

/**
 * Replaces a 0 proportion, where ln(r/c) would be infinite, without renormalizing (the plain numpy
 * formula with a constant stand-in).
 */
export const PSI_EPSILON = 0.0001;

/**
 * How a 0 proportion is replaced:
 * - 'constant' (default): by `epsilon` on both sides.
 * - 'evidently': as Evidently's PSI does (get_binned_data with feel_zeroes, Evidently 0.4 to 0.7):
 *   on each side apart, by that side's smallest non-zero proportion divided by 10⁶ when that
 *   proportion is at most 0.0001, else by 0.0001. With large samples a single value in a bin is
 *   ≤ 0.0001, so empty bins get a far smaller stand-in than 'constant' gives them, and weigh more.
 */
export type PsiZeroFill = 'constant' | 'evidently';

export interface PsiOptions extends SampleSizeOptions {
  /** Stand-in for a 0 proportion with zeroFill 'constant'; default PSI_EPSILON (0.0001). */
  readonly epsilon?: number;
  readonly zeroFill?: PsiZeroFill;
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
 * is replaced as options.zeroFill says. Agrees with numpy's evaluation of the same formula to about 1e-15
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
  const evidently = options.zeroFill === 'evidently';
  const referenceZero = evidently ? evidentlyStandIn(referenceCounts, referenceTotal) : epsilon;
  const currentZero = evidently ? evidentlyStandIn(currentCounts, currentTotal) : epsilon;
  const contributions = referenceCounts.map((referenceCount, index) => {
    const reference = referenceCount / referenceTotal || referenceZero;
    const current = (currentCounts[index] ?? 0) / currentTotal || currentZero;
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

/** Evidently's stand-in for a side's 0 proportions (see PsiZeroFill); the total is > 0. */
function evidentlyStandIn(counts: readonly number[], total: number): number {
  let smallest = Number.POSITIVE_INFINITY;
  for (const count of counts) if (count > 0 && count / total < smallest) smallest = count / total;
  return smallest <= 0.0001 ? smallest / 1e6 : 0.0001;
}
