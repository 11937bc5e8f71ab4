"""Pictures of a learned optimizer: its update over (gradient, momentum) beside Adam's, and the
effective step size it takes per layer while training.

The heatmap is drawn on one synthetic tensor whose elements are the grid points, so it shows
the update of an element *in the company of the whole grid*: the learned optimizers normalise
every feature by its RMS over the tensor (Metz et al. 2022), so a gradient of 2 means "twice
the grid's typical gradient", not an absolute size. Adam's update does not depend on that
context, which is why it is the reference drawn over the learned one.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, NamedTuple

import jax
import jax.numpy as jnp
import numpy as np
import optax
from matplotlib.colors import TwoSlopeNorm
from matplotlib.figure import Figure
from matplotlib.ticker import MaxNLocator

from metarl.learned_optimizers.features import Moments
from metarl.learned_optimizers.registry import (
    make_learned_optimizer,
    optimizer_settings,
)

PyTree = Any
GRADIENTS = np.linspace(-3.0, 3.0, 61)
# In units of sqrt(v_hat) = 1: |m_hat| <= sqrt(v_hat) holds for any gradient history (Jensen),
# give or take the decays' difference, so a wider range would picture states that never occur.
MOMENTA = np.linspace(-1.0, 1.0, 41)
STEP = 1000  # the step the grid is pictured at: bias corrections of b1 are then 1
PROGRESS = 0.5


class UpdateGrid(NamedTuple):
    """Updates divided by the learning rate, `(len(momenta), len(gradients))`."""

    gradients: np.ndarray
    momenta: np.ndarray
    learned: np.ndarray
    adam: np.ndarray


def update_grid(name: str, meta_params: PyTree, settings: dict | None = None, *,
                gradients: np.ndarray = GRADIENTS, momenta: np.ndarray = MOMENTA,
                step: int = STEP, progress: float = PROGRESS) -> UpdateGrid:
    """The learned optimizer's update / learning rate at every (gradient g, first momentum m)
    of the grid, and Adam's (`optax.scale_by_adam` with the same b1, b2, eps, eps_root).

    One call of `update` on a `(len(momenta), len(gradients))` tensor realises the grid: the
    state is chosen so that *after* the step's moment update (which folds g in) the first
    momentum's bias-corrected value is m, every slower momentum holds what a gradient steady at
    m for `step` steps leaves (m * (1 - decay**step)), the bias-corrected second moment is 1
    (so m and g are in units of sqrt(v_hat)), the step count is `step`, the parameters are 0,
    training progress is `progress`, and a recurrent optimizer's hidden state is fresh (zero).
    """
    s = optimizer_settings(name, settings)
    decays, b2 = tuple(s["momentum_decays"]), float(s["b2"])
    lr = float(s.get("learning_rate", 1.0))
    g, m = (x.astype(np.float64) for x in np.meshgrid(gradients, momenta))
    # the moments *before* this step's update, solved from those wanted after it
    after = [m * (1.0 - d ** step) for d in decays]
    before = [(a - (1.0 - d) * g) / d for a, d in zip(after, decays, strict=True)]
    nu_before = ((1.0 - b2 ** step) - (1.0 - b2) * g ** 2) / b2
    f32 = lambda x: {"w": jnp.asarray(x, jnp.float32)}  # noqa: E731
    params, grads = f32(np.zeros_like(g)), f32(g)
    count = jnp.asarray(step - 1, jnp.int32)

    tx = make_learned_optimizer(name, meta_params, **s)
    state = tx.init(params)
    state = state._replace(moments=Moments(count, tuple(f32(x) for x in before), f32(nu_before)))
    learned = tx.update(grads, state, params, progress=progress)[0]["w"]

    adam = optax.scale_by_adam(decays[0], b2, float(s["eps"]), float(s["eps_root"]))
    adam_state = optax.ScaleByAdamState(count, f32(before[0]), f32(nu_before))
    reference = -adam.update(grads, adam_state)[0]["w"]
    return UpdateGrid(np.asarray(gradients), np.asarray(momenta),
                      np.asarray(learned, np.float64) / lr, np.asarray(reference, np.float64))


def update_heatmap(name: str, meta_params: PyTree, settings: dict | None = None,
                   title: str = "") -> Figure:
    """The learned update / learning rate over (gradient, first momentum) in colour, Adam's as
    black contours at the same levels; see `update_grid` for the values held fixed."""
    grid = update_grid(name, meta_params, settings)
    fig = Figure(figsize=(5.6, 4.2), dpi=100)
    ax = fig.subplots()
    # one symmetric colour scale so that white is "no step" and Adam's levels read the same
    vmax = float(max(np.abs(grid.learned).max(), np.abs(grid.adam).max(), 1e-12))
    im = ax.pcolormesh(grid.gradients, grid.momenta, grid.learned, shading="auto",
                       cmap="RdBu_r", norm=TwoSlopeNorm(0.0, -vmax, vmax))
    levels = [v for v in MaxNLocator(10, symmetric=True).tick_values(-vmax, vmax)
              if abs(v) < vmax]
    contours = ax.contour(grid.gradients, grid.momenta, grid.adam, levels=levels, colors="k",
                          linewidths=0.8, linestyles="solid")
    ax.clabel(contours, fontsize=7, fmt=lambda v: f"{v:.2g}")
    ax.set_xlabel("gradient g / sqrt(v_hat)")
    ax.set_ylabel("first momentum m_hat / sqrt(v_hat)")
    held = (f"black lines: Adam. v_hat=1, step {STEP}, progress {PROGRESS:g}, params 0;\n"
            "features normalised over this grid")
    ax.set_title(f"{title}\n{held}" if title else held, fontsize=8)
    fig.colorbar(im, ax=ax, label="update / learning rate")
    fig.tight_layout()
    return fig


def _rms(x: jax.Array) -> jax.Array:
    return jnp.sqrt(jnp.mean(jnp.square(x.astype(jnp.float32))))


def layer_step_sizes(tx: optax.GradientTransformation, loss_fn: Callable[[PyTree, Any], Any],
                     params: PyTree, batches: PyTree, *, measure: str = "ratio"
                     ) -> dict[str, np.ndarray]:
    """Trains `params` on `loss_fn(params, batch)` with `tx`, one step per entry of `batches`
    (a pytree with a leading step axis, scanned), and returns per leaf, keyed by its path
    (`a/b/w`), one value per step.

    `measure="ratio"` (default): the effective step size RMS(update) / RMS(gradient) over the
    leaf's elements, i.e. the learning rate plain SGD would need to move the leaf as far;
    SGD at learning rate lr gives lr at every step, and Adam's is about lr / RMS(gradient)
    late in training. A step whose gradient is exactly zero gives NaN. `measure="update_rms"`:
    RMS(update) alone, how far the leaf moves.
    """
    if measure not in ("ratio", "update_rms"):
        raise ValueError(f"measure must be 'ratio' or 'update_rms', got {measure!r}")

    def step(carry, batch):
        params, state = carry
        grads = jax.grad(loss_fn)(params, batch)
        updates, state = tx.update(grads, state, params)
        sizes = jax.tree.map(_rms, updates), jax.tree.map(_rms, grads)
        return (optax.apply_updates(params, updates), state), sizes

    @jax.jit
    def train(params, batches):
        return jax.lax.scan(step, (params, tx.init(params)), batches)[1]

    update_rms, grad_rms = (jax.tree.leaves(x) for x in train(params, batches))
    out: dict[str, np.ndarray] = {}
    for (path, _), u, g in zip(jax.tree_util.tree_flatten_with_path(params)[0], update_rms,
                               grad_rms, strict=True):
        key = jax.tree_util.keystr(path, simple=True, separator="/")
        u, g = np.asarray(u, np.float64), np.asarray(g, np.float64)
        if measure == "update_rms":
            out[key] = u
        else:
            with np.errstate(divide="ignore", invalid="ignore"):
                out[key] = np.where(g > 0, u / g, np.nan)
    return out


def step_size_figure(step_sizes: dict[str, np.ndarray], title: str = "",
                     ylabel: str = "RMS(update) / RMS(gradient)") -> Figure:
    """One line per layer against the step, on a log scale."""
    fig = Figure(figsize=(5.5, 3.6), dpi=100)
    ax = fig.subplots()
    for key, values in step_sizes.items():
        values = np.asarray(values, np.float64)
        ax.plot(np.arange(1, values.size + 1), values, lw=1.2, label=key)
    ax.set_yscale("log")
    ax.set_xlabel("step")
    ax.set_ylabel(ylabel)
    if title:
        ax.set_title(title, fontsize=9)
    if step_sizes:
        ax.legend(fontsize=7, ncol=2 if len(step_sizes) > 6 else 1)
    fig.tight_layout()
    return fig
