/**
 * The mergeable state behind one window's performance metrics, from decided predictions (score,
 * decision, 0/1 outcome): counts at the threshold, the log-loss sum, score histograms per class on
 * the logit scale (ROC AUC with a stated error bound) and equal-width calibration bins (ECE). Its
 * size is bounded by the bins, not by traffic. Plain JSON.
 */
export interface PerformanceAccumulator {
  /** Predictions in the window (decided or not). */
  predictions: number;
  /** Decided: labelled positive, or known negative because the label window closed. */
  labelled: number;
  positives: number;
  predictedPositives: number;
  truePositives: number;
  logLossSum: number;
  /** Score bin → count, per class (sparse). */
  readonly positiveBins: Record<string, number>;
  readonly negativeBins: Record<string, number>;
  /** Per calibration bin: [count, score sum, positives]. */
  readonly calibration: [number, number, number][];
}

export interface AccumulatorShape {
  /** Score bins on the logit scale over [-LOGIT_RANGE, LOGIT_RANGE]. */
  readonly scoreBins: number;
  readonly calibrationBins: number;
}

const LOGIT_RANGE = 12;
const EPSILON = 1e-12;

export function emptyAccumulator(shape: AccumulatorShape): PerformanceAccumulator {
  return {
    predictions: 0,
    labelled: 0,
    positives: 0,
    predictedPositives: 0,
    truePositives: 0,
    logLossSum: 0,
    positiveBins: {},
    negativeBins: {},
    calibration: Array.from({ length: shape.calibrationBins }, () => [0, 0, 0]),
  };
}

/** The ROC bin of a score: its logit, clipped to ±12, in `bins` equal parts. */
export function scoreBin(score: number, bins: number): number {
  const clipped = Math.min(1 - EPSILON, Math.max(EPSILON, score));
  const logit = Math.log(clipped / (1 - clipped));
  const position = Math.floor(((Math.min(LOGIT_RANGE, Math.max(-LOGIT_RANGE, logit)) + LOGIT_RANGE) / (2 * LOGIT_RANGE)) * bins);
  return Math.min(bins - 1, Math.max(0, position));
}

/** Counts one decided prediction. */
export function addDecided(
  accumulator: PerformanceAccumulator,
  shape: AccumulatorShape,
  prediction: { readonly score: number; readonly decision: boolean; readonly positive: boolean },
): void {
  const { score, decision, positive } = prediction;
  accumulator.labelled++;
  if (positive) accumulator.positives++;
  if (decision) {
    accumulator.predictedPositives++;
    if (positive) accumulator.truePositives++;
  }
  const clipped = Math.min(1 - EPSILON, Math.max(EPSILON, Number.isFinite(score) ? score : 0.5));
  accumulator.logLossSum -= positive ? Math.log(clipped) : Math.log(1 - clipped);
  const bins = positive ? accumulator.positiveBins : accumulator.negativeBins;
  const bin = String(scoreBin(score, shape.scoreBins));
  bins[bin] = (bins[bin] ?? 0) + 1;
  const calibrationBin =
    accumulator.calibration[Math.min(shape.calibrationBins - 1, Math.max(0, Math.floor(clipped * shape.calibrationBins)))];
  if (calibrationBin) {
    calibrationBin[0]++;
    calibrationBin[1] += clipped;
    calibrationBin[2] += positive ? 1 : 0;
  }
}

/** Folds `source` into `target` (same shape) and returns target. */
export function mergeAccumulators(target: PerformanceAccumulator, source: PerformanceAccumulator): PerformanceAccumulator {
  target.predictions += source.predictions;
  target.labelled += source.labelled;
  target.positives += source.positives;
  target.predictedPositives += source.predictedPositives;
  target.truePositives += source.truePositives;
  target.logLossSum += source.logLossSum;
  for (const [bin, count] of Object.entries(source.positiveBins)) target.positiveBins[bin] = (target.positiveBins[bin] ?? 0) + count;
  for (const [bin, count] of Object.entries(source.negativeBins)) target.negativeBins[bin] = (target.negativeBins[bin] ?? 0) + count;
  source.calibration.forEach(([count, scores, positives], index) => {
    const bin = target.calibration[index];
    if (!bin) throw new RangeError('cannot merge performance accumulators with different calibration bins');
    bin[0] += count;
    bin[1] += scores;
    bin[2] += positives;
  });
  return target;
}

export interface PerformanceMetrics {
  readonly accuracy: number | null;
  readonly precision: number | null;
  readonly recall: number | null;
  /** null with one class only. */
  readonly auc: number | null;
  /** |auc - exact AUC| ≤ this: positive-negative pairs in one score bin, counted as ties (half), could go either way. */
  readonly aucErrorBound: number | null;
  readonly logLoss: number | null;
  readonly ece: number | null;
  readonly baseRate: number | null;
  readonly labelCompleteness: number;
}

export function performanceMetrics(accumulator: PerformanceAccumulator): PerformanceMetrics {
  const { labelled, positives, predictedPositives, truePositives } = accumulator;
  const negatives = labelled - positives;
  const trueNegatives = negatives - (predictedPositives - truePositives);
  let auc: number | null = null;
  let aucErrorBound: number | null = null;
  if (positives > 0 && negatives > 0) {
    const bins = [...new Set([...Object.keys(accumulator.positiveBins), ...Object.keys(accumulator.negativeBins)])]
      .map(Number)
      .sort((left, right) => left - right);
    let negativesBelow = 0;
    let wins = 0;
    let ties = 0;
    for (const bin of bins) {
      const positive = accumulator.positiveBins[String(bin)] ?? 0;
      const negative = accumulator.negativeBins[String(bin)] ?? 0;
      wins += positive * negativesBelow;
      ties += positive * negative;
      negativesBelow += negative;
    }
    auc = (wins + ties / 2) / (positives * negatives);
    aucErrorBound = ties / 2 / (positives * negatives);
  }
  let ece: number | null = null;
  if (labelled > 0) {
    ece = 0;
    for (const [count, scores, positive] of accumulator.calibration)
      if (count > 0) ece += (count / labelled) * Math.abs(scores / count - positive / count);
  }
  return {
    accuracy: labelled === 0 ? null : (truePositives + trueNegatives) / labelled,
    precision: predictedPositives === 0 ? null : truePositives / predictedPositives,
    recall: positives === 0 ? null : truePositives / positives,
    auc,
    aucErrorBound,
    logLoss: labelled === 0 ? null : accumulator.logLossSum / labelled,
    ece,
    baseRate: labelled === 0 ? null : positives / labelled,
    labelCompleteness: accumulator.predictions === 0 ? 1 : labelled / accumulator.predictions,
  };
}
