"""Heatmaps of a drift function over (ratio, advantage): watching a learned rule take shape."""

from __future__ import annotations

from typing import Any

import jax.numpy as jnp
import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
from matplotlib.figure import Figure  # noqa: E402

from metarl.learned import DriftObjective  # noqa: E402

RATIOS = np.exp(np.linspace(np.log(0.5), np.log(2.0), 121))
ADVANTAGES = np.linspace(-3.0, 3.0, 121)


def drift_grid(objective: DriftObjective, meta_params: Any,
               progress: float | None = None) -> np.ndarray:
    """`(advantages, ratios)` drift values on the plotting grid."""
    r, a = np.meshgrid(RATIOS, ADVANTAGES)
    p = None if progress is None else jnp.full(r.shape, progress, jnp.float32)
    return np.asarray(objective.drift(meta_params, jnp.asarray(r, jnp.float32),
                                      jnp.asarray(a, jnp.float32), p))


def drift_figure(objective: DriftObjective, meta_params: Any, title: str) -> Figure:
    """One panel, or three (progress 0, 0.5, 1) for a temporally aware rule."""
    temporal = bool(getattr(objective, "temporal", False))
    progresses = [0.0, 0.5, 1.0] if temporal else [None]
    fig, axes = plt.subplots(1, len(progresses), figsize=(4.2 * len(progresses), 3.6),
                             dpi=100, squeeze=False)
    for ax, prog in zip(axes[0], progresses, strict=True):
        grid = drift_grid(objective, meta_params, prog)
        im = ax.pcolormesh(RATIOS, ADVANTAGES, grid, shading="auto", cmap="viridis")
        ax.axvline(1.0, color="w", lw=0.8, ls="--")
        ax.set_xscale("log")
        ax.set_xticks([0.5, 1.0, 2.0], ["0.5", "1", "2"])
        ax.set_xlabel("ratio r")
        ax.set_ylabel("advantage A")
        ax.set_title(title if prog is None else f"{title}, progress {prog:.1f}", fontsize=9)
        fig.colorbar(im, ax=ax, label="drift")
    fig.tight_layout()
    return fig
