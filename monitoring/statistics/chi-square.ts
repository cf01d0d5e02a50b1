import { checkSameLength, checkSampleSizes, countsTotal, type Insufficient, type SampleSizeOptions } from './result.js';
import { chiSquareSf } from './special.js';

export interface ChiSquareResult {
  readonly status: 'ok';
  /** Pearson's X² = Σ (observed - expected)² / expected over both rows. */
  readonly statistic: number;
  /** Degrees of freedom: columns used - 1. */
  readonly dof: number;
  readonly pValue: number;
  /** Columns that entered the test (those with a count on either side). */
  readonly columns: number;
  readonly referenceCount: number;
  readonly currentCount: number;
}

/**
 * Chi-square test of homogeneity: do the reference and the current window come from the same
 * categorical distribution? Both are samples, so the test is on the 2 × K contingency table of
 * their counts (scipy.stats.chi2_contingency(table, correction=False)), not a goodness-of-fit test
 * against fixed reference proportions (scipy.stats.chisquare), which would ignore the reference's
 * own sampling noise and could not handle a category with reference proportion 0 (its expected
 * count would be 0). Expected counts are row total × column total / grand total.
 *
 * Unseen categories: give them a column (categoryVector puts everything outside the reference's
 * categories in the trailing "other" count); the reference's 0 there is an ordinary observation,
 * and a new category in the window raises X². Columns that are 0 on both sides carry no
 * information and are dropped (scipy would reject their 0 expected counts). With a single column
 * left (a one-valued feature on both sides) dof is 0 and, as in scipy, X² = 0 and p = 1.
 *
 * p = chiSquareSf(X², K - 1); statistic and p agree with scipy to about 1e-12 relative.
 * Insufficient when a side's total is 0 or below options.minCount; RangeError for vectors of
 * different lengths or negative/non-finite counts.
 */
export function chiSquare(
  referenceCounts: readonly number[],
  currentCounts: readonly number[],
  options: SampleSizeOptions = {},
): ChiSquareResult | Insufficient {
  checkSameLength(referenceCounts, currentCounts);
  const referenceTotal = countsTotal(referenceCounts, 'reference counts');
  const currentTotal = countsTotal(currentCounts, 'current counts');
  const insufficient = checkSampleSizes(referenceTotal, currentTotal, options.minCount);
  if (insufficient) return insufficient;
  const total = referenceTotal + currentTotal;
  let statistic = 0;
  let columns = 0;
  referenceCounts.forEach((referenceCount, index) => {
    const currentCount = currentCounts[index] ?? 0;
    const columnTotal = referenceCount + currentCount;
    if (columnTotal === 0) return;
    columns++;
    const referenceExpected = (referenceTotal * columnTotal) / total;
    const currentExpected = (currentTotal * columnTotal) / total;
    statistic += (referenceCount - referenceExpected) ** 2 / referenceExpected + (currentCount - currentExpected) ** 2 / currentExpected;
  });
  const dof = columns - 1;
  if (dof === 0) return { status: 'ok', statistic: 0, dof, pValue: 1, columns, referenceCount: referenceTotal, currentCount: currentTotal };
  return {
    status: 'ok',
    statistic,
    dof,
    pValue: chiSquareSf(statistic, dof),
    columns,
    referenceCount: referenceTotal,
    currentCount: currentTotal,
  };
}
