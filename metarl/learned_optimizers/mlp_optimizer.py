"""The per-parameter MLP learned optimizer of Metz et al. 2022 ("Practical tradeoffs between
memory, compute, and performance in learned optimization", AISTATS), with a skip connection
to Adam so that a search can start from Adam.

For every parameter a small MLP, shared by all parameters, reads normalised features (see
`metarl.learned_optimizers.features`: gradient, value, momenta at several decays, second-moment
RMS, momentum/RMS ratios, training progress, the tensor's log size and rank) and outputs a
direction `d` and a log-magnitude `m`. The update is

    -learning_rate * (adam + d) * exp(magnitude_scale * m)

where `adam` is Adam's bias-corrected m_hat / (sqrt(v_hat) + eps) from the optimizer's own
momenta. With the MLP's last layer at zero (`adam_init_meta`) d = m = 0 and the update is
`optax.adam(learning_rate)`'s.
"""

from __future__ import annotations

from typing import Any, NamedTuple

import jax
import optax

from metarl.learned.mlp import init_mlp
from metarl.learned_optimizers.features import (
    NUM_SHAPE_FEATURES,
    Moments,
    broadcast_features,
    dense_apply,
    init_moments,
    learned_step,
    num_tensor_features,
    shape_features,
    statistics,
    tensor_features,
)

PyTree = Any
NUM_OUTPUTS = 2  # direction, log-magnitude


class MLPOptimizerState(NamedTuple):
    moments: Moments


def init_meta(key: jax.Array, hidden_size: int = 32, num_hidden: int = 2, num_momenta: int = 3,
              output_scale: float = 0.01) -> dict[str, jax.Array]:
    """Random weights; the small output layer keeps the start near Adam but not at it."""
    num_inputs = num_tensor_features(num_momenta) + 1 + NUM_SHAPE_FEATURES  # 1: progress
    sizes = (num_inputs, *([hidden_size] * num_hidden), NUM_OUTPUTS)
    return init_mlp(key, sizes, output_scale)


def adam_init_meta(key: jax.Array, hidden_size: int = 32, num_hidden: int = 2,
                   num_momenta: int = 3) -> dict[str, jax.Array]:
    """Weights at which the optimizer is exactly Adam: random hidden layers (so the
    meta-gradient reaches the output layer) and a zero output layer."""
    return init_meta(key, hidden_size, num_hidden, num_momenta, output_scale=0.0)


def make(meta_params: dict, *, learning_rate: float | jax.Array = 1e-3,
         momentum_decays: tuple[float, ...] = (0.9, 0.99, 0.999), b2: float = 0.999,
         eps: float = 1e-8, eps_root: float = 0.0, magnitude_scale: float = 0.1,
         total_steps: int | None = None) -> optax.GradientTransformationExtraArgs:
    """The optimizer with weights `meta_params`; `momentum_decays[0]` is Adam's b1.

    Training progress is the `progress` extra argument of `update` when given, else the step
    count over `total_steps`, else 0. `update` needs `params` (the value is a feature).
    """
    num_layers = len(meta_params) // 2

    def init_fn(params: PyTree) -> MLPOptimizerState:
        return MLPOptimizerState(init_moments(params, len(momentum_decays)))

    def update_fn(grads: PyTree, state: MLPOptimizerState, params: PyTree = None,
                  **extra_args: Any) -> tuple[PyTree, MLPOptimizerState]:
        if params is None:
            raise ValueError("the MLP learned optimizer needs params in update()")
        moments, adam, prog = statistics(grads, state.moments, momentum_decays, b2, eps,
                                         eps_root, total_steps, extra_args)

        def leaf_update(g, p, nu, direction, *momenta):
            x = tensor_features(g, p, momenta, nu, eps)
            x = broadcast_features(x, [prog, *shape_features(p)])
            out = dense_apply(meta_params, x, num_layers)
            return learned_step(direction, out, learning_rate, magnitude_scale).astype(g.dtype)

        updates = jax.tree.map(leaf_update, grads, params, moments.nu, adam, *moments.momenta)
        return updates, MLPOptimizerState(moments)

    return optax.GradientTransformationExtraArgs(init_fn, update_fn)
