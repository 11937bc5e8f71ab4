"""Learned Policy Optimisation: a drift network under Mirror Learning's constraints.

Lu et al. 2022, "Discovered Policy Optimisation" (NeurIPS) meta-learn the drift of a Mirror
Learning objective `r*A - drift(r, A)` as a small MLP `f` over features of the probability
ratio `r` and the advantage `A`. Jackson et al. 2024, "Discovering Temporally-Aware
Reinforcement Learning Algorithms" (ICLR) add the fraction of training done, `n/N`, as an input
so the rule can change behaviour over a run (e.g. explore early, be conservative late); here
that is `LPO(temporal=True)`.

Construction: `drift(r, A) = relu(f(x(r, A)) - f(x(1, A)))`. Every ratio feature vanishes at
`r = 1`, so `x(r, A) = x(1, A)` there and the drift is 0; the relu makes it >= 0 everywhere.
Mirror Learning also asks for zero gradient at `r = 1`: the relu's gradient at 0 is taken as
0 (as in `jax.nn.relu`), so the first SGD step of every PPO update, where all ratios are
exactly 1, sees only the `r*A` term, as the theory requires. (`r = 1` is also handled as an
explicit case, so both hold exactly in floating point, whatever XLA does with the two
network evaluations.)

The functions `lpo_features`, `lpo_gap` and `lpo_drift` are copied verbatim into exported
modules (`metarl.export`), so they use nothing but `jnp` and each other.
"""

from __future__ import annotations

from dataclasses import dataclass

import jax
import jax.numpy as jnp

from metarl.learned.base import DriftObjective, PyTree
from metarl.learned.mlp import init_mlp, mlp

# r-1, log r, (r-1)^2, (log r)^2 and each of them times A (Lu et al. 2022, Sec. 5)
NUM_LPO_FEATURES = 8


def lpo_features(ratio: jnp.ndarray, advantage: jnp.ndarray,
                 progress: jnp.ndarray | None = None) -> jnp.ndarray:
    """Drift-network inputs: `broadcast(ratio, advantage[, progress]) + (8 or 9,)`."""
    if progress is None:
        ratio, advantage = jnp.broadcast_arrays(ratio, advantage)
    else:
        ratio, advantage, progress = jnp.broadcast_arrays(ratio, advantage, progress)
    d, log_r = ratio - 1.0, jnp.log(ratio)
    feats = [d, log_r, d * d, log_r * log_r]
    feats = feats + [f * advantage for f in feats]
    if progress is not None:
        feats.append(progress.astype(ratio.dtype))
    return jnp.stack(feats, -1)


def lpo_gap(params: dict, ratio: jnp.ndarray, advantage: jnp.ndarray,
            progress: jnp.ndarray | None = None) -> jnp.ndarray:
    """`f(x(r, A)) - f(x(1, A))`: the drift before the relu (exactly 0 at `r = 1`)."""
    x = lpo_features(ratio, advantage, progress)
    x_at_one = lpo_features(jnp.ones_like(ratio), advantage, progress)
    return mlp(params, x) - mlp(params, x_at_one)


def lpo_drift(params: dict, ratio: jnp.ndarray, advantage: jnp.ndarray,
              progress: jnp.ndarray | None = None) -> jnp.ndarray:
    """The LPO drift `relu(f(x(r, A)) - f(x(1, A)))`, elementwise (broadcasting)."""
    gap = lpo_gap(params, ratio, advantage, progress)
    # The gap is 0 at r = 1 in exact arithmetic, but XLA may evaluate f(x(1, A)) by
    # another code path (constant folding uses a different tanh), leaving an ulp; the
    # explicit case makes drift and its gradient exactly 0 there, as Mirror Learning
    # requires. `where`, not `maximum`, which would split the gradient at a tie.
    return jnp.where((gap > 0.0) & (ratio != 1.0), gap, 0.0)


@dataclass(frozen=True)
class LPO(DriftObjective):
    """LPO drift network (Lu et al. 2022); `temporal=True` adds training progress as an
    input (TA-LPO, Jackson et al. 2024). `hidden_sizes` are the tanh layers' widths.

    `init` starts with a zero output layer, i.e. drift = 0 and the objective is the unclipped
    surrogate `r*A`; `init_near_ppo` starts from a fit to PPO-clip's drift instead.
    """

    hidden_sizes: tuple[int, ...] = (32,)
    temporal: bool = False

    def __post_init__(self) -> None:
        # spec files give lists; a tuple keeps the dataclass hashable (a static jit argument)
        sizes = tuple(int(h) for h in self.hidden_sizes)
        if not sizes or min(sizes) < 1:
            raise ValueError(f"LPO.hidden_sizes must be positive widths, got "
                             f"{self.hidden_sizes!r}")
        object.__setattr__(self, "hidden_sizes", sizes)
        object.__setattr__(self, "temporal", bool(self.temporal))

    @property
    def name(self) -> str:
        return "lpo_temporal" if self.temporal else "lpo"

    @property
    def num_features(self) -> int:
        return NUM_LPO_FEATURES + int(self.temporal)

    def init(self, key: jax.Array) -> dict[str, jax.Array]:
        return init_mlp(key, (self.num_features, *self.hidden_sizes, 1))

    def _progress(self, progress: jax.Array | None) -> jax.Array | None:
        if not self.temporal:
            return None
        if progress is None:
            raise ValueError("lpo_temporal needs `progress` (the fraction of training done)")
        return progress

    def drift(self, meta_params: PyTree, ratio: jax.Array, advantage: jax.Array,
              progress: jax.Array | None = None) -> jax.Array:
        return lpo_drift(meta_params, ratio, advantage, self._progress(progress))

    def drift_gap(self, meta_params: PyTree, ratio: jax.Array, advantage: jax.Array,
                  progress: jax.Array | None = None) -> jax.Array:
        """The drift before its relu; what `fit_drift` regresses (the relu has no gradient
        where it is negative)."""
        return lpo_gap(meta_params, ratio, advantage, self._progress(progress))

    def init_near_ppo(self, key: jax.Array, clip_eps: float = 0.2, steps: int = 4000,
                      max_log_ratio: float = 0.5) -> dict[str, jax.Array]:
        """Meta-parameters whose drift approximates PPO-clip's `relu((r - clip(r)) * A)`.

        A warm start for search: the rule begins as (nearly) PPO, so ES explores around a
        known-good algorithm instead of around the unstable unclipped surrogate. The fit
        covers ratios in `exp(+-max_log_ratio)` (default [0.61, 1.65], where PPO's ratios
        live) and runs long enough for a small network to get the drift right near `r = 1`:
        with 1,000 steps over [0.5, 2] a 4-unit network's drift was 40% too large there and
        PPO trained with it reached 0.40 of CartPole's return range against PPO-clip's 0.53.
        """
        from metarl.learned.baselines import ppo_clip_drift
        from metarl.learned.fit import fit_drift

        k_init, k_fit = jax.random.split(key)
        # a non-zero output layer, so the fit does not start on the relu's flat side
        params = init_mlp(k_init, (self.num_features, *self.hidden_sizes, 1), output_scale=0.1)
        return fit_drift(self, params, k_fit,
                         lambda r, a, p: ppo_clip_drift(r, a, clip_eps), steps=steps,
                         max_log_ratio=max_log_ratio)
