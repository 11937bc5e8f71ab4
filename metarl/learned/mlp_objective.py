"""A general learned policy objective: an MLP over per-sample features, not just a drift.

A wider search space than LPO: the network also sees the value error, the policy entropy and
the training progress, and it is not constrained to Mirror Learning's drift form, so it can
express e.g. entropy bonuses that depend on the advantage, or value-error-weighted updates
(in the spirit of Oh et al. 2020, "Discovering Reinforcement Learning Algorithms", with PPO's
inputs instead of an LSTM over trajectories).

Stability choice: `objective = base(r, A) + bound * tanh(g(x) / bound)`. The base term keeps
a policy-gradient signal however the network's weights are perturbed, and the learned
correction is bounded by `bound` (1 by default, the scale of normalised advantages), so no
candidate can produce an unboundedly large loss term of its own. The output layer starts at
zero, so the initial rule is the base: the unclipped surrogate `r*A` by default, or PPO-clip's
`min(r*A, clip(r, 1-eps, 1+eps)*A)` with `base_clip_eps = eps`, which starts a search at PPO
itself (the unclipped surrogate learns 7% worse than PPO-clip at lr 1e-3,
docs/benchmarks.md#update-rule-quality).

Features (`x`): r-1, log r, A, (r-1)A, (log r)A, symlog(value_error), entropy, progress. The
value error is in return units (it can be in the hundreds), so it enters through
`symlog(v) = sign(v) log(1 + |v|)` to keep the tanh units out of saturation.

`objective_features` and `mlp_objective` are copied verbatim into exported modules
(`metarl.export`), so they use nothing but `jnp` and `mlp`.
"""

from __future__ import annotations

from dataclasses import dataclass

import jax
import jax.numpy as jnp

from metarl.learned.base import LearnedObjective, PyTree
from metarl.learned.mlp import init_mlp, mlp
from metarl.ppo.objectives import ObjectiveInputs

NUM_OBJECTIVE_FEATURES = 8


def objective_features(ratio: jnp.ndarray, advantage: jnp.ndarray,
                       value_error: jnp.ndarray, entropy: jnp.ndarray,
                       progress: jnp.ndarray) -> jnp.ndarray:
    """Network inputs, shape `broadcast(all inputs) + (8,)`."""
    ratio, advantage, value_error, entropy, progress = jnp.broadcast_arrays(
        ratio, advantage, value_error, entropy, progress)
    d, log_r = ratio - 1.0, jnp.log(ratio)
    symlog_v = jnp.sign(value_error) * jnp.log1p(jnp.abs(value_error))
    return jnp.stack([d, log_r, advantage, d * advantage, log_r * advantage, symlog_v,
                      entropy, progress.astype(ratio.dtype)], -1)


def mlp_objective(params: dict, ratio: jnp.ndarray, advantage: jnp.ndarray,
                  value_error: jnp.ndarray, entropy: jnp.ndarray,
                  progress: jnp.ndarray, bound: float = 1.0,
                  base_clip_eps: float | None = None) -> jnp.ndarray:
    """`base + bound * tanh(g(x) / bound)`, elementwise over broadcastable
    inputs; the base is `r*A`, or PPO-clip's surrogate when `base_clip_eps` is
    a clip range."""
    x = objective_features(ratio, advantage, value_error, entropy, progress)
    base = ratio * advantage
    if base_clip_eps is not None:
        clipped = jnp.clip(ratio, 1.0 - base_clip_eps, 1.0 + base_clip_eps)
        base = jnp.minimum(base, clipped * advantage)
    return base + bound * jnp.tanh(mlp(params, x) / bound)


@dataclass(frozen=True)
class MLPObjective(LearnedObjective):
    """The general learned objective (registry name `learned_objective`)."""

    hidden_sizes: tuple[int, ...] = (32,)
    bound: float = 1.0
    base_clip_eps: float | None = None

    def __post_init__(self) -> None:
        sizes = tuple(int(h) for h in self.hidden_sizes)
        if not sizes or min(sizes) < 1:
            raise ValueError(f"MLPObjective.hidden_sizes must be positive widths, got "
                             f"{self.hidden_sizes!r}")
        if not self.bound > 0:
            raise ValueError(f"MLPObjective.bound must be > 0, got {self.bound}")
        if self.base_clip_eps is not None and not 0 < self.base_clip_eps < 1:
            raise ValueError(f"MLPObjective.base_clip_eps must be in (0, 1) (or unset, for "
                             f"the r*A base), got {self.base_clip_eps}")
        object.__setattr__(self, "hidden_sizes", sizes)
        object.__setattr__(self, "bound", float(self.bound))
        if self.base_clip_eps is not None:
            object.__setattr__(self, "base_clip_eps", float(self.base_clip_eps))

    @property
    def name(self) -> str:
        return "learned_objective"

    def init(self, key: jax.Array) -> dict[str, jax.Array]:
        return init_mlp(key, (NUM_OBJECTIVE_FEATURES, *self.hidden_sizes, 1))

    def __call__(self, inputs: ObjectiveInputs, meta_params: PyTree) -> jax.Array:
        return mlp_objective(meta_params, inputs.ratio, inputs.advantage, inputs.value_error,
                             inputs.entropy, inputs.progress, self.bound, self.base_clip_eps)
