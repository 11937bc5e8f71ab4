"""The pictures an optimizer search logs at every checkpoint: the learned update over
(gradient, momentum) beside Adam's, and the effective step size of each layer over a
training run."""

from __future__ import annotations

from typing import Any

import jax
from matplotlib.figure import Figure

from metarl.distill.optimizer import regression_problem
from metarl.learned_optimizers import make_learned_optimizer
from metarl.learned_optimizers.plots import layer_step_sizes, step_size_figure, update_heatmap

PyTree = Any
PROBE_STEPS = 300  # the probe run's length: long enough for the progress feature to sweep


def probe_step_sizes(name: str, meta: PyTree, settings: dict[str, Any],
                     learning_rate: float, seed: int = 0) -> dict[str, Any]:
    """Per-layer effective step sizes of the optimizer training the probe problem (a small
    regression MLP, the one distillation records) for `PROBE_STEPS` steps: the same problem
    at every checkpoint, so successive pictures differ only by the optimizer."""
    problem = regression_problem()
    k_init, k_data = jax.random.split(jax.random.PRNGKey(seed))
    batches = jax.vmap(problem.batch)(jax.random.split(k_data, PROBE_STEPS))
    tx = make_learned_optimizer(name, meta, learning_rate=learning_rate,
                                total_steps=PROBE_STEPS, **settings)
    return layer_step_sizes(tx, problem.loss, problem.init_params(k_init), batches)


def optimizer_figures(kind: Any, mean: PyTree, generation: int) -> dict[str, Figure]:
    """`{artifact path: figure}` for the search mean of a `learned_optimizer` search."""
    name, settings = kind.choice.name, kind.settings
    lr = float(kind.hparams.lr)
    heat = update_heatmap(name, mean, settings, title=f"mean optimizer, generation {generation}")
    steps = step_size_figure(probe_step_sizes(name, mean, settings, lr, kind.spec.seed),
                             title=f"per-layer step size on the probe, generation {generation}")
    return {f"update/gen_{generation:05d}.png": heat,
            f"step_sizes/gen_{generation:05d}.png": steps}
