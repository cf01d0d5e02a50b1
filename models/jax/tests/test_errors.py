"""Malformed input is refused with a message naming the problem, and a non-zero exit status."""
from __future__ import annotations

import json
import os
import subprocess
import sys

import numpy as np
import pytest

from conftest import ROOT, make_arrays, spec_json, trial, write_inputs
from sluice_jax.contract import ContractError, npy_bytes, read_dataset, read_spec

SMALL = make_arrays(rows=40, features=3, val=10, test=0)


def load(directory):
    spec, digest = read_spec(str(directory))
    return read_dataset(str(directory), spec, digest)


def good_spec(**extra):
    return spec_json([trial('a', 'logistic')], features=3, **extra)


def tweak_trial(**changes):
    entry = trial('a', 'logistic')
    entry.update(changes)
    return spec_json([entry], features=3)


SPEC_CASES = [
    (spec_json([], features=3), 'trials must be a non-empty list'),
    ({**good_spec(), 'version': 2}, 'version must be 1'),
    ({**good_spec(), 'extra': 1}, 'unknown field'),
    (tweak_trial(learning_rate=0.1), 'unknown field'),
    (tweak_trial(kind='tree'), 'kind must be one of'),
    (tweak_trial(keep=1), 'keep must be true or false'),
    (tweak_trial(batchSize=0), 'batchSize must be in'),
    (tweak_trial(epochs=2.5), 'epochs must be an integer'),
    (tweak_trial(seed=-1), 'seed must be in'),
    (tweak_trial(learningRate=-0.1), 'learningRate must be a finite number > 0'),
    (tweak_trial(l2='big'), 'l2 must be a finite number'),
    (spec_json([trial('a', hidden=0)], features=3), 'hidden must be in'),
    (spec_json([trial('a'), trial('a')], features=3), 'appears more than once'),
    (spec_json([{'kind': 'mlp'}], features=3), 'lacks "id"'),
    (spec_json([trial('a')], features=4), 'columns but spec.json names 4 features'),
    ({**good_spec(), 'features': ['f0', 'f0', 'f1']}, 'features must be unique'),
    (good_spec(device='tpu'), 'device must be one of'),
    (good_spec(successiveHalving={'minEpochs': 1, 'eta': 1}), 'eta must be in'),
]


@pytest.mark.parametrize(('spec', 'message'), SPEC_CASES)
def test_bad_spec(tmp_path, spec, message):
    write_inputs(tmp_path, SMALL, spec)
    with pytest.raises(ContractError, match=message):
        load(tmp_path)


def test_spec_not_json_and_missing(tmp_path):
    write_inputs(tmp_path, SMALL, good_spec())
    (tmp_path / 'spec.json').write_text('{"version": 1,')
    with pytest.raises(ContractError, match='not valid JSON'):
        load(tmp_path)
    (tmp_path / 'spec.json').unlink()
    with pytest.raises(ContractError, match='spec.json: cannot read'):
        load(tmp_path)


def write_raw(directory, name, data):
    (directory / f'{name}.npy').write_bytes(data)


ARRAY_CASES = [
    ('X', lambda: npy_bytes(SMALL['X'])[:-4], 'data bytes'),
    ('X', lambda: b'not a numpy file at all', 'bad magic'),
    ('X', lambda: _saved(SMALL['X'].astype(np.float64)), "little-endian float32"),
    ('X', lambda: _saved(np.asfortranarray(SMALL['X'])), 'C order'),
    ('X', lambda: _saved(SMALL['X'].astype('>f4')), 'little-endian float32'),
    ('X', lambda: npy_bytes(SMALL['X'][:, 0]), '2-D'),
    ('y', lambda: npy_bytes(SMALL['y'][:-1]), 'must be 1-D with 40 rows'),
    ('y', lambda: npy_bytes(np.where(np.arange(40) == 5, 2, SMALL['y']).astype(np.float32)), 'labels must be 0 or 1, row 5'),
    ('y', lambda: npy_bytes(np.where(np.arange(40) == 3, np.nan, SMALL['y']).astype(np.float32)), 'labels must be 0 or 1, row 3'),
]


def _saved(array):
    import io

    buffer = io.BytesIO()
    np.save(buffer, array)
    return buffer.getvalue()


@pytest.mark.parametrize(('name', 'make', 'message'), ARRAY_CASES)
def test_bad_arrays(tmp_path, name, make, message):
    write_inputs(tmp_path, SMALL, good_spec())
    write_raw(tmp_path, name, make())
    with pytest.raises(ContractError, match=message):
        load(tmp_path)


def test_missing_and_unpaired_files(tmp_path):
    write_inputs(tmp_path, SMALL, good_spec())
    (tmp_path / 'y_val.npy').unlink()
    with pytest.raises(ContractError, match='X_val.npy and y_val.npy must be given together'):
        load(tmp_path)
    (tmp_path / 'X_val.npy').unlink()
    (tmp_path / 'spec.json').write_text(json.dumps(good_spec(successiveHalving={'minEpochs': 1, 'eta': 3})))
    with pytest.raises(ContractError, match='successiveHalving needs a validation split'):
        load(tmp_path)
    (tmp_path / 'X.npy').unlink()
    with pytest.raises(ContractError, match='X: cannot read'):
        load(tmp_path)


def test_command_line_exit_status(tmp_path):
    bad = tweak_trial(kind='tree')
    write_inputs(tmp_path / 'in', SMALL, bad)
    process = subprocess.run([sys.executable, '-m', 'sluice_jax', '--data', str(tmp_path / 'in'), '--out', str(tmp_path / 'out')], cwd=ROOT, capture_output=True, text=True, timeout=120)
    assert process.returncode == 2
    assert 'sluice_jax: invalid input: spec.json: trial "a": kind must be one of' in process.stderr
    assert not (tmp_path / 'out' / 'result.json').exists()
    process = subprocess.run([sys.executable, '-m', 'sluice_jax', '--out', str(tmp_path / 'out')], cwd=ROOT, capture_output=True, text=True, timeout=120)
    assert process.returncode == 2 and '--data' in process.stderr


def test_gpu_requested_without_one(tmp_path):
    write_inputs(tmp_path / 'in', SMALL, good_spec(device='gpu'))
    environment = {**os.environ, 'JAX_PLATFORMS': 'cpu'}
    process = subprocess.run([sys.executable, '-m', 'sluice_jax', '--data', str(tmp_path / 'in'), '--out', str(tmp_path / 'out')], cwd=ROOT, capture_output=True, text=True, timeout=120, env=environment)
    assert process.returncode == 3
    assert 'device "gpu" requested' in process.stderr



def test_watch_stdin_exits_when_the_parent_is_gone(tmp_path):
    write_inputs(tmp_path / 'in', SMALL, good_spec())
    command = [sys.executable, '-m', 'sluice_jax', '--data', str(tmp_path / 'in'), '--out', str(tmp_path / 'out'), '--watch-stdin']
    # stdin already closed: the parent is gone before training ends, so the trainer leaves at once
    gone = subprocess.run(command, cwd=ROOT, capture_output=True, text=True, timeout=120, stdin=subprocess.DEVNULL)
    assert gone.returncode == 4
    assert not (tmp_path / 'out' / 'result.json').exists()
    # stdin held open (a live parent): it trains as usual
    process = subprocess.Popen(command, cwd=ROOT, stdin=subprocess.PIPE, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        assert process.wait(timeout=120) == 0
    finally:
        process.stdin.close()
        process.kill()
    assert (tmp_path / 'out' / 'result.json').exists()
