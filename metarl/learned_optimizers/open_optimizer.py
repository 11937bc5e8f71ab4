"""An OPEN-style learned optimizer for reinforcement learning (Goldie et al. 2024, "Can
Learned Optimization Make Reinforcement Learning Less Difficult?", NeurIPS), with a skip
connection to Adam so that a search can start from Adam.

A small GRU, shared by all parameters, keeps a hidden state per parameter (in the optimizer
state). Its inputs are the normalised per-parameter features of
`metarl.learned_optimizers.features` plus OPEN's RL-specific ones: training proportion, batch
proportion, dormancy (per-neuron inactivity, passed by the caller per parameter) and layer
proportion (the tensor's index over the number of tensors). A linear head gives a direction
`d`, a log-magnitude `m` and a noise scale `s`:

    update = -learning_rate * (adam + d) * exp(magnitude_scale * m)
             + learning_rate * s * N(0, 1)          (parameters marked as the actor's only)

The noise is OPEN's learned stochasticity for exploration; its key lives in the optimizer
state. With the head at zero (`adam_init_meta`) d = m = s = 0 and the update is
`optax.adam(learning_rate)`'s.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, NamedTuple

import jax
import jax.numpy as jnp
import optax

from metarl.learned.mlp import init_mlp
from metarl.learned_optimizers.features import (
    NUM_SHAPE_FEATURES,
    Moments,
    broadcast_features,
    dense_apply,
    init_moments,
    leaf_indices,
    learned_step,
    num_tensor_features,
    shape_features,
    statistics,
    tensor_features,
)

PyTree = Any
NUM_RL_FEATURES = 4  # training proportion, batch proportion, dormancy, layer proportion
NUM_OUTPUTS = 3  # direction, log-magnitude, noise scale


class OpenState(NamedTuple):
    moments: Moments
    hidden: PyTree  # per parameter, shape (*param.shape, hidden_size)
    key: jax.Array


def init_meta(key: jax.Array, hidden_size: int = 8, num_momenta: int = 3,
              output_scale: float = 0.01) -> dict[str, dict[str, jax.Array]]:
    """Random GRU weights and a head whose size is `output_scale`."""
    num_inputs = num_tensor_features(num_momenta) + NUM_SHAPE_FEATURES + NUM_RL_FEATURES
    gru_key, head_key = jax.random.split(key)
    # the GRU's input and recurrent weights as two layers of one draw; zero biases
    gru = init_mlp(gru_key, (num_inputs, 3 * hidden_size, 3 * hidden_size), output_scale=1.0)
    gru = {"wx": gru["w0"], "wh": gru["w1"][:hidden_size], "b": gru["b0"]}
    return {"gru": gru, "head": init_mlp(head_key, (hidden_size, NUM_OUTPUTS), output_scale)}


def adam_init_meta(key: jax.Array, hidden_size: int = 8, num_momenta: int = 3
                   ) -> dict[str, dict[str, jax.Array]]:
    """Weights at which the optimizer is exactly Adam and adds no noise: a random GRU (so
    the meta-gradient reaches the head) and a zero head."""
    return init_meta(key, hidden_size, num_momenta, output_scale=0.0)


def gru_cell(params: dict, x: jax.Array, h: jax.Array) -> jax.Array:
    """One GRU step (Cho et al. 2014) over the last axis, batched over the leading ones."""
    size = h.shape[-1]
    gx = x @ params["wx"] + params["b"]
    gh = h @ params["wh"]
    z = jax.nn.sigmoid(gx[..., :size] + gh[..., :size])
    r = jax.nn.sigmoid(gx[..., size:2 * size] + gh[..., size:2 * size])
    n = jnp.tanh(gx[..., 2 * size:] + r * gh[..., 2 * size:])
    return (1.0 - z) * n + z * h


def make(meta_params: dict, *, learning_rate: float | jax.Array = 1e-3,
         momentum_decays: tuple[float, ...] = (0.9, 0.99, 0.999), b2: float = 0.999,
         eps: float = 1e-8, eps_root: float = 0.0, magnitude_scale: float = 0.1,
         total_steps: int | None = None,
         actor_mask: PyTree | Callable[[PyTree], PyTree] | None = None,
         seed: int | jax.Array = 0) -> optax.GradientTransformationExtraArgs:
    """The optimizer with weights `meta_params`; `momentum_decays[0]` is Adam's b1.

    `actor_mask`: a pytree of booleans like the params (or a function of the params giving
    one) marking the parameters that receive learned noise; None adds none. `seed` starts the
    noise key kept in the state. `update` takes the extra arguments `progress` (training
    proportion; else count / `total_steps`, else 0), `batch_proportion` (default 0) and
    `dormancy` (a pytree broadcastable to the params, default 0), and needs `params`.
    """
    hidden_size = meta_params["gru"]["wh"].shape[0]

    def init_fn(params: PyTree) -> OpenState:
        hidden = jax.tree.map(lambda p: jnp.zeros((*p.shape, hidden_size), p.dtype), params)
        return OpenState(init_moments(params, len(momentum_decays)), hidden,
                         jax.random.PRNGKey(seed))

    def update_fn(grads: PyTree, state: OpenState, params: PyTree = None,
                  **extra_args: Any) -> tuple[PyTree, OpenState]:
        if params is None:
            raise ValueError("the OPEN learned optimizer needs params in update()")
        moments, adam, prog = statistics(grads, state.moments, momentum_decays, b2, eps,
                                         eps_root, total_steps, extra_args)
        batch = jnp.asarray(extra_args.get("batch_proportion", 0.0), jnp.float32)
        dormancy = extra_args.get("dormancy")
        if dormancy is None:
            dormancy = jax.tree.map(lambda _: 0.0, grads)
        mask = actor_mask(params) if callable(actor_mask) else actor_mask
        noisy = mask is not None
        if not noisy:
            mask = jax.tree.map(lambda _: False, grads)
        key, noise_key = jax.random.split(state.key)
        num_tensors = len(jax.tree.leaves(grads))

        def leaf_update(g, p, nu, direction, h, dormant, index, masked, *momenta):
            layer = index / num_tensors
            x = tensor_features(g, p, momenta, nu, eps)
            x = broadcast_features(x, [prog, batch, dormant, layer, *shape_features(p)])
            h = gru_cell(meta_params["gru"], x, h)
            out = dense_apply(meta_params["head"], h, 1)
            step = learned_step(direction, out, learning_rate, magnitude_scale)
            if noisy:
                eps_noise = jax.random.normal(jax.random.fold_in(noise_key, index), g.shape)
                step = step + jnp.where(masked, learning_rate * out[..., 2] * eps_noise, 0.0)
            return step.astype(g.dtype), h

        outs = jax.tree.map(leaf_update, grads, params, moments.nu, adam, state.hidden,
                            dormancy, leaf_indices(grads), mask, *moments.momenta)
        updates = jax.tree.map(lambda _, o: o[0], grads, outs)
        hidden = jax.tree.map(lambda _, o: o[1], grads, outs)
        return updates, OpenState(moments, hidden, key)

    return optax.GradientTransformationExtraArgs(init_fn, update_fn)
