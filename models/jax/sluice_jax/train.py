"""Training of all trials of a spec: standardization, grouping, vmapped epochs, successive halving,
evaluation, and the result document (CONTRACT.md)."""
from __future__ import annotations

import math
import os
import platform
import time
from dataclasses import dataclass, field
from typing import Any, Callable

import jax
import jax.numpy as jnp
import numpy as np

from . import __version__, model
from .contract import RESULT_VERSION, ContractError, Dataset, Spec, Trial, b64_float32
from .metrics import evaluate, log_losses

SCORE_CHUNK = 8192  # rows per scoring call


class DeviceError(Exception):
    """The requested device is not available."""


def select_device(requested: str) -> Any:
    if requested == 'cpu':
        return jax.devices('cpu')[0]
    if requested == 'gpu':
        try:
            return jax.devices('gpu')[0]
        except RuntimeError as error:
            raise DeviceError(f'device "gpu" requested but JAX has no GPU here ({error})') from None
    return jax.devices()[0]  # auto: the default backend (a GPU when JAX has one)


# ---- standardization ------------------------------------------------------------------------------


def standardization(X: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Mean and population std of each column over its finite values (float64, stored as float32);
    a column with no finite value gets mean 0; a std <= 1e-9 becomes 1 (models/trainer.ts)."""
    finite = np.isfinite(X)
    values = np.where(finite, X, 0).astype(np.float64)
    counts = finite.sum(axis=0)
    safe = np.maximum(counts, 1)
    mean = values.sum(axis=0) / safe
    deviation = np.sqrt((np.where(finite, values - mean, 0) ** 2).sum(axis=0) / safe)
    mean = np.where(counts > 0, mean, 0.0)
    std = np.where((counts > 0) & (deviation > 1e-9), deviation, 1.0)
    return mean.astype(np.float32), std.astype(np.float32)


def standardize(X: np.ndarray, mean: np.ndarray, std: np.ndarray) -> np.ndarray:
    """(x - mean) / std in float32 as the ONNX graph computes it, missing (non-finite) values
    replaced by the mean first, so they become exactly 0."""
    filled = np.where(np.isfinite(X), X, mean[None, :]).astype(np.float32)
    return ((filled - mean[None, :]) / std[None, :]).astype(np.float32)


# ---- the compile cache -----------------------------------------------------------------------------


def _signature(tree: Any) -> tuple[Any, ...]:
    leaves, structure = jax.tree_util.tree_flatten(tree)
    return (str(structure), tuple((tuple(np.shape(leaf)), str(getattr(leaf, 'dtype', type(leaf)))) for leaf in leaves))


_COMPILED: dict[Any, Any] = {}  # for the life of the process: a program depends on shapes only


class Programs:
    """jit-compiled programs by device and argument shapes (compiled ahead of time, so compile
    time is measured apart from run time); counts this run's compiles."""

    def __init__(self, device: Any) -> None:
        self.device = device
        self.compile_seconds = 0.0
        self.compiles = 0

    def get(self, name: str, static: tuple[Any, ...], build: Callable[[], Callable[..., Any]], args: tuple[Any, ...]) -> Any:
        key = (name, static, self.device.platform, self.device.id, _signature(args))
        program = _COMPILED.get(key)
        if program is None:
            started = time.perf_counter()
            program = jax.jit(build()).lower(*args).compile()
            self.compile_seconds += time.perf_counter() - started
            self.compiles += 1
            _COMPILED[key] = program
        return program


# ---- groups of trials trained together ---------------------------------------------------------------


def hidden_bucket(hidden: int) -> int:
    """MLP trials share a vmap when their hidden sizes round up to the same power of two."""
    return 1 << max(0, (hidden - 1).bit_length())


def group_key(trial: Trial, rows: int) -> tuple[str, int, int]:
    batch = min(trial.batch_size, rows)  # a batch larger than the data is the whole data, as in tfjs
    return (trial.kind, batch, hidden_bucket(trial.hidden) if trial.hidden is not None else 1)


@dataclass
class TrialLog:
    train_loss: list[float] = field(default_factory=list)
    val_loss: list[float] = field(default_factory=list)
    seconds: float = 0.0
    wall_seconds: float = 0.0
    epochs: int = 0


class Group:
    def __init__(self, trials: list[Trial], batch_size: int, features: int, rows: int, device: Any, orders: dict[int, np.ndarray]) -> None:
        self.trials = trials
        self.kind = trials[0].kind
        self.batch_size = batch_size
        self.batches = math.ceil(rows / batch_size)
        self.width = max(trial.hidden or 1 for trial in trials)
        self.device = device
        seeds = sorted({trial.seed for trial in trials})
        self.shared_order = len(seeds) == 1
        padded = self.batches * batch_size
        self.orders = jax.device_put(np.stack([np.pad(orders[seed], (0, padded - rows), constant_values=rows) for seed in seeds]), device)
        counts = np.full(self.batches, batch_size, np.float32)
        counts[-1] = rows - (self.batches - 1) * batch_size
        self.counts = jax.device_put(counts, device)
        states = [model.new_state(model.pad_params(model.init_params(trial.kind, features, trial.hidden, trial.seed), self.width)) for trial in trials]
        # host copies (numpy); the trials in training have theirs on the device
        self.states = jax.tree_util.tree_map(lambda *leaves: np.stack(leaves), *states)
        masks = np.zeros((len(trials), self.width), np.float32)
        for row, trial in enumerate(trials):
            masks[row, : trial.hidden or 1] = 1
        self.hypers = {
            'lr': np.array([trial.learning_rate for trial in trials], np.float32),
            'l2': np.array([trial.l2 for trial in trials], np.float32),
            'mask': masks,
            'order': np.array([seeds.index(trial.seed) for trial in trials], np.int32),
        }
        self.done = np.zeros(len(trials), np.int64)

    def describe(self) -> dict[str, Any]:
        return {
            'kind': self.kind,
            'batchSize': self.batch_size,
            'hidden': self.width if self.kind == 'mlp' else None,
            'batches': self.batches,
            'sharedOrder': self.shared_order,
            'trials': [trial.id for trial in self.trials],
        }


def _take(tree: Any, index: np.ndarray, device: Any) -> Any:
    """Rows `index` of a host pytree, on the device."""
    return jax.device_put(jax.tree_util.tree_map(lambda leaf: np.ascontiguousarray(leaf[index]), tree), device)


def _put(tree: Any, index: np.ndarray, values: Any) -> None:
    """Device rows back into the host pytree at `index`."""
    for leaf, value in zip(jax.tree_util.tree_leaves(tree), jax.tree_util.tree_leaves(values)):
        leaf[index] = np.asarray(value)


class Trainer:
    def __init__(self, dataset: Dataset, spec: Spec, device: Any, log: Callable[[str], None] | None = None) -> None:
        self.spec = spec
        self.device = device
        self.log = log or (lambda message: None)
        self.programs = Programs(device)
        self.rows, self.features = dataset.X.shape
        self.mean, self.std = standardization(dataset.X)
        z = standardize(dataset.X, self.mean, self.std)
        # one extra zero row with weight 0: where the padding of the last batch points
        self.z = jax.device_put(np.vstack([z, np.zeros((1, self.features), np.float32)]), device)
        self.y = jax.device_put(np.append(dataset.y, np.float32(0)).astype(np.float32), device)
        self.weight = jax.device_put(np.append(np.ones(self.rows, np.float32), np.float32(0)), device)
        # validation and test inputs, standardized, in equal blocks of at most SCORE_CHUNK rows
        self.splits: dict[str, tuple[list[Any], np.ndarray]] = {}
        for name, X, y in (('validation', dataset.X_val, dataset.y_val), ('test', dataset.X_test, dataset.y_test)):
            if X is not None and y is not None:
                zs = standardize(X, self.mean, self.std)
                chunk = min(SCORE_CHUNK, zs.shape[0])
                padded = math.ceil(zs.shape[0] / chunk) * chunk
                zs = np.vstack([zs, np.zeros((padded - zs.shape[0], self.features), np.float32)])
                blocks = [jax.device_put(zs[start : start + chunk], device) for start in range(0, padded, chunk)]
                self.splits[name] = (blocks, y.astype(np.float32))
        self.logs = [TrialLog() for _ in spec.trials]
        self.stopped: dict[int, dict[str, Any]] = {}
        self.rungs: list[dict[str, Any]] = []
        self.train_seconds = 0.0
        self.eval_seconds = 0.0
        self.groups: list[Group] = []

    # -- setup -----------------------------------------------------------------------------------

    def build_groups(self) -> None:
        started = time.perf_counter()
        members: dict[tuple[str, int, int], list[Trial]] = {}
        for trial in self.spec.trials:
            members.setdefault(group_key(trial, self.rows), []).append(trial)
        orders: dict[int, np.ndarray] = {}
        for trial in self.spec.trials:
            if trial.seed not in orders:
                orders[trial.seed] = model.row_order(trial.seed, self.rows)
        for (_, batch, _), trials in members.items():
            group = Group(trials, batch, self.features, self.rows, self.device, orders)
            self.groups.append(group)
        self.setup_seconds = time.perf_counter() - started
        self.log(f'{len(self.spec.trials)} trial(s) in {len(self.groups)} group(s), setup {self.setup_seconds:.2f}s')

    # -- scoring ----------------------------------------------------------------------------------

    def score(self, params: Any, masks: Any, split: str) -> np.ndarray:
        """float32 scores [trials, rows] of a split for a stack of params."""
        blocks, labels = self.splits[split]
        out = []
        for block in blocks:
            program = self.programs.get('scores', (), model.scores_program, (params, masks, block))
            started = time.perf_counter()
            out.append(np.asarray(program(params, masks, block)))
            self.eval_seconds += time.perf_counter() - started
        return np.concatenate(out, axis=1)[:, : labels.shape[0]]

    # -- training ---------------------------------------------------------------------------------

    def train_group(self, group: Group, target: np.ndarray) -> None:
        """Trains each trial of the group up to target[position] epochs, one epoch at a time; the
        trials still training are gathered into a compact stack (a smaller vmap) as others finish."""
        active: np.ndarray | None = None
        states = hypers = None
        while True:
            wanted = np.flatnonzero(group.done < target)
            if wanted.size == 0:
                break
            if active is None or not np.array_equal(active, wanted):
                if active is not None:
                    _put(group.states, active, states)
                active = wanted
                states, hypers = _take(group.states, active, self.device), _take(group.hypers, active, self.device)
            args = (states, hypers, group.orders, self.z, self.y, self.weight, group.counts)
            program = self.programs.get('epoch', (group.batch_size, group.batches, group.shared_order), lambda: model.epoch_program(group.batch_size, group.batches, group.shared_order), args)
            started = time.perf_counter()
            states, losses = program(*args)
            losses = np.asarray(losses)  # waits for the epoch
            elapsed = time.perf_counter() - started
            self.train_seconds += elapsed
            val_losses = None
            if 'validation' in self.splits:
                scores = self.score(states['params'], hypers['mask'], 'validation')
                val_losses = log_losses(scores, self.splits['validation'][1])
            for row, position in enumerate(active):
                log = self.logs[group.trials[position].index]
                log.train_loss.append(float(losses[row]))
                if val_losses is not None:
                    log.val_loss.append(float(val_losses[row]))
                log.seconds += elapsed / len(active)
                log.wall_seconds += elapsed
                log.epochs += 1
            group.done[active] += 1
        if active is not None:
            _put(group.states, active, states)

    def train_to(self, targets: dict[int, int]) -> None:
        for group in self.groups:
            target = np.array([targets.get(trial.index, 0) for trial in group.trials], np.int64)
            if np.any(group.done < target):
                self.train_group(group, target)

    def run(self) -> None:
        self.build_groups()
        trials = self.spec.trials
        halving = self.spec.successive_halving
        if halving is None:
            self.train_to({trial.index: trial.epochs for trial in trials})
            return
        most = max(trial.epochs for trial in trials)
        rungs = []
        epoch = halving.min_epochs
        while epoch < most:
            rungs.append(epoch)
            epoch *= halving.eta
        rungs.append(most)
        alive = list(trials)
        for number, rung in enumerate(rungs):
            self.train_to({trial.index: min(rung, trial.epochs) for trial in alive})
            # rank by validation log loss at the trial's last epoch (non-finite last), then spec order
            losses = [self.logs[trial.index].val_loss[-1] for trial in alive]
            ranking = sorted(range(len(alive)), key=lambda k: (losses[k] if math.isfinite(losses[k]) else math.inf, alive[k].index))
            final = number == len(rungs) - 1
            # trials marked keep (a baseline) always go on and take no place of the others
            contenders = [k for k in ranking if not alive[k].keep]
            places = len(contenders) if final else max(1, len(contenders) // halving.eta)
            going = set(contenders[:places]) | {k for k in ranking if alive[k].keep}
            kept = sorted((alive[k] for k in going), key=lambda trial: trial.index)
            stopped = [alive[k] for k in ranking if k not in going]
            for trial in stopped:
                self.stopped[trial.index] = {'rung': number, 'epoch': self.logs[trial.index].epochs}
            self.rungs.append(
                {
                    'rung': number,
                    'epoch': rung,
                    'entered': [trial.id for trial in alive],
                    'kept': [trial.id for trial in kept],
                    'stopped': [trial.id for trial in stopped],
                    'valLoss': {alive[k].id: losses[k] for k in ranking},
                }
            )
            self.log(f'rung {number} at epoch {rung}: kept {len(kept)} of {len(alive)}')
            alive = kept

    # -- results ----------------------------------------------------------------------------------

    def final_params(self) -> list[dict[str, np.ndarray]]:
        """Each trial's trained weights at its own size, as numpy arrays, in spec order."""
        out: list[dict[str, np.ndarray]] = [{} for _ in self.spec.trials]
        for group in self.groups:
            for position, trial in enumerate(group.trials):
                mine = {name: value[position].copy() for name, value in group.states['params'].items()}
                out[trial.index] = model.unpad_params(mine, trial.hidden)
        return out

    def split_scores(self) -> dict[str, np.ndarray]:
        """float32 scores [trials (spec order), rows] for each split."""
        result: dict[str, np.ndarray] = {}
        for split in self.splits:
            rows = self.splits[split][1].shape[0]
            scores = np.zeros((len(self.spec.trials), rows), np.float32)
            for group in self.groups:
                params = jax.device_put(group.states['params'], self.device)
                masks = jax.device_put(group.hypers['mask'], self.device)
                block = self.score(params, masks, split)
                for position, trial in enumerate(group.trials):
                    scores[trial.index] = block[position]
            result[split] = scores
        return result


def network_json(features: tuple[str, ...], mean: np.ndarray, std: np.ndarray, params: dict[str, np.ndarray]) -> dict[str, Any]:
    """The TS ScoringNetwork: mean, std and DenseLayer[] (kernels row-major [inputs][outputs])."""
    layers = [('w1', 'b1'), ('w2', 'b2')] if 'w2' in params else [('w1', 'b1')]
    out = []
    for number, (kernel, bias) in enumerate(layers):
        weights = np.ascontiguousarray(params[kernel], np.float32)
        out.append(
            {
                'inputs': int(weights.shape[0]),
                'outputs': int(weights.shape[1]),
                'activation': 'sigmoid' if number == len(layers) - 1 else 'relu',
                'weights': b64_float32(weights),
                'bias': b64_float32(params[bias]),
            }
        )
    return {'features': list(features), 'mean': b64_float32(mean), 'std': b64_float32(std), 'layers': out}


def device_facts(device: Any, requested: str) -> dict[str, Any]:
    return {
        'requested': requested,
        'platform': device.platform,
        'kind': device.device_kind,
        'name': str(device),
        'count': len(jax.devices(device.platform)),
    }


def train(dataset: Dataset, spec: Spec, device: Any, requested: str = 'auto', log: Callable[[str], None] | None = None) -> tuple[dict[str, Any], dict[str, np.ndarray]]:
    """Trains every trial; returns the result document and the split scores [trials, rows]."""
    started = time.perf_counter()
    trainer = Trainer(dataset, spec, device, log)
    trainer.run()
    params = trainer.final_params()
    scores = trainer.split_scores()
    trials_out = []
    for trial in spec.trials:
        log_entry = trainer.logs[trial.index]
        stop = trainer.stopped.get(trial.index)
        metrics = {name: evaluate(values[trial.index], trainer.splits[name][1]) for name, values in scores.items()}
        trials_out.append(
            {
                'id': trial.id,
                'index': trial.index,
                'config': trial.config(),
                'status': 'stopped' if stop else 'completed',
                'epochsTrained': log_entry.epochs,
                'stoppedAtEpoch': stop['epoch'] if stop else None,
                'stoppedAtRung': stop['rung'] if stop else None,
                'network': network_json(spec.features, trainer.mean, trainer.std, params[trial.index]),
                'trainLoss': log_entry.train_loss,
                'valLoss': log_entry.val_loss if 'validation' in trainer.splits else None,
                'validation': metrics.get('validation'),
                'test': metrics.get('test'),
                'seconds': log_entry.seconds,
                'wallSeconds': log_entry.wall_seconds,
            }
        )
    total = time.perf_counter() - started
    halving = spec.successive_halving
    result = {
        'version': RESULT_VERSION,
        'status': 'ok',
        'encoding': 'base64-float32-le',
        'trainer': {'name': 'sluice_jax', 'version': __version__},
        'jax': {'version': jax.__version__, 'jaxlib': _jaxlib_version(), 'numpy': np.__version__, 'x64': jnp.asarray(1.0).dtype == jnp.float64},
        'device': device_facts(device, requested),
        'host': {'python': platform.python_version(), 'system': platform.platform(), 'machine': platform.machine(), 'cpus': _cpu_count()},
        'datasetSha256': dataset.dataset_sha256,
        'specSha256': dataset.spec_sha256,
        'arrays': dataset.arrays,
        'features': list(spec.features),
        'rows': {'train': trainer.rows, 'validation': int(dataset.X_val.shape[0]) if dataset.X_val is not None else None, 'test': int(dataset.X_test.shape[0]) if dataset.X_test is not None else None},
        'standardization': {'mean': b64_float32(trainer.mean), 'std': b64_float32(trainer.std)},
        'groups': [group.describe() for group in trainer.groups],
        'successiveHalving': {'minEpochs': halving.min_epochs, 'eta': halving.eta, 'rungs': trainer.rungs} if halving else None,
        'timing': {
            'totalSeconds': total,
            'setupSeconds': trainer.setup_seconds,
            'compileSeconds': trainer.programs.compile_seconds,
            'compiles': trainer.programs.compiles,
            'trainSeconds': trainer.train_seconds,
            'evalSeconds': trainer.eval_seconds,
            'trialsPerSecond': len(spec.trials) / total if total > 0 else None,
            'trainTrialsPerSecond': len(spec.trials) / trainer.train_seconds if trainer.train_seconds > 0 else None,
        },
        'trials': trials_out,
    }
    return result, scores


def _jaxlib_version() -> str | None:
    try:
        import jaxlib

        return getattr(jaxlib, '__version__', None)
    except ImportError:
        return None


def _cpu_count() -> int | None:
    return os.cpu_count()


__all__ = ['ContractError', 'DeviceError', 'select_device', 'standardization', 'standardize', 'train', 'Trainer']
