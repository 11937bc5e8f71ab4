"""Policy objectives: the pluggable piece of the PPO update.

An objective maps per-sample features to a per-sample value to *maximise*; the loop averages
it over the minibatch. Learned update rules (LPO drift networks and the like) are objectives
whose behaviour depends on `meta_params`.
"""

from __future__ import annotations

from typing import Any, NamedTuple, Protocol

import jax
import jax.numpy as jnp


class ObjectiveInputs(NamedTuple):
    """Per-sample features an objective may use; every array has the minibatch's shape."""

    ratio: jax.Array  # pi_new(a|s) / pi_old(a|s)
    log_ratio: jax.Array
    advantage: jax.Array  # normalised within the minibatch
    value_error: jax.Array  # V(s) - return target, under the current critic
    entropy: jax.Array  # policy entropy at s
    progress: jax.Array  # scalar in [0, 1): fraction of training done (for temporal rules)
    clip_eps: jax.Array  # scalar: the clip hyperparameter, for rules that use it


class Objective(Protocol):
    def __call__(self, inputs: ObjectiveInputs, meta_params: Any) -> jax.Array: ...


def ppo_clip(inputs: ObjectiveInputs, meta_params: Any = None) -> jax.Array:
    """PPO's clipped surrogate (Schulman et al. 2017, "Proximal Policy Optimization")."""
    del meta_params
    r, a, eps = inputs.ratio, inputs.advantage, inputs.clip_eps
    return jnp.minimum(r * a, jnp.clip(r, 1.0 - eps, 1.0 + eps) * a)
