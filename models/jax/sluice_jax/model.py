"""The networks of models/trainer.ts in JAX: initialization, loss, Adam, and the vmapped epoch.

Written to follow TensorFlow.js step by step (see CONTRACT.md, "Training"):
- logistic: dense(1, sigmoid); mlp: dense(hidden, relu) -> dense(1, sigmoid);
- Glorot-uniform kernels (limit sqrt(6 / (fan_in + fan_out))), zero biases;
- loss as tf.losses binaryCrossentropy in tfjs-layers: p clipped to [eps, 1 - eps] (eps = 1e-7),
  turned back into a logit, sigmoid cross-entropy with logits, mean over the batch, plus
  l2 * sum(kernel0 ** 2) (tf.regularizers.l2 on the first layer's kernel);
- Adam as tf.train.adam(lr): beta1 0.9, beta2 0.999, epsilon 1e-7, bias correction with the
  running products beta^t kept in float32 as TF.js keeps them.

An MLP trial may be padded to more hidden units than it has (to share a vmap with wider trials):
padded units have zero kernel columns, bias and output weights and a zero mask; their activations
are exactly 0, their gradients exactly 0 (and masked), so Adam leaves them at 0 and the real units
compute what they would alone.
"""
from __future__ import annotations

from typing import Any, Callable

import jax
import jax.numpy as jnp
import numpy as np
from jax import lax

EPSILON = np.float32(1e-7)  # tf.backend().epsilon() for float32
CLIP_HIGH = np.float32(1 - 1e-7)
BETA1 = np.float32(0.9)
BETA2 = np.float32(0.999)
ONE_MINUS_BETA1 = np.float32(1 - 0.9)
ONE_MINUS_BETA2 = np.float32(1 - 0.999)
# Full float32 matrix products on GPUs too (no TF32), so that results track ONNX Runtime's Gemm.
PRECISION = lax.Precision.HIGHEST

Params = dict[str, Any]


# ---- initialization (per trial, on the host's CPU device, independent of any padding) ------------
#
# key = jax.random.PRNGKey(seed); order_key, layer1_key, layer2_key = jax.random.split(key, 3)
# row order = jax.random.permutation(order_key, rows); kernel i = uniform(layer i key, [in, out]).


def seed_key(seed: int, device: Any) -> Any:
    return jax.device_put(jax.random.PRNGKey(seed), device)


def _glorot(key: Any, fan_in: int, fan_out: int) -> Any:
    limit = np.float32(np.sqrt(6.0 / (fan_in + fan_out)))
    return jax.random.uniform(key, (fan_in, fan_out), jnp.float32, -limit, limit)


def _init(kind: str, features: int, hidden: int | None) -> Callable[[Any], Params]:
    def init(key: Any) -> Params:
        _, key1, key2 = jax.random.split(key, 3)
        if kind == 'mlp':
            assert hidden is not None
            return {
                'w1': _glorot(key1, features, hidden),
                'b1': jnp.zeros((hidden,), jnp.float32),
                'w2': _glorot(key2, hidden, 1),
                'b2': jnp.zeros((1,), jnp.float32),
            }
        return {'w1': _glorot(key1, features, 1), 'b1': jnp.zeros((1,), jnp.float32)}

    return jax.jit(init)


_INIT_CACHE: dict[tuple[str, int, int | None], Callable[[Any], Params]] = {}
_ORDER_CACHE: dict[int, Callable[[Any], Any]] = {}


def init_params(kind: str, features: int, hidden: int | None, seed: int, device: Any = None) -> dict[str, np.ndarray]:
    """A trial's initial weights at its own size, as numpy float32 arrays (computed on `device`,
    by default the host CPU)."""
    cache_key = (kind, features, hidden)
    if cache_key not in _INIT_CACHE:
        _INIT_CACHE[cache_key] = _init(kind, features, hidden)
    params = _INIT_CACHE[cache_key](seed_key(seed, device or host_device()))
    return {name: np.asarray(value) for name, value in params.items()}


def row_order(seed: int, rows: int, device: Any = None) -> np.ndarray:
    """The trial's shuffled row order, fixed for all epochs (as models/trainer.ts shuffles once)."""
    if rows not in _ORDER_CACHE:
        _ORDER_CACHE[rows] = jax.jit(lambda key: jax.random.permutation(jax.random.split(key, 3)[0], rows))
    return np.asarray(_ORDER_CACHE[rows](seed_key(seed, device or host_device()))).astype(np.int32)


def host_device() -> Any:
    """The CPU device (where initialization runs, so that it is the same on every machine); the
    default device when JAX was started without its CPU platform."""
    try:
        return jax.devices('cpu')[0]
    except RuntimeError:
        return jax.devices()[0]


def pad_params(params: dict[str, np.ndarray], width: int) -> dict[str, np.ndarray]:
    """An MLP's weights padded with zero hidden units up to `width` (logistic: unchanged)."""
    if 'w2' not in params:
        return params
    extra = width - params['w1'].shape[1]
    return {
        'w1': np.pad(params['w1'], ((0, 0), (0, extra))),
        'b1': np.pad(params['b1'], (0, extra)),
        'w2': np.pad(params['w2'], ((0, extra), (0, 0))),
        'b2': params['b2'],
    }


def unpad_params(params: dict[str, np.ndarray], hidden: int | None) -> dict[str, np.ndarray]:
    if 'w2' not in params:
        return params
    return {'w1': params['w1'][:, :hidden], 'b1': params['b1'][:hidden], 'w2': params['w2'][:hidden, :], 'b2': params['b2']}


def new_state(params: dict[str, np.ndarray]) -> dict[str, Any]:
    """Adam's state for fresh weights: zero moments, running beta products starting at beta."""
    zeros = {name: np.zeros_like(value) for name, value in params.items()}
    return {'params': params, 'm': zeros, 'v': dict(zeros), 'acc1': BETA1, 'acc2': BETA2}


# ---- the network and its loss ---------------------------------------------------------------------


def logits(params: Params, x: Any, mask: Any) -> Any:
    """Pre-sigmoid scores [rows] of standardized inputs x [rows, features]."""
    z = jnp.dot(x, params['w1'], precision=PRECISION) + params['b1']
    if 'w2' in params:
        hidden = jax.nn.relu(z) * mask  # relu'(0) = 0 as tf.relu
        z = jnp.dot(hidden, params['w2'], precision=PRECISION) + params['b2']
    return z[:, 0]


def scores(params: Params, x: Any, mask: Any) -> Any:
    return jax.nn.sigmoid(logits(params, x, mask))


def loss(params: Params, x: Any, y: Any, weight: Any, l2: Any, mask: Any) -> Any:
    """tfjs-layers binaryCrossentropy on the sigmoid output, weighted mean over rows, + L2."""
    p = scores(params, x, mask)
    # clipByValue, whose gradient passes at the bounds (jnp.clip would halve it there)
    inside = (p >= EPSILON) & (p <= CLIP_HIGH)
    clipped = jnp.where(inside, p, jnp.clip(p, EPSILON, CLIP_HIGH))
    logit = jnp.log(clipped / (1 - clipped))
    # sigmoidCrossEntropyWithLogits: relu(l) - l * y + log1p(exp(-|l|)) = softplus(l) - l * y;
    # softplus has the exact derivative sigmoid(l), also at l = 0 (where |l| has none).
    cross_entropy = jax.nn.softplus(logit) - logit * y
    data_loss = jnp.sum(cross_entropy * weight) / jnp.sum(weight)
    return data_loss + l2 * jnp.sum(jnp.square(params['w1']))


def mask_gradients(grads: Params, mask: Any) -> Params:
    if 'w2' not in grads:
        return grads
    return {'w1': grads['w1'] * mask[None, :], 'b1': grads['b1'] * mask, 'w2': grads['w2'] * mask[:, None], 'b2': grads['b2']}


def adam(state: dict[str, Any], grads: Params, learning_rate: Any) -> dict[str, Any]:
    one_minus_acc1 = 1 - state['acc1']
    one_minus_acc2 = 1 - state['acc2']
    params, first, second = {}, {}, {}
    for name, value in state['params'].items():
        gradient = grads[name]
        m = state['m'][name] * BETA1 + gradient * ONE_MINUS_BETA1
        v = state['v'][name] * BETA2 + jnp.square(gradient) * ONE_MINUS_BETA2
        m_hat = m / one_minus_acc1
        v_hat = v / one_minus_acc2
        params[name] = (m_hat / (jnp.sqrt(v_hat) + EPSILON)) * (-learning_rate) + value
        first[name], second[name] = m, v
    return {'params': params, 'm': first, 'v': second, 'acc1': state['acc1'] * BETA1, 'acc2': state['acc2'] * BETA2}


def train_step(state: dict[str, Any], hyper: dict[str, Any], x: Any, y: Any, weight: Any) -> tuple[dict[str, Any], Any]:
    value, grads = jax.value_and_grad(loss)(state['params'], x, y, weight, hyper['l2'], hyper['mask'])
    return adam(state, mask_gradients(grads, hyper['mask']), hyper['lr']), value


# ---- the compiled programs -------------------------------------------------------------------------


def epoch_program(batch_size: int, batches: int, shared_order: bool) -> Callable[..., tuple[Any, Any]]:
    """One epoch for a stack of trials: lax.scan over the mini-batches, vmap over the trials.

    Arguments: states and hypers (leading axis: trials), orders int32 [orders, batches * batch_size]
    (row indices; padding points at the extra row `rows`), z float32 [rows + 1, features],
    y float32 [rows + 1], weight float32 [rows + 1] (1 for real rows, 0 for the extra row),
    counts float32 [batches] (real rows per batch). With shared_order every trial reads orders[0];
    otherwise hyper['order'] picks a trial's row. Returns (states, mean training loss per trial).
    """

    def epoch(states: Any, hypers: Any, orders: Any, z: Any, y: Any, weight: Any, counts: Any) -> tuple[Any, Any]:
        def body(carry: Any, batch: Any) -> tuple[Any, Any]:
            start = batch * batch_size
            if shared_order:
                rows = lax.dynamic_slice_in_dim(orders[0], start, batch_size)
                return jax.vmap(train_step, in_axes=(0, 0, None, None, None))(carry, hypers, z[rows], y[rows], weight[rows])

            def one(state: Any, hyper: Any) -> tuple[Any, Any]:
                rows = lax.dynamic_slice(orders, (hyper['order'], start), (1, batch_size))[0]
                return train_step(state, hyper, z[rows], y[rows], weight[rows])

            return jax.vmap(one)(carry, hypers)

        states, losses = lax.scan(body, states, jnp.arange(batches, dtype=jnp.int32))
        # as tfjs fit reports it: batch losses weighted by batch size, over all rows
        return states, jnp.sum(losses * counts[:, None], axis=0) / jnp.sum(counts)

    return epoch


def scores_program() -> Callable[..., Any]:
    """Scores [trials, rows] of a stack of trials' params and masks for x [rows, features]."""

    def run(params: Any, masks: Any, x: Any) -> Any:
        return jax.vmap(lambda trial, mask: scores(trial, x, mask))(params, masks)

    return run
