"""Training semantics: determinism, vmapped trials equal to trials alone, padded units, successive
halving, and numpy references for the loss, Adam, the row order and the standardization."""
from __future__ import annotations

import numpy as np

from conftest import make_arrays, only, run_inprocess, spec_json, trial, weights_of
from sluice_jax import model
from sluice_jax.contract import Dataset, describe, parse_spec
from sluice_jax.train import Trainer, group_key, hidden_bucket, select_device, standardization, standardize

TOLERANCE = 1e-6


def max_difference(left, right):
    return max(float(np.max(np.abs(a - b))) for a, b in zip(weights_of(left), weights_of(right)))


def test_rerun_is_bit_identical(arrays):
    spec = spec_json([trial('m', hidden=5, seed=1), trial('l', 'logistic', seed=2, l2=0.01)], successiveHalving={'minEpochs': 1, 'eta': 2})
    first, first_scores = run_inprocess(arrays, spec)
    second, second_scores = run_inprocess(arrays, spec)
    for one, two in zip(first['trials'], second['trials']):
        assert one['network'] == two['network']
        assert one['trainLoss'] == two['trainLoss'] and one['valLoss'] == two['valLoss']
        assert one['validation'] == two['validation'] and one['test'] == two['test']
        assert one['status'] == two['status'] and one['epochsTrained'] == two['epochsTrained']
    for split in first_scores:
        assert first_scores[split].tobytes() == second_scores[split].tobytes()


def test_vmapped_trials_equal_trials_alone():
    arrays = make_arrays(rows=500, val=0, test=0, seed=3)
    trials = [
        trial('l1', 'logistic', seed=1, learningRate=0.05),
        trial('l2', 'logistic', seed=2, learningRate=0.01, l2=0.01),
        trial('m5', hidden=5, seed=3, learningRate=0.02, l2=0.001),
        trial('m8', hidden=8, seed=4, learningRate=0.01),
        trial('m7', hidden=7, seed=3, learningRate=0.005, l2=0.01),
    ]
    spec = parse_spec(spec_json(trials))
    dataset = Dataset(**arrays)
    describe(dataset)
    together = Trainer(dataset, spec, select_device('cpu'))
    together.run()
    # one vmap for the logistic trials, one for the MLPs, padded to 8 hidden units
    assert [(group.kind, group.width, len(group.trials)) for group in together.groups] == [('logistic', 1, 2), ('mlp', 8, 3)]
    mlp = together.groups[1]
    for position, entry in enumerate(mlp.trials):
        for state in ('params', 'm', 'v'):
            tree = mlp.states[state]
            assert not tree['w1'][position][:, entry.hidden :].any() and not tree['b1'][position][entry.hidden :].any()
            assert not tree['w2'][position][entry.hidden :].any()
    params = together.final_params()
    for entry in trials:
        alone, _ = run_inprocess(arrays, spec_json([entry]))
        index = [item['id'] for item in trials].index(entry['id'])
        for name, value in params[index].items():
            expected = {'w1': 0, 'b1': 1, 'w2': 2, 'b2': 3}[name]
            np.testing.assert_allclose(value, weights_of(alone['trials'][0])[expected], rtol=0, atol=TOLERANCE)
        np.testing.assert_allclose(together.logs[index].train_loss, alone['trials'][0]['trainLoss'], rtol=0, atol=TOLERANCE)


def test_grouping():
    assert [hidden_bucket(size) for size in (1, 2, 3, 5, 8, 9, 16, 17)] == [1, 2, 4, 8, 8, 16, 16, 32]
    spec = parse_spec(spec_json([trial('a', hidden=9), trial('b', hidden=16), trial('c', hidden=17), trial('d', hidden=9, batchSize=32), trial('e', 'logistic', batchSize=5000)]))
    keys = [group_key(entry, rows=600) for entry in spec.trials]
    assert keys == [('mlp', 64, 16), ('mlp', 64, 16), ('mlp', 64, 32), ('mlp', 32, 16), ('logistic', 600, 1)]


def test_successive_halving_keeps_the_best():
    arrays = make_arrays(rows=400, val=150, test=0, seed=5)
    rates = [0.0001, 0.05, 0.002, 0.03, 0.0005, 0.01, 0.1, 0.001, 0.02]
    trials = [trial(f't{index}', 'logistic', learningRate=rate, seed=11, epochs=6) for index, rate in enumerate(rates)]
    result, _ = run_inprocess(arrays, spec_json(trials, successiveHalving={'minEpochs': 1, 'eta': 3}))
    full, _ = run_inprocess(arrays, spec_json(trials))
    by_id = {entry['id']: entry for entry in result['trials']}
    rungs = result['successiveHalving']['rungs']
    assert [rung['epoch'] for rung in rungs] == [1, 3, 6]
    alive = [entry['id'] for entry in trials]
    for rung, keep in zip(rungs, (3, 1, 1)):
        assert rung['entered'] == alive
        if rung['epoch'] == 6:
            assert rung['kept'] == alive and rung['stopped'] == []
            break
        losses = {trial_id: by_id[trial_id]['valLoss'][rung['epoch'] - 1] for trial_id in alive}
        ranked = sorted(alive, key=lambda trial_id: losses[trial_id])
        assert set(rung['kept']) == set(ranked[:keep]) and rung['stopped'] == ranked[keep:]
        for trial_id in rung['stopped']:
            entry = by_id[trial_id]
            assert entry['status'] == 'stopped' and entry['epochsTrained'] == rung['epoch']
            assert entry['stoppedAtEpoch'] == rung['epoch'] and entry['stoppedAtRung'] == rung['rung']
            assert len(entry['trainLoss']) == rung['epoch']
        alive = [trial_id for trial_id in alive if trial_id in rung['kept']]
    (winner,) = alive
    assert by_id[winner]['status'] == 'completed' and by_id[winner]['epochsTrained'] == 6
    # halving only stops trials: what they trained is what they train without it
    for entry, reference in zip(result['trials'], full['trials']):
        epochs = entry['epochsTrained']
        np.testing.assert_allclose(entry['valLoss'], reference['valLoss'][:epochs], rtol=0, atol=TOLERANCE)
    stopped_early = by_id[rungs[0]['stopped'][0]]
    alone, _ = run_inprocess(arrays, spec_json([{**trials[stopped_early['index']], 'epochs': 1}]))
    assert max_difference(stopped_early, alone['trials'][0]) <= TOLERANCE


def test_a_kept_trial_is_never_stopped_and_takes_no_place():
    arrays = make_arrays(rows=400, val=150, test=0, seed=5)
    rates = [0.0001, 0.05, 0.002, 0.03, 0.0005, 0.01, 0.1]
    # the worst learning rate, kept: it trains to the end, and the other six still keep two places
    trials = [trial('baseline', 'logistic', learningRate=0.00001, seed=11, epochs=6, keep=True)]
    trials += [trial(f't{index}', 'logistic', learningRate=rate, seed=11, epochs=6) for index, rate in enumerate(rates)]
    result, _ = run_inprocess(arrays, spec_json(trials, successiveHalving={'minEpochs': 1, 'eta': 3}))
    by_id = {entry['id']: entry for entry in result['trials']}
    first = result['successiveHalving']['rungs'][0]
    assert first['valLoss'] and next(iter(first['valLoss'])) != 'baseline'
    assert list(first['valLoss'])[-1] == 'baseline'  # ranked last, yet kept
    assert 'baseline' in first['kept'] and len(first['kept']) == 1 + 6 // 3
    assert by_id['baseline']['status'] == 'completed' and by_id['baseline']['epochsTrained'] == 6
    assert by_id['baseline']['config']['keep'] is True and by_id['t0']['config']['keep'] is False


def sigmoid(x):
    return 1 / (1 + np.exp(-x))


def reference_standardize(X):
    mean = np.nanmean(X.astype(np.float64), axis=0).astype(np.float32)
    std = np.nanstd(X.astype(np.float64), axis=0)
    std = np.where(std > 1e-9, std, 1).astype(np.float32)
    return (np.where(np.isnan(X), mean, X) - mean) / std


def test_first_adam_step_of_a_logistic_regression_matches_numpy(arrays):
    lr, l2, seed = 0.01, 0.01, 9
    result, _ = run_inprocess(only(arrays, 'X', 'y'), spec_json([trial('l', 'logistic', learningRate=lr, l2=l2, seed=seed, batchSize=100000, epochs=1)]))
    z = reference_standardize(arrays['X']).astype(np.float64)
    y = arrays['y'].astype(np.float64)
    start = model.init_params('logistic', 4, None, seed)
    w0, b0 = start['w1'].astype(np.float64)[:, 0], start['b1'].astype(np.float64)
    p = sigmoid(z @ w0 + b0)
    loss = -np.mean(y * np.log(p) + (1 - y) * np.log(1 - p)) + l2 * np.sum(w0**2)
    grad_w = z.T @ (p - y) / y.size + 2 * l2 * w0
    grad_b = np.array([np.mean(p - y)])
    # Adam's first step: m_hat = g, v_hat = g^2
    expected_w = w0 - lr * grad_w / (np.abs(grad_w) + 1e-7)
    expected_b = b0 - lr * grad_b / (np.abs(grad_b) + 1e-7)
    kernel, bias = weights_of(result['trials'][0])
    np.testing.assert_allclose(kernel[:, 0], expected_w, rtol=0, atol=1e-6)
    np.testing.assert_allclose(bias, expected_b, rtol=0, atol=1e-6)
    assert abs(result['trials'][0]['trainLoss'][0] - loss) < 1e-5


def test_mlp_training_matches_a_numpy_reference(arrays):
    lr, l2, seed, hidden, batch, epochs = 0.01, 0.001, 21, 4, 64, 2
    rows = 300  # 5 batches, the last one of 44 rows
    data = {'X': arrays['X'][:rows], 'y': arrays['y'][:rows]}
    result, _ = run_inprocess(data, spec_json([trial('m', hidden=hidden, learningRate=lr, l2=l2, seed=seed, batchSize=batch, epochs=epochs)]))
    z = reference_standardize(data['X']).astype(np.float64)
    y = data['y'].astype(np.float64)
    order = model.row_order(seed, rows)
    assert sorted(order.tolist()) == list(range(rows))
    params = {name: value.astype(np.float64) for name, value in model.init_params('mlp', 4, hidden, seed).items()}
    m = {name: np.zeros_like(value) for name, value in params.items()}
    v = {name: np.zeros_like(value) for name, value in params.items()}
    step = 0
    epoch_losses = []
    for _ in range(epochs):
        total = 0.0
        for start in range(0, rows, batch):
            rows_in = order[start : start + batch]
            x, t = z[rows_in], y[rows_in]
            pre = x @ params['w1'] + params['b1']
            h = np.maximum(pre, 0)
            p = sigmoid(h @ params['w2'] + params['b2'])[:, 0]
            total += (-np.mean(t * np.log(p) + (1 - t) * np.log(1 - p)) + l2 * np.sum(params['w1'] ** 2)) * t.size
            d_out = ((p - t) / t.size)[:, None]
            d_hidden = (d_out @ params['w2'].T) * (pre > 0)
            grads = {'w1': x.T @ d_hidden + 2 * l2 * params['w1'], 'b1': d_hidden.sum(0), 'w2': h.T @ d_out, 'b2': d_out.sum(0)}
            step += 1
            for name, gradient in grads.items():
                m[name] = 0.9 * m[name] + 0.1 * gradient
                v[name] = 0.999 * v[name] + 0.001 * gradient**2
                params[name] = params[name] - lr * (m[name] / (1 - 0.9**step)) / (np.sqrt(v[name] / (1 - 0.999**step)) + 1e-7)
        epoch_losses.append(total / rows)
    for actual, name in zip(weights_of(result['trials'][0]), ('w1', 'b1', 'w2', 'b2')):
        np.testing.assert_allclose(actual, params[name], rtol=0, atol=2e-5)
    np.testing.assert_allclose(result['trials'][0]['trainLoss'], epoch_losses, rtol=0, atol=1e-5)


def test_missing_values_are_the_mean():
    X = np.array([[1, np.nan, 5, 2], [3, np.nan, 5, np.inf], [np.nan, np.nan, 5, 4], [8, np.nan, 5, np.nan]], np.float32)
    mean, std = standardization(X)
    np.testing.assert_array_equal(mean, np.array([4, 0, 5, 3], np.float32))
    np.testing.assert_array_equal(std, np.array([np.float32(np.std([1.0, 3.0, 8.0])), 1, 1, 1], np.float32))
    z = standardize(X, mean, std)
    assert np.all(z[~np.isfinite(X)] == 0) and np.all(np.isfinite(z))
    assert z[3, 0] == np.float32((np.float32(8) - np.float32(4)) / std[0])


def test_missing_values_end_to_end(arrays):
    data = dict(arrays)
    data['X'] = arrays['X'].copy()
    data['X'][:, 2] = np.nan  # a column with nothing in it
    X_val = arrays['X_val'].copy()
    X_val[:20, 1] = np.nan
    data['X_val'] = X_val
    result, scores = run_inprocess(data, spec_json([trial('m', epochs=2)]))
    entry = result['trials'][0]
    assert all(np.isfinite(array).all() for array in weights_of(entry))
    from conftest import decode_network

    mean, std, _ = decode_network(entry['network'])
    assert mean[2] == 0 and std[2] == 1
    filled = np.where(np.isfinite(X_val), X_val, mean)
    assert np.isnan(X_val).any()
    replaced = dict(data, X_val=filled.astype(np.float32))
    _, scores_filled = run_inprocess(replaced, spec_json([trial('m', epochs=2)]))
    assert scores['validation'].tobytes() == scores_filled['validation'].tobytes()


def test_batch_larger_than_the_data(arrays):
    result, _ = run_inprocess(only(arrays, 'X', 'y'), spec_json([trial('big', 'logistic', batchSize=10**6, epochs=2)]))
    assert result['groups'][0]['batchSize'] == 600 and result['groups'][0]['batches'] == 1
    assert result['trials'][0]['config']['batchSize'] == 10**6
