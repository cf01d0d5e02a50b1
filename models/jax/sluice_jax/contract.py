"""The file contract (CONTRACT.md): reading and checking the inputs, writing the outputs.

Nothing here imports JAX, so the command line can read the spec (and choose the platform)
before JAX starts.
"""
from __future__ import annotations

import ast
import base64
import hashlib
import json
import math
import os
from dataclasses import dataclass, field
from typing import Any

import numpy as np

SPEC_VERSION = 1
RESULT_VERSION = 1
KINDS = ('logistic', 'mlp')
DEVICES = ('auto', 'cpu', 'gpu')
DEFAULT_HIDDEN = 16  # as models/trainer.ts
MAX_HIDDEN = 65536
MAX_EPOCHS = 1_000_000
MAX_SEED = 2**32 - 1
# Arrays in the order they enter the dataset hash.
ARRAY_NAMES = ('X', 'y', 'X_val', 'y_val', 'X_test', 'y_test')
TRIAL_KEYS = {'id', 'kind', 'hidden', 'learningRate', 'batchSize', 'epochs', 'l2', 'seed', 'keep'}
SPEC_KEYS = {'version', 'features', 'trials', 'device', 'successiveHalving', 'writeScores'}
NPY_MAGIC = b'\x93NUMPY'


class ContractError(Exception):
    """The input does not follow the contract; the message says what and where."""


# ---- the spec ---------------------------------------------------------------------------------


@dataclass(frozen=True)
class Trial:
    index: int
    id: str
    kind: str
    hidden: int | None  # None for logistic
    learning_rate: float
    batch_size: int
    epochs: int
    l2: float
    seed: int
    keep: bool = False  # never stopped by successive halving (a tuning run's baseline)

    def config(self) -> dict[str, Any]:
        """The trial as the spec would write it, defaults filled in."""
        return {
            'kind': self.kind,
            'hidden': self.hidden,
            'learningRate': self.learning_rate,
            'batchSize': self.batch_size,
            'epochs': self.epochs,
            'l2': self.l2,
            'seed': self.seed,
            'keep': self.keep,
        }


@dataclass(frozen=True)
class SuccessiveHalving:
    min_epochs: int
    eta: int


@dataclass(frozen=True)
class Spec:
    features: tuple[str, ...]
    trials: tuple[Trial, ...]
    device: str = 'auto'
    successive_halving: SuccessiveHalving | None = None
    write_scores: bool = False


def _is_int(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def _is_number(value: Any) -> bool:
    return (isinstance(value, (int, float)) and not isinstance(value, bool)) and math.isfinite(value)


def _integer(where: str, value: Any, low: int, high: int) -> int:
    if not _is_int(value):
        raise ContractError(f'{where} must be an integer, got {json.dumps(value)}')
    if not low <= value <= high:
        raise ContractError(f'{where} must be in [{low}, {high}], got {value}')
    return value


def parse_trial(index: int, raw: Any) -> Trial:
    where = f'spec.json: trials[{index}]'
    if not isinstance(raw, dict):
        raise ContractError(f'{where} must be an object')
    unknown = sorted(set(raw) - TRIAL_KEYS)
    if unknown:
        raise ContractError(f'{where} has unknown field(s) {unknown}; allowed: {sorted(TRIAL_KEYS)}')
    for key in ('id', 'kind', 'learningRate', 'batchSize', 'epochs', 'seed'):
        if key not in raw:
            raise ContractError(f'{where} lacks "{key}"')
    trial_id = raw['id']
    if not isinstance(trial_id, str) or not trial_id:
        raise ContractError(f'{where}.id must be a non-empty string')
    where = f'spec.json: trial "{trial_id}"'
    kind = raw['kind']
    if kind not in KINDS:
        raise ContractError(f'{where}: kind must be one of {list(KINDS)}, got {json.dumps(kind)}')
    hidden = None
    if kind == 'mlp':
        hidden = _integer(f'{where}: hidden', raw.get('hidden', DEFAULT_HIDDEN), 1, MAX_HIDDEN)
    elif 'hidden' in raw and raw['hidden'] is not None:
        _integer(f'{where}: hidden', raw['hidden'], 1, MAX_HIDDEN)  # checked, unused by logistic
    learning_rate = raw['learningRate']
    if not _is_number(learning_rate) or learning_rate <= 0:
        raise ContractError(f'{where}: learningRate must be a finite number > 0, got {json.dumps(learning_rate)}')
    l2 = raw.get('l2', 0)
    if not _is_number(l2) or l2 < 0:
        raise ContractError(f'{where}: l2 must be a finite number >= 0, got {json.dumps(l2)}')
    keep = raw.get('keep', False)
    if not isinstance(keep, bool):
        raise ContractError(f'{where}: keep must be true or false, got {json.dumps(keep)}')
    return Trial(
        index=index,
        id=trial_id,
        kind=kind,
        hidden=hidden,
        learning_rate=float(learning_rate),
        batch_size=_integer(f'{where}: batchSize', raw['batchSize'], 1, 2**31 - 1),
        epochs=_integer(f'{where}: epochs', raw['epochs'], 1, MAX_EPOCHS),
        l2=float(l2),
        seed=_integer(f'{where}: seed', raw['seed'], 0, MAX_SEED),
        keep=keep,
    )


def parse_spec(raw: Any) -> Spec:
    if not isinstance(raw, dict):
        raise ContractError('spec.json must hold a JSON object')
    unknown = sorted(set(raw) - SPEC_KEYS)
    if unknown:
        raise ContractError(f'spec.json has unknown field(s) {unknown}; allowed: {sorted(SPEC_KEYS)}')
    if raw.get('version') != SPEC_VERSION:
        raise ContractError(f'spec.json: version must be {SPEC_VERSION}, got {json.dumps(raw.get("version"))}')
    features = raw.get('features')
    if not isinstance(features, list) or not features or not all(isinstance(name, str) and name for name in features):
        raise ContractError('spec.json: features must be a non-empty list of non-empty strings')
    if len(set(features)) != len(features):
        raise ContractError('spec.json: features must be unique')
    trials_raw = raw.get('trials')
    if not isinstance(trials_raw, list) or not trials_raw:
        raise ContractError('spec.json: trials must be a non-empty list')
    trials = tuple(parse_trial(index, trial) for index, trial in enumerate(trials_raw))
    seen: set[str] = set()
    for trial in trials:
        if trial.id in seen:
            raise ContractError(f'spec.json: trial id "{trial.id}" appears more than once')
        seen.add(trial.id)
    device = raw.get('device', 'auto')
    if device not in DEVICES:
        raise ContractError(f'spec.json: device must be one of {list(DEVICES)}, got {json.dumps(device)}')
    halving = None
    sh = raw.get('successiveHalving')
    if sh is not None:
        if not isinstance(sh, dict) or set(sh) - {'minEpochs', 'eta'}:
            raise ContractError('spec.json: successiveHalving must be an object {"minEpochs": int, "eta": int}')
        halving = SuccessiveHalving(
            min_epochs=_integer('spec.json: successiveHalving.minEpochs', sh.get('minEpochs'), 1, MAX_EPOCHS),
            eta=_integer('spec.json: successiveHalving.eta', sh.get('eta', 3), 2, 1_000_000),
        )
    write_scores = raw.get('writeScores', False)
    if not isinstance(write_scores, bool):
        raise ContractError('spec.json: writeScores must be true or false')
    return Spec(features=tuple(features), trials=trials, device=device, successive_halving=halving, write_scores=write_scores)


# ---- .npy files -----------------------------------------------------------------------------------


@dataclass
class NpyArray:
    array: np.ndarray  # float32, C order
    payload_sha256: str


def read_npy(path: str, name: str) -> NpyArray:
    """A little-endian float32 C-order .npy file (format 1.0, 2.0 or 3.0), checked strictly."""
    try:
        with open(path, 'rb') as handle:
            data = handle.read()
    except OSError as error:
        raise ContractError(f'{name}: cannot read {path}: {error.strerror or error}') from None
    if len(data) < 10 or data[:6] != NPY_MAGIC:
        raise ContractError(f'{name}: {path} is not a .npy file (bad magic)')
    major, minor = data[6], data[7]
    if major == 1:
        header_len, start = int.from_bytes(data[8:10], 'little'), 10
    elif major in (2, 3):
        if len(data) < 12:
            raise ContractError(f'{name}: {path} is truncated')
        header_len, start = int.from_bytes(data[8:12], 'little'), 12
    else:
        raise ContractError(f'{name}: {path} has unsupported .npy version {major}.{minor}')
    offset = start + header_len
    if offset > len(data):
        raise ContractError(f'{name}: {path} is truncated inside its header')
    try:
        header = ast.literal_eval(data[start:offset].decode('latin1' if major < 3 else 'utf8'))
    except (ValueError, SyntaxError, UnicodeDecodeError):
        raise ContractError(f'{name}: {path} has an unreadable header') from None
    if not isinstance(header, dict) or set(header) != {'descr', 'fortran_order', 'shape'}:
        raise ContractError(f'{name}: {path} header must be a dict with descr, fortran_order, shape')
    if header['descr'] != '<f4':
        raise ContractError(f"{name}: {path} must hold little-endian float32 ('<f4'), got {header['descr']!r}")
    if header['fortran_order'] is not False:
        raise ContractError(f'{name}: {path} must be in C order (fortran_order False)')
    shape = header['shape']
    if not isinstance(shape, tuple) or not all(_is_int(dim) and dim >= 0 for dim in shape):
        raise ContractError(f'{name}: {path} has a bad shape {shape!r}')
    count = int(np.prod(shape, dtype=np.int64)) if shape else 1
    payload = data[offset:]
    if len(payload) != count * 4:
        raise ContractError(f'{name}: {path} holds {len(payload)} data bytes, shape {shape} needs {count * 4}')
    array = np.frombuffer(payload, dtype='<f4').reshape(shape).astype(np.float32, copy=True)
    return NpyArray(array=array, payload_sha256=hashlib.sha256(payload).hexdigest())


def npy_bytes(array: np.ndarray) -> bytes:
    """A float32 array as .npy format 1.0 bytes (what CONTRACT.md asks writers to produce)."""
    array = np.ascontiguousarray(array, dtype='<f4')
    shape = repr(tuple(int(dim) for dim in array.shape))  # '(5,)', '(5, 3)'
    header = "{'descr': '<f4', 'fortran_order': False, 'shape': " + shape + ', }'
    total = 10 + len(header) + 1
    header += ' ' * ((64 - total % 64) % 64) + '\n'
    return NPY_MAGIC + bytes([1, 0]) + len(header).to_bytes(2, 'little') + header.encode('latin1') + array.tobytes()


def write_npy(path: str, array: np.ndarray) -> None:
    with open(path, 'wb') as handle:
        handle.write(npy_bytes(array))


# ---- the data set -----------------------------------------------------------------------------


@dataclass
class Dataset:
    X: np.ndarray
    y: np.ndarray
    X_val: np.ndarray | None = None
    y_val: np.ndarray | None = None
    X_test: np.ndarray | None = None
    y_test: np.ndarray | None = None
    arrays: dict[str, dict[str, Any]] = field(default_factory=dict)
    dataset_sha256: str = ''
    spec_sha256: str | None = None


def data_base(data: str) -> str:
    """Files are `<dir>/X.npy` when `data` is a directory, else `<data>X.npy` (a prefix)."""
    return os.path.join(data, '') if os.path.isdir(data) else data


def read_spec(data: str) -> tuple[Spec, str]:
    path = data_base(data) + 'spec.json'
    try:
        with open(path, 'rb') as handle:
            raw_bytes = handle.read()
    except OSError as error:
        raise ContractError(f'spec.json: cannot read {path}: {error.strerror or error}') from None
    try:
        raw = json.loads(raw_bytes.decode('utf8'))
    except (UnicodeDecodeError, json.JSONDecodeError) as error:
        raise ContractError(f'spec.json: {path} is not valid JSON: {error}') from None
    return parse_spec(raw), hashlib.sha256(raw_bytes).hexdigest()


def check_dataset(dataset: Dataset, spec: Spec) -> None:
    """Shapes, labels and the validation split against the spec; raises ContractError."""
    width = len(spec.features)
    pairs = (('X', 'y', dataset.X, dataset.y), ('X_val', 'y_val', dataset.X_val, dataset.y_val), ('X_test', 'y_test', dataset.X_test, dataset.y_test))
    for x_name, y_name, X, y in pairs:
        if X is None and y is None:
            continue
        if X is None or y is None:
            raise ContractError(f'{x_name}.npy and {y_name}.npy must be given together')
        if X.ndim != 2:
            raise ContractError(f'{x_name}: must be 2-D [rows, features], got shape {X.shape}')
        if X.shape[1] != width:
            raise ContractError(f'{x_name}: has {X.shape[1]} columns but spec.json names {width} features')
        if y.ndim != 1 or y.shape[0] != X.shape[0]:
            raise ContractError(f'{y_name}: must be 1-D with {X.shape[0]} rows (as {x_name}), got shape {y.shape}')
        if X.shape[0] == 0:
            raise ContractError(f'{x_name}: has no rows')
        bad = ~((y == 0) | (y == 1))
        if bad.any():
            row = int(np.argmax(bad))
            raise ContractError(f'{y_name}: labels must be 0 or 1, row {row} holds {float(y[row])!r}')
    if spec.successive_halving is not None and dataset.X_val is None:
        raise ContractError('successiveHalving needs a validation split (X_val.npy, y_val.npy)')


def read_dataset(data: str, spec: Spec, spec_sha256: str | None = None) -> Dataset:
    base = data_base(data)
    arrays: dict[str, NpyArray] = {}
    for name in ARRAY_NAMES:
        path = base + name + '.npy'
        if name in ('X', 'y') or os.path.exists(path):
            arrays[name] = read_npy(path, name)
    dataset = Dataset(
        X=arrays['X'].array,
        y=arrays['y'].array,
        X_val=arrays['X_val'].array if 'X_val' in arrays else None,
        y_val=arrays['y_val'].array if 'y_val' in arrays else None,
        X_test=arrays['X_test'].array if 'X_test' in arrays else None,
        y_test=arrays['y_test'].array if 'y_test' in arrays else None,
        spec_sha256=spec_sha256,
    )
    check_dataset(dataset, spec)
    describe(dataset)
    return dataset


def describe(dataset: Dataset) -> None:
    """Fills in the per-array hashes and the dataset hash (CONTRACT.md, "Dataset hash")."""
    digest = hashlib.sha256()
    arrays: dict[str, dict[str, Any]] = {}
    for name in ARRAY_NAMES:
        array = getattr(dataset, name)
        if array is None:
            continue
        payload = np.ascontiguousarray(array, dtype='<f4').tobytes()
        digest.update(payload)
        arrays[name] = {'shape': list(array.shape), 'sha256': hashlib.sha256(payload).hexdigest()}
    dataset.arrays = arrays
    dataset.dataset_sha256 = digest.hexdigest()


# ---- the result ---------------------------------------------------------------------------------


def b64_float32(values: np.ndarray) -> str:
    return base64.b64encode(np.ascontiguousarray(values, dtype='<f4').tobytes()).decode('ascii')


def float32_from_b64(text: str) -> np.ndarray:
    return np.frombuffer(base64.b64decode(text), dtype='<f4').astype(np.float32)


def json_safe(value: Any) -> Any:
    """Non-finite floats become null (JSON has no NaN); numpy scalars become Python numbers."""
    if isinstance(value, dict):
        return {key: json_safe(item) for key, item in value.items()}
    if isinstance(value, (list, tuple)):
        return [json_safe(item) for item in value]
    if isinstance(value, (np.floating, float)):
        number = float(value)
        return number if math.isfinite(number) else None
    if isinstance(value, np.integer):
        return int(value)
    if isinstance(value, np.bool_):
        return bool(value)
    return value


def write_json_atomic(path: str, value: Any) -> None:
    temporary = path + '.tmp'
    with open(temporary, 'w', encoding='utf8') as handle:
        json.dump(json_safe(value), handle, allow_nan=False, indent=1)
        handle.write('\n')
    os.replace(temporary, path)
