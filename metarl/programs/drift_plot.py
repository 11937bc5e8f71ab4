"""Heatmaps of a drift function over (ratio, advantage): watching a learned rule take shape.

A general objective (`learned_objective`) has no drift of its own; its picture is the drift it
implies, `r*A - objective`, at value error 0 and a fixed entropy, which for a drift rule would
be the drift itself (and for `learned_objective` on a PPO-clip base starts as PPO-clip's).
"""

from __future__ import annotations

from typing import Any

import jax.numpy as jnp
import numpy as np
from matplotlib.figure import Figure
from matplotlib.ticker import NullLocator

from metarl.learned import DriftObjective, LearnedObjective
from metarl.ppo.objectives import ObjectiveInputs

RATIOS = np.exp(np.linspace(np.log(0.5), np.log(2.0), 121))
ADVANTAGES = np.linspace(-3.0, 3.0, 121)
RATIO_TICKS = (0.5, 0.75, 1.0, 1.5, 2.0)
ENTROPY = 0.5  # where a general objective is pictured: about CartPole's early policies


def drift_grid(objective: DriftObjective, meta_params: Any,
               progress: float | None = None) -> np.ndarray:
    """`(advantages, ratios)` drift values on the plotting grid."""
    r, a = np.meshgrid(RATIOS, ADVANTAGES)
    p = None if progress is None else jnp.full(r.shape, progress, jnp.float32)
    return np.asarray(objective.drift(meta_params, jnp.asarray(r, jnp.float32),
                                      jnp.asarray(a, jnp.float32), p))


def implied_drift_grid(objective: LearnedObjective, meta_params: Any,
                       progress: float) -> np.ndarray:
    """`(advantages, ratios)` values of `r*A - objective` on the plotting grid, at value error
    0 and entropy `ENTROPY`."""
    r, a = (jnp.asarray(g, jnp.float32) for g in np.meshgrid(RATIOS, ADVANTAGES))
    inputs = ObjectiveInputs(ratio=r, log_ratio=jnp.log(r), advantage=a,
                             value_error=jnp.zeros_like(r), entropy=jnp.full_like(r, ENTROPY),
                             # PPO's default, for objectives that read the hyperparameter
                             progress=jnp.float32(progress), clip_eps=jnp.float32(0.2))
    return np.asarray(r * a - objective(inputs, meta_params))


def drift_figure(objective: LearnedObjective, meta_params: Any, title: str) -> Figure:
    """One panel, or three (progress 0, 0.5, 1) for a rule that sees training progress."""
    is_drift = isinstance(objective, DriftObjective)
    temporal = bool(getattr(objective, "temporal", False)) or not is_drift
    progresses = [0.0, 0.5, 1.0] if temporal else [None]
    fig = Figure(figsize=(4.2 * len(progresses), 3.6), dpi=100)
    axes = fig.subplots(1, len(progresses), squeeze=False)
    for ax, prog in zip(axes[0], progresses, strict=True):
        grid = (drift_grid(objective, meta_params, prog) if is_drift
                else implied_drift_grid(objective, meta_params, prog))
        im = ax.pcolormesh(RATIOS, ADVANTAGES, grid, shading="auto", cmap="viridis")
        ax.axvline(1.0, color="w", lw=0.8, ls="--")
        ax.set_xscale("log")
        # a log axis labels its minor ticks too ("6x10^-1" over "0.5"): label only these
        ax.set_xticks(RATIO_TICKS, [f"{t:g}" for t in RATIO_TICKS])
        ax.xaxis.set_minor_locator(NullLocator())
        ax.set_xlabel("ratio r")
        ax.set_ylabel("advantage A")
        ax.set_title(title if prog is None else f"{title}, progress {prog:.1f}", fontsize=9)
        fig.colorbar(im, ax=ax, label="drift" if is_drift
                     else f"r*A - objective (entropy {ENTROPY})")
    fig.tight_layout()
    return fig
