"""Throughput of vectorized tuning on a seeded synthetic data set.

    python -m sluice_jax.bench --rows 200000 --features 9 --trials 1,32,512 --epochs 3 --out bench.json

For each trial count, trains that many configurations (one vmapped program per group) and reports
compile time apart from steady-state time (the compiled epochs themselves), trials/second on both,
and trial-epochs and rows per second.
"""
from __future__ import annotations

import argparse
import json
import os
import platform
import sys
import time
from typing import Any

import numpy as np

from .contract import Dataset, Spec, Trial, describe, json_safe, write_json_atomic


def synthetic(rows: int, features: int, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """Columns of various scales with 2% missing values; labels from a noisy nonlinear score."""
    rng = np.random.default_rng(seed)
    X = rng.normal(size=(rows, features)) * rng.uniform(0.5, 20, features) + rng.uniform(-5, 5, features)
    z = (X - X.mean(axis=0)) / X.std(axis=0)
    w = rng.normal(size=features)
    logit = z @ w + 0.8 * np.sin(2 * z[:, 0]) * z[:, -1] - 1.0
    y = (rng.random(rows) < 1 / (1 + np.exp(-logit))).astype(np.float32)
    X[rng.random((rows, features)) < 0.02] = np.nan
    return X.astype(np.float32), y


def bench_trials(count: int, args: argparse.Namespace) -> tuple[Trial, ...]:
    rng = np.random.default_rng(args.seed + count)
    return tuple(
        Trial(
            index=index,
            id=f't{index}',
            kind=args.kind,
            hidden=args.hidden if args.kind == 'mlp' else None,
            learning_rate=float(10 ** rng.uniform(-3.5, -1.5)),
            batch_size=args.batch_size,
            epochs=args.epochs,
            l2=float((0.0, 1e-4, 1e-3)[index % 3]),
            seed=args.seed + index % args.seeds,
        )
        for index in range(count)
    )


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog='python -m sluice_jax.bench', description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument('--rows', type=int, default=20000)
    parser.add_argument('--features', type=int, default=9)
    parser.add_argument('--trials', default='1,32,512', help='comma-separated trial counts')
    parser.add_argument('--epochs', type=int, default=3)
    parser.add_argument('--kind', choices=('logistic', 'mlp'), default='mlp')
    parser.add_argument('--hidden', type=int, default=16)
    parser.add_argument('--batch-size', type=int, default=128)
    parser.add_argument('--seeds', type=int, default=1, help='distinct seeds (row orders) among the trials')
    parser.add_argument('--seed', type=int, default=0)
    parser.add_argument('--device', choices=('cpu', 'gpu', 'auto'), default='auto')
    parser.add_argument('--out', help='JSON report file')
    args = parser.parse_args(argv)
    counts = [int(part) for part in args.trials.split(',') if part.strip()]
    if not counts or min(counts) < 1 or args.rows < 1 or args.features < 1 or args.epochs < 1 or args.seeds < 1:
        parser.error('--trials, --rows, --features, --epochs and --seeds must be positive')
    if args.device == 'cpu':
        os.environ['JAX_PLATFORMS'] = 'cpu'

    import jax

    from .train import DeviceError, Trainer, device_facts, select_device

    try:
        device = select_device(args.device)
    except DeviceError as error:
        print(f'sluice_jax.bench: {error}', file=sys.stderr)
        return 3
    started = time.perf_counter()
    X, y = synthetic(args.rows, args.features, args.seed)
    dataset = Dataset(X=X, y=y)
    describe(dataset)
    print(f'{args.rows} rows x {args.features} features, {args.kind}{f" hidden {args.hidden}" if args.kind == "mlp" else ""}, batch {args.batch_size}, {args.epochs} epochs, {args.seeds} row order(s), on {device.platform} ({device.device_kind}); data {time.perf_counter() - started:.2f}s', flush=True)
    print(f'{"trials":>7} {"compile s":>10} {"steady s":>9} {"trials/s":>10} {"trials/s+c":>11} {"trial-epochs/s":>15} {"rows/s":>12} {"total s":>8}', flush=True)
    runs: list[dict[str, Any]] = []
    features = tuple(f'f{index}' for index in range(args.features))
    for count in counts:
        spec = Spec(features=features, trials=bench_trials(count, args), device=args.device)
        begun = time.perf_counter()
        trainer = Trainer(dataset, spec, device)
        trainer.run()  # each epoch's losses are read back, so its time is complete
        total = time.perf_counter() - begun
        compile_s = trainer.programs.compile_seconds
        steady = trainer.train_seconds
        run = {
            'trials': count,
            'groups': len(trainer.groups),
            'compiles': trainer.programs.compiles,
            'compileSeconds': compile_s,
            'steadySeconds': steady,
            'setupSeconds': trainer.setup_seconds,
            'totalSeconds': total,
            'trialsPerSecond': count / steady,
            'trialsPerSecondWithCompile': count / (steady + compile_s),
            'trialEpochsPerSecond': count * args.epochs / steady,
            'rowsPerSecond': count * args.epochs * args.rows / steady,
            'finalTrainLoss': {'min': min(log.train_loss[-1] for log in trainer.logs), 'max': max(log.train_loss[-1] for log in trainer.logs)},
        }
        runs.append(run)
        print(f'{count:>7} {compile_s:>10.2f} {steady:>9.2f} {run["trialsPerSecond"]:>10.2f} {run["trialsPerSecondWithCompile"]:>11.2f} {run["trialEpochsPerSecond"]:>15.1f} {run["rowsPerSecond"]:>12.3g} {total:>8.2f}', flush=True)
    report = {
        'rows': args.rows,
        'features': args.features,
        'epochs': args.epochs,
        'kind': args.kind,
        'hidden': args.hidden if args.kind == 'mlp' else None,
        'batchSize': args.batch_size,
        'seeds': args.seeds,
        'seed': args.seed,
        'device': device_facts(device, args.device),
        'jax': jax.__version__,
        'host': {'python': platform.python_version(), 'system': platform.platform(), 'cpus': os.cpu_count()},
        'datasetSha256': dataset.dataset_sha256,
        'runs': runs,
    }
    if args.out:
        directory = os.path.dirname(os.path.abspath(args.out))
        os.makedirs(directory, exist_ok=True)
        write_json_atomic(args.out, report)
    else:
        print(json.dumps(json_safe(report), indent=1))
    return 0


if __name__ == '__main__':
    sys.exit(main())
