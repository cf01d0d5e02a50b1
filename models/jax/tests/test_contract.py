"""The file contract end to end: .npy files and spec.json in, result.json (and scores) out."""
from __future__ import annotations

import hashlib
import json
import subprocess
import sys

import numpy as np

from conftest import ROOT, decode_network, numpy_scores, run_inprocess, spec_json, trial, write_inputs
from sluice_jax.__main__ import main
from sluice_jax.contract import ARRAY_NAMES, npy_bytes, read_npy
from sluice_jax.metrics import evaluate


def test_npy_writer_is_format_1_0_and_numpy_reads_it(tmp_path):
    for array in (np.arange(12, dtype=np.float32).reshape(3, 4), np.array([1, 0, 1], np.float32), np.zeros((0, 3), np.float32)):
        data = npy_bytes(array)
        assert data[:8] == b'\x93NUMPY\x01\x00'
        assert (10 + int.from_bytes(data[8:10], 'little')) % 64 == 0
        (tmp_path / 'ours.npy').write_bytes(data)
        loaded = np.load(tmp_path / 'ours.npy')
        assert loaded.dtype == np.dtype('<f4') and loaded.shape == array.shape
        np.testing.assert_array_equal(loaded, array)
        np.save(tmp_path / 'numpy.npy', array)  # and numpy's own files are read
        np.testing.assert_array_equal(read_npy(str(tmp_path / 'numpy.npy'), 'X').array, array)


def test_command_line_round_trip(tmp_path, arrays):
    spec = spec_json([trial('a', 'logistic', l2=0.001), trial('b', hidden=6, seed=3), trial('c', learningRate=0.03)], writeScores=True)
    data = write_inputs(tmp_path / 'in', arrays, spec)
    out = tmp_path / 'out'
    process = subprocess.run(
        [sys.executable, '-m', 'sluice_jax', '--data', str(data), '--out', str(out), '--device', 'cpu'],
        cwd=ROOT, capture_output=True, text=True, timeout=300,
    )
    assert process.returncode == 0, process.stderr
    assert process.stdout.strip() == str(out / 'result.json')
    result = json.loads((out / 'result.json').read_text())

    # run-level facts
    assert (result['version'], result['status'], result['encoding']) == (1, 'ok', 'base64-float32-le')
    assert result['device']['requested'] == 'cpu' and result['device']['platform'] == 'cpu' and result['device']['kind']
    assert result['jax']['version'] and result['host']['python']
    digest = hashlib.sha256()
    for name in ARRAY_NAMES:
        digest.update(arrays[name].astype('<f4').tobytes())
        assert result['arrays'][name] == {'shape': list(arrays[name].shape), 'sha256': hashlib.sha256(arrays[name].astype('<f4').tobytes()).hexdigest()}
    assert result['datasetSha256'] == digest.hexdigest()
    assert result['specSha256'] == hashlib.sha256((data / 'spec.json').read_bytes()).hexdigest()
    assert result['features'] == spec['features']
    assert result['rows'] == {'train': 600, 'validation': 200, 'test': 150}
    timing = result['timing']
    assert timing['totalSeconds'] > 0 and timing['compileSeconds'] >= 0 and timing['trainSeconds'] > 0
    assert timing['trialsPerSecond'] > 0
    assert result['successiveHalving'] is None

    # the trials
    assert [entry['id'] for entry in result['trials']] == ['a', 'b', 'c']
    scores_val = np.load(out / 'scores_val.npy')
    scores_test = np.load(out / 'scores_test.npy')
    assert scores_val.shape == (3, 200) and scores_val.dtype == np.float32 and scores_test.shape == (3, 150)
    for index, entry in enumerate(result['trials']):
        assert entry['index'] == index and entry['status'] == 'completed' and entry['epochsTrained'] == 3
        assert entry['stoppedAtEpoch'] is None and entry['stoppedAtRung'] is None
        assert len(entry['trainLoss']) == 3 and len(entry['valLoss']) == 3
        assert entry['seconds'] >= 0 and entry['wallSeconds'] >= entry['seconds']
        assert entry['config']['seed'] == spec['trials'][index]['seed']
        mean, std, layers = decode_network(entry['network'])
        assert entry['network']['mean'] == result['standardization']['mean'] and entry['network']['std'] == result['standardization']['std']
        assert mean.shape == std.shape == (4,)
        if entry['config']['kind'] == 'logistic':
            assert [(kernel.shape, bias.shape, activation) for kernel, bias, activation in layers] == [((4, 1), (1,), 'sigmoid')]
        else:
            hidden = entry['config']['hidden']
            assert [(kernel.shape, bias.shape, activation) for kernel, bias, activation in layers] == [((4, hidden), (hidden,), 'relu'), ((hidden, 1), (1,), 'sigmoid')]
        # the weights, read as the TS side reads them, score as the trainer scored
        np.testing.assert_allclose(numpy_scores(entry['network'], arrays['X_val']), scores_val[index], atol=2e-6)
        for split, scores, labels in (('validation', scores_val, arrays['y_val']), ('test', scores_test, arrays['y_test'])):
            expected = evaluate(scores[index], labels)
            assert entry[split] == expected
            assert entry[split]['rows'] == labels.size
        assert abs(entry['valLoss'][-1] - entry['validation']['logLoss']) < 1e-12

    # a fresh process and this one train bit-identically
    again, _ = run_inprocess(arrays, spec)
    for ours, theirs in zip(result['trials'], again['trials']):
        assert ours['network'] == theirs['network']
        assert ours['trainLoss'] == theirs['trainLoss'] and ours['valLoss'] == theirs['valLoss']


def test_file_prefix_and_no_optional_splits(tmp_path, arrays, capsys):
    spec = spec_json([trial('only', 'logistic', epochs=1)])
    data = write_inputs(tmp_path / 'in', {'X': arrays['X'], 'y': arrays['y']}, spec, prefix='run7_')
    assert main(['--data', str(data / 'run7_'), '--out', str(tmp_path / 'out'), '--device', 'cpu', '--quiet']) == 0
    result = json.loads((tmp_path / 'out' / 'result.json').read_text())
    entry = result['trials'][0]
    assert entry['validation'] is None and entry['test'] is None and entry['valLoss'] is None
    assert result['rows'] == {'train': 600, 'validation': None, 'test': None}
    assert not (tmp_path / 'out' / 'scores_val.npy').exists()
    assert capsys.readouterr().err == ''
