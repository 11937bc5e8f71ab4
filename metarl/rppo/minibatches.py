"""Minibatches of whole env sequences: a recurrent policy must be re-run over each sequence
from its stored initial state, so an update's `(time, env)` data is shuffled over envs only."""

from __future__ import annotations

from typing import Any, NamedTuple

import jax
import jax.numpy as jnp

from metarl.ppo.minibatches import shuffles

PyTree = Any


class Sequences(NamedTuple):
    """Training data of an update, every field `(T, B, ...)` (time first)."""

    obs: jax.Array
    reset: jax.Array
    action: jax.Array
    log_prob: jax.Array
    value: jax.Array
    advantage: jax.Array
    target: jax.Array


def sequence_minibatches(data: Sequences, hidden: jax.Array, perms: jax.Array,
                         num_minibatches: int) -> tuple[Sequences, jax.Array]:
    """Every epoch's minibatches gathered at once: `perms` `(epochs, B)` are permutations of
    the envs, each cut into `num_minibatches` groups. Returns the data with fields
    `(epochs * num_minibatches, T, B // num_minibatches, ...)` and the initial GRU states
    `(epochs * num_minibatches, B // num_minibatches, hidden_size)`. Advantages are
    normalised per minibatch here (PPO's usual), not inside each SGD step, since they do not
    depend on the weights."""
    n_envs = perms.shape[1]
    idx = perms.reshape(-1, n_envs // num_minibatches)  # (minibatches, envs each)
    # envs are the second axis: one gather takes every minibatch's sequences, whole
    mbs = jax.tree.map(lambda x: jnp.moveaxis(x[:, idx], 1, 0), data)
    adv = mbs.advantage
    axes = (1, 2)
    adv = (adv - adv.mean(axes, keepdims=True)) / (adv.std(axes, keepdims=True) + 1e-8)
    return mbs._replace(advantage=adv), hidden[idx]


def env_permutations(perm_bits: jax.Array, epochs: int, num_envs: int) -> jax.Array:
    """`(epochs, num_envs)` random permutations of the envs (PPO's cheap shuffles)."""
    return shuffles(perm_bits, epochs, num_envs)
