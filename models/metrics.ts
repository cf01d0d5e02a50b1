/**
 * Evaluation of scores against 0/1 labels: ROC AUC (rank statistic, ties averaged), log loss,
 * precision and recall at a threshold, and calibration (observed rate per score decile bin, with
 * the expected calibration error).
 */
export interface Evaluation {
  readonly auc: number;
  readonly log_loss: number;
  readonly precision: number;
  readonly recall: number;
  readonly threshold: number;
  readonly positives: number;
  readonly rows: number;
  /** Expected calibration error over ten equal-width score bins. */
  readonly ece: number;
  readonly calibration: readonly {
    readonly bin: number;
    readonly count: number;
    readonly mean_score: number;
    readonly observed_rate: number;
  }[];
}

export function auc(scores: readonly number[], labels: readonly number[]): number {
  const order = scores.map((score, index) => ({ score, label: labels[index] ?? 0 })).sort((left, right) => left.score - right.score);
  let positives = 0;
  let rankSum = 0;
  for (let start = 0; start < order.length;) {
    let stop = start;
    while (stop < order.length && order[stop]?.score === order[start]?.score) stop++;
    const averageRank = (start + 1 + stop) / 2; // ranks start..stop-1 (1-based), averaged over ties
    for (let index = start; index < stop; index++) {
      if (order[index]?.label === 1) {
        positives++;
        rankSum += averageRank;
      }
    }
    start = stop;
  }
  const negatives = order.length - positives;
  if (positives === 0 || negatives === 0) return Number.NaN;
  return (rankSum - (positives * (positives + 1)) / 2) / (positives * negatives);
}

export function evaluate(scores: readonly number[], labels: readonly number[], threshold: number): Evaluation {
  const epsilon = 1e-12;
  let loss = 0;
  let truePositives = 0;
  let predictedPositives = 0;
  let positives = 0;
  const bins = Array.from({ length: 10 }, () => ({ count: 0, scoreSum: 0, labelSum: 0 }));
  scores.forEach((score, index) => {
    const label = labels[index] ?? 0;
    const clipped = Math.min(1 - epsilon, Math.max(epsilon, score));
    loss -= label * Math.log(clipped) + (1 - label) * Math.log(1 - clipped);
    if (label === 1) positives++;
    if (score >= threshold) {
      predictedPositives++;
      if (label === 1) truePositives++;
    }
    const bin = bins[Math.min(9, Math.floor(score * 10))];
    if (bin) {
      bin.count++;
      bin.scoreSum += score;
      bin.labelSum += label;
    }
  });
  const rows = scores.length;
  const calibration = bins.map((bin, index) => ({
    bin: index,
    count: bin.count,
    mean_score: bin.count === 0 ? 0 : bin.scoreSum / bin.count,
    observed_rate: bin.count === 0 ? 0 : bin.labelSum / bin.count,
  }));
  return {
    auc: auc(scores, labels),
    log_loss: rows === 0 ? Number.NaN : loss / rows,
    precision: predictedPositives === 0 ? 0 : truePositives / predictedPositives,
    recall: positives === 0 ? 0 : truePositives / positives,
    threshold,
    positives,
    rows,
    ece: rows === 0 ? 0 : calibration.reduce((sum, bin) => sum + (bin.count / rows) * Math.abs(bin.mean_score - bin.observed_rate), 0),
    calibration,
  };
}

/** Mean log loss of float scores against 0/1 labels, scores clipped to [1e-12, 1 − 1e-12] (as `evaluate`). */
export function logLoss(scores: ArrayLike<number>, labels: readonly number[]): number {
  if (scores.length === 0) return Number.NaN;
  const epsilon = 1e-12;
  let loss = 0;
  for (let index = 0; index < scores.length; index++) {
    const label = labels[index] ?? 0;
    const clipped = Math.min(1 - epsilon, Math.max(epsilon, scores[index] ?? 0));
    loss -= label * Math.log(clipped) + (1 - label) * Math.log(1 - clipped);
  }
  return loss / scores.length;
}
