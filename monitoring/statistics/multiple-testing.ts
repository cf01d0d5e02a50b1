/**
 * Multiple-testing corrections for the per-feature p-values of one drift check. Entries may be
 * null: a feature without a verdict (Insufficient) has no p-value; it is neither counted among the
 * m tests nor adjusted, and stays null. NaN and values outside [0, 1] are treated as null too.
 */

/**
 * Benjamini–Hochberg adjusted p-values (false discovery rate), as
 * scipy.stats.false_discovery_control(ps, method='bh') and statsmodels' fdr_bh: with the m valid
 * p-values sorted ascending, p_(i)·(m / i), made monotone by a running minimum from the largest
 * down, clipped to 1, returned in input order. Rejecting where the adjusted value ≤ q controls the
 * FDR at q for independent (or positively dependent) tests. Same floating-point operations as
 * scipy, so results agree to the last bit or so.
 */
export function benjaminiHochberg(pValues: readonly (number | null)[]): (number | null)[] {
  const valid = validIndexes(pValues);
  const m = valid.length;
  const order = valid.sort((left, right) => (pValues[left] ?? 0) - (pValues[right] ?? 0));
  const adjusted: (number | null)[] = pValues.map(() => null);
  let running = Infinity;
  for (let rank = m; rank >= 1; rank--) {
    const index = order[rank - 1];
    if (index === undefined) continue;
    running = Math.min(running, (pValues[index] ?? 0) * (m / rank));
    adjusted[index] = Math.min(1, running);
  }
  return adjusted;
}

/** Bonferroni adjusted p-values: min(1, p·m) over the m valid p-values (family-wise error rate). */
export function bonferroni(pValues: readonly (number | null)[]): (number | null)[] {
  const valid = new Set(validIndexes(pValues));
  const m = valid.size;
  return pValues.map((p, index) => (p !== null && valid.has(index) ? Math.min(1, p * m) : null));
}

function validIndexes(pValues: readonly (number | null)[]): number[] {
  const indexes: number[] = [];
  pValues.forEach((p, index) => {
    if (p !== null && p >= 0 && p <= 1) indexes.push(index);
  });
  return indexes;
}
