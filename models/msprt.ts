/**
 * The mixture sequential probability ratio test (mSPRT, Johari et al., "Always valid inference",
 * 2017) for the difference of two means, with a normal mixture N(0, τ²) over the difference. Its
 * likelihood ratio Λ is a martingale under "no difference", so rejecting when Λ ≥ 1/α keeps the
 * false-positive rate at most α however often it is looked at: a canary's gates can peek after
 * every batch. The variance is the plug-in estimate of the two arms' sample variances.
 */
export interface MeanStats {
  readonly n: number;
  readonly sum: number;
  readonly sumSquares: number;
}

export const emptyMean: MeanStats = { n: 0, sum: 0, sumSquares: 0 };

export function addSample(stats: MeanStats, value: number): MeanStats {
  return { n: stats.n + 1, sum: stats.sum + value, sumSquares: stats.sumSquares + value * value };
}

function variance(stats: MeanStats): number {
  if (stats.n < 2) return 0;
  const mean = stats.sum / stats.n;
  return Math.max(0, (stats.sumSquares - stats.n * mean * mean) / (stats.n - 1));
}

export interface MsprtResult {
  /** mean(treatment) − mean(control). */
  readonly difference: number;
  /** The mixture likelihood ratio Λ (on a log scale, to stay finite). */
  readonly logLikelihoodRatio: number;
  /** Λ ≥ 1/α: the means differ, with an always-valid false-positive bound α. */
  readonly rejected: boolean;
}

/** Tests mean(treatment) = mean(control); `tau` is the scale of differences worth finding. */
export function msprt(control: MeanStats, treatment: MeanStats, alpha: number, tau: number): MsprtResult {
  const difference = treatment.n > 0 && control.n > 0 ? treatment.sum / treatment.n - control.sum / control.n : 0;
  const v = (treatment.n > 1 ? variance(treatment) / treatment.n : 0) + (control.n > 1 ? variance(control) / control.n : 0);
  if (v <= 0 || treatment.n < 2 || control.n < 2) return { difference, logLikelihoodRatio: 0, rejected: false };
  const t2 = tau * tau;
  const logLikelihoodRatio = 0.5 * Math.log(v / (v + t2)) + (t2 * difference * difference) / (2 * v * (v + t2));
  return { difference, logLikelihoodRatio, rejected: logLikelihoodRatio >= Math.log(1 / alpha) };
}
