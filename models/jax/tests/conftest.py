"""Helpers shared by the tests: small seeded data sets, spec builders, and an independent numpy
reading of result.json networks (the layout the TypeScript side will read)."""
from __future__ import annotations

import json
import os
import sys
from pathlib import Path
from typing import Any

# The tests run on the CPU backend (also on a GPU machine): bit-identical reruns are promised there.
os.environ.setdefault('JAX_PLATFORMS', 'cpu')
ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

import numpy as np  # noqa: E402
import pytest  # noqa: E402

from sluice_jax.contract import float32_from_b64, write_npy  # noqa: E402


def make_arrays(rows: int = 600, features: int = 4, seed: int = 0, nan_rate: float = 0.05, val: int = 200, test: int = 150) -> dict[str, np.ndarray]:
    rng = np.random.default_rng(seed)
    total = rows + val + test
    X = rng.normal(size=(total, features)) * rng.uniform(0.5, 5, features) + rng.uniform(-3, 3, features)
    z = (X - X.mean(axis=0)) / X.std(axis=0)
    logit = z @ rng.normal(size=features) + 0.7 * z[:, 0] * z[:, -1]
    y = (rng.random(total) < 1 / (1 + np.exp(-logit))).astype(np.float32)
    X[rng.random(X.shape) < nan_rate] = np.nan
    X = X.astype(np.float32)
    arrays = {'X': X[:rows], 'y': y[:rows]}
    if val:
        arrays.update(X_val=X[rows : rows + val], y_val=y[rows : rows + val])
    if test:
        arrays.update(X_test=X[rows + val :], y_test=y[rows + val :])
    return arrays


def trial(trial_id: str, kind: str = 'mlp', **settings: Any) -> dict[str, Any]:
    base = {'id': trial_id, 'kind': kind, 'learningRate': 0.01, 'batchSize': 64, 'epochs': 3, 'seed': 7}
    if kind == 'mlp':
        base['hidden'] = 8
    base.update(settings)
    return base


def spec_json(trials: list[dict[str, Any]], features: int = 4, **extra: Any) -> dict[str, Any]:
    return {'version': 1, 'features': [f'f{index}' for index in range(features)], 'trials': trials, **extra}


def write_inputs(directory: Path, arrays: dict[str, np.ndarray], spec: dict[str, Any], prefix: str = '') -> Path:
    directory.mkdir(parents=True, exist_ok=True)
    for name, array in arrays.items():
        write_npy(str(directory / f'{prefix}{name}.npy'), array)
    (directory / f'{prefix}spec.json').write_text(json.dumps(spec))
    return directory


def decode_network(network: dict[str, Any]) -> tuple[np.ndarray, np.ndarray, list[tuple[np.ndarray, np.ndarray, str]]]:
    """(mean, std, [(kernel [inputs, outputs], bias, activation)]) from a result.json network."""
    layers = []
    for layer in network['layers']:
        kernel = float32_from_b64(layer['weights'])
        assert kernel.size == layer['inputs'] * layer['outputs']
        layers.append((kernel.reshape(layer['inputs'], layer['outputs']), float32_from_b64(layer['bias']), layer['activation']))
    return float32_from_b64(network['mean']), float32_from_b64(network['std']), layers


def numpy_scores(network: dict[str, Any], X: np.ndarray) -> np.ndarray:
    """What the ONNX graph computes (Sub, Div, Gemm, Relu, Gemm, Sigmoid) with missing inputs filled
    with the mean, in float64 from the float32 weights."""
    mean, std, layers = decode_network(network)
    filled = np.where(np.isfinite(X), X, mean).astype(np.float64)
    h = (filled - mean) / std
    for kernel, bias, activation in layers:
        h = h @ kernel.astype(np.float64) + bias
        h = np.maximum(h, 0) if activation == 'relu' else 1 / (1 + np.exp(-h))
    return h[:, 0]


def weights_of(result_trial: dict[str, Any]) -> list[np.ndarray]:
    _, _, layers = decode_network(result_trial['network'])
    return [array for kernel, bias, _ in layers for array in (kernel, bias)]


@pytest.fixture(scope='session')
def arrays() -> dict[str, np.ndarray]:
    return make_arrays()


def run_inprocess(arrays: dict[str, np.ndarray], spec: dict[str, Any]) -> tuple[dict[str, Any], dict[str, np.ndarray]]:
    """Trains as the command line does, without files, on the CPU."""
    from sluice_jax.contract import Dataset, check_dataset, describe, parse_spec
    from sluice_jax.train import select_device, train

    parsed = parse_spec(spec)
    dataset = Dataset(**arrays)
    check_dataset(dataset, parsed)
    describe(dataset)
    return train(dataset, parsed, select_device('cpu'), 'cpu')


def only(arrays: dict[str, np.ndarray], *names: str) -> dict[str, np.ndarray]:
    return {name: arrays[name] for name in names}
