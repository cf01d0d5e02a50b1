"""AUC (ties averaged) and log loss against direct numpy computations."""
from __future__ import annotations

import math

import numpy as np

from sluice_jax.metrics import auc, evaluate, log_loss, log_losses


def brute_force_auc(scores, labels):
    positives = scores[labels == 1][:, None]
    negatives = scores[labels == 0][None, :]
    return float(np.mean((positives > negatives) + 0.5 * (positives == negatives)))


def test_auc_with_ties():
    rng = np.random.default_rng(1)
    for rows in (2, 7, 50, 501):
        labels = (rng.random(rows) < 0.4).astype(np.float32)
        labels[:2] = [0, 1]
        for scores in (rng.random(rows).astype(np.float32), np.round(rng.random(rows), 1).astype(np.float32), np.full(rows, 0.5, np.float32)):
            assert math.isclose(auc(scores, labels), brute_force_auc(scores.astype(np.float64), labels), rel_tol=0, abs_tol=1e-12)


def test_auc_edge_cases():
    assert math.isnan(auc(np.array([0.1, 0.2]), np.array([1, 1])))
    assert math.isnan(auc(np.array([0.1, np.nan]), np.array([0, 1])))
    assert auc(np.array([0.1, 0.9]), np.array([0, 1])) == 1.0
    assert auc(np.array([0.9, 0.1]), np.array([0, 1])) == 0.0


def test_log_loss_against_numpy():
    rng = np.random.default_rng(2)
    scores = rng.random((3, 200)).astype(np.float32)
    scores[0, :3] = [0, 1, 0.5]  # clipped to [1e-12, 1 - 1e-12]
    labels = (rng.random(200) < 0.5).astype(np.float32)
    for row in range(3):
        p = np.clip(scores[row].astype(np.float64), 1e-12, 1 - 1e-12)
        expected = -np.mean(labels * np.log(p) + (1 - labels) * np.log(1 - p))
        assert math.isclose(log_loss(scores[row], labels), expected, rel_tol=1e-12)
        assert math.isclose(log_losses(scores, labels)[row], expected, rel_tol=1e-12)
    scores[2, 5] = np.nan
    assert math.isnan(log_losses(scores, labels)[2])
    result = evaluate(scores[1], labels)
    assert result['rows'] == 200 and result['positives'] == int(labels.sum())
    assert result['auc'] == auc(scores[1], labels) and result['logLoss'] == log_loss(scores[1], labels)
