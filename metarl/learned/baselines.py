"""Closed-form policy objectives, in the same interface as the learned ones.

* PPO-clip (Schulman et al. 2017, "Proximal Policy Optimization Algorithms") as a Mirror
  Learning drift: `min(r*A, clip(r, 1-eps, 1+eps)*A) = r*A - relu((r - clip(r)) * A)`.
* DPO, the rule distilled from a learned LPO drift (Lu et al. 2022, "Discovered Policy
  Optimisation", arXiv:2210.05639)::

      drift(r, A) = relu((r-1)A - alpha * tanh((r-1)A / alpha))   if A >= 0
                    relu(log(r)A - beta * tanh(log(r)A / beta))   if A < 0

  with alpha = 2 and beta = 0.6. Unlike PPO's clip it is smooth, with zero gradient at
  `r = 1`, and it treats positive and negative advantages asymmetrically (ratio and
  log-ratio scale).

`ppo_clip_drift` and `dpo_drift` are copied verbatim into exported modules, so they use
nothing but `jnp`.
"""

from __future__ import annotations

from dataclasses import dataclass

import jax
import jax.numpy as jnp

from metarl.learned.base import DriftObjective, PyTree
from metarl.ppo.objectives import ObjectiveInputs, ppo_clip


def ppo_clip_drift(ratio: jnp.ndarray, advantage: jnp.ndarray,
                   clip_eps: float = 0.2) -> jnp.ndarray:
    """PPO-clip's implied drift `relu((r - clip(r, 1-eps, 1+eps)) * A)`."""
    excess = (ratio - jnp.clip(ratio, 1.0 - clip_eps, 1.0 + clip_eps)) * advantage
    return jnp.where(excess > 0.0, excess, 0.0)


def dpo_drift(ratio: jnp.ndarray, advantage: jnp.ndarray, alpha: float = 2.0,
              beta: float = 0.6) -> jnp.ndarray:
    """DPO's drift (Lu et al. 2022), elementwise over broadcastable inputs."""
    pos = (ratio - 1.0) * advantage
    neg = jnp.log(ratio) * advantage
    gap = jnp.where(advantage >= 0.0, pos - alpha * jnp.tanh(pos / alpha),
                    neg - beta * jnp.tanh(neg / beta))
    return jnp.where(gap > 0.0, gap, 0.0)


@dataclass(frozen=True)
class PPOClip(DriftObjective):
    """PPO's clipped surrogate. It has no meta-parameters; the clip range is the PPO
    hyperparameter `HParams.clip_eps` (passed in `ObjectiveInputs.clip_eps`)."""

    @property
    def name(self) -> str:
        return "ppo_clip"

    def init(self, key: jax.Array) -> dict:
        return {}

    def drift(self, meta_params: PyTree, ratio: jax.Array, advantage: jax.Array,
              progress: jax.Array | None = None, clip_eps: float = 0.2) -> jax.Array:
        return ppo_clip_drift(ratio, advantage, clip_eps)

    def __call__(self, inputs: ObjectiveInputs, meta_params: PyTree) -> jax.Array:
        return ppo_clip(inputs)


@dataclass(frozen=True)
class DPO(DriftObjective):
    """Discovered Policy Optimisation (Lu et al. 2022); `alpha`, `beta` are fixed constants,
    so there are no meta-parameters."""

    alpha: float = 2.0
    beta: float = 0.6

    def __post_init__(self) -> None:
        if not (self.alpha > 0 and self.beta > 0):
            raise ValueError(f"DPO needs alpha > 0 and beta > 0, got {self.alpha}, {self.beta}")
        object.__setattr__(self, "alpha", float(self.alpha))
        object.__setattr__(self, "beta", float(self.beta))

    @property
    def name(self) -> str:
        return "dpo"

    def init(self, key: jax.Array) -> dict:
        return {}

    def drift(self, meta_params: PyTree, ratio: jax.Array, advantage: jax.Array,
              progress: jax.Array | None = None) -> jax.Array:
        return dpo_drift(ratio, advantage, self.alpha, self.beta)
