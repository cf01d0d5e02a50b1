/**
 * The shape every two-sample comparison shares when it has no verdict: an empty window, an empty
 * reference, or fewer valid values than the configured minimum. Such a result carries counts, never
 * a NaN statistic, so one starved feature cannot poison aggregates over many.
 */

/** Why a comparison gave no verdict. */
export type InsufficientReason = 'empty' | 'below-minimum';

export interface Insufficient {
  readonly status: 'insufficient';
  readonly reason: InsufficientReason;
  /** Valid (finite, non-missing) values on each side. */
  readonly referenceCount: number;
  readonly currentCount: number;
  readonly minCount: number;
}

export interface SampleSizeOptions {
  /**
   * The fewest valid values each side needs for a verdict; below it the result is Insufficient.
   * Default 1: only an empty side is refused, as scipy would (it raises instead).
   */
  readonly minCount?: number;
}

export const DEFAULT_MIN_COUNT = 1;

/**
 * Insufficient when either side has no valid values ('empty') or fewer than minCount
 * ('below-minimum'); undefined when both sides are large enough. A minCount below 1 counts as 1.
 */
export function checkSampleSizes(
  referenceCount: number,
  currentCount: number,
  minCount: number = DEFAULT_MIN_COUNT,
): Insufficient | undefined {
  const minimum = Math.max(DEFAULT_MIN_COUNT, Number.isFinite(minCount) ? minCount : DEFAULT_MIN_COUNT);
  if (referenceCount === 0 || currentCount === 0) {
    return { status: 'insufficient', reason: 'empty', referenceCount, currentCount, minCount: minimum };
  }
  if (referenceCount < minimum || currentCount < minimum) {
    return { status: 'insufficient', reason: 'below-minimum', referenceCount, currentCount, minCount: minimum };
  }
  return undefined;
}

/** Throws RangeError unless counts is a list of finite, non-negative numbers; returns its sum. */
export function countsTotal(counts: readonly number[], name: string): number {
  let total = 0;
  for (const count of counts) {
    if (!Number.isFinite(count) || count < 0) throw new RangeError(`${name} must hold finite, non-negative counts, got ${count}`);
    total += count;
  }
  return total;
}

/** Throws RangeError unless two count vectors over the same bins have the same length. */
export function checkSameLength(reference: readonly number[], current: readonly number[]): void {
  if (reference.length !== current.length) {
    throw new RangeError(`reference and current counts cover different bins (${reference.length} vs ${current.length})`);
  }
}
