"""Evaluation as models/metrics.ts defines it: ROC AUC (rank statistic, ties averaged) and log loss
(scores clipped to [1e-12, 1 - 1e-12], in float64). Scores are the float32 sigmoid outputs."""
from __future__ import annotations

import numpy as np

LOG_LOSS_EPSILON = 1e-12


def auc(scores: np.ndarray, labels: np.ndarray) -> float:
    """Mann-Whitney AUC with average ranks over ties; NaN with one class only or non-finite scores."""
    scores = np.asarray(scores, dtype=np.float64)
    labels = np.asarray(labels, dtype=np.float64)
    if scores.size == 0 or not np.all(np.isfinite(scores)):
        return float('nan')
    positives = int(np.sum(labels == 1))
    negatives = scores.size - positives
    if positives == 0 or negatives == 0:
        return float('nan')
    order = np.argsort(scores, kind='stable')
    sorted_scores = scores[order]
    # tie groups: [start, stop) of equal scores; their 1-based ranks averaged = (start + 1 + stop) / 2
    starts = np.flatnonzero(np.r_[True, sorted_scores[1:] != sorted_scores[:-1]])
    stops = np.r_[starts[1:], scores.size]
    average = (starts + 1 + stops) / 2.0
    ranks = np.repeat(average, stops - starts)
    rank_sum = float(np.sum(ranks[labels[order] == 1]))
    return (rank_sum - positives * (positives + 1) / 2.0) / (positives * negatives)


def log_loss(scores: np.ndarray, labels: np.ndarray) -> float:
    """Mean binary cross-entropy of one score vector (NaN if a score is not finite)."""
    return float(log_losses(np.asarray(scores).reshape(1, -1), labels)[0])


def log_losses(scores: np.ndarray, labels: np.ndarray) -> np.ndarray:
    """Log loss per row of `scores` [trials, rows] (NaN for a row with a non-finite score)."""
    scores = np.asarray(scores, dtype=np.float64)
    labels = np.asarray(labels, dtype=np.float64)[None, :]
    if scores.shape[-1] == 0:
        return np.full(scores.shape[0], np.nan)
    clipped = np.clip(scores, LOG_LOSS_EPSILON, 1 - LOG_LOSS_EPSILON)
    losses = -(labels * np.log(clipped) + (1 - labels) * np.log(1 - clipped))
    result = losses.sum(axis=-1) / scores.shape[-1]
    result[~np.all(np.isfinite(scores), axis=-1)] = np.nan
    return result


def evaluate(scores: np.ndarray, labels: np.ndarray) -> dict[str, float | int]:
    labels = np.asarray(labels)
    return {
        'auc': auc(scores, labels),
        'logLoss': log_loss(scores, labels),
        'rows': int(labels.size),
        'positives': int(np.sum(labels == 1)),
    }
