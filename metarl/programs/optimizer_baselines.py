"""A learned optimizer against hand-designed ones, each tuned per task: what `metarl evaluate`
reports for an optimizer search.

Every baseline trains with each learning rate of a grid around the `[inner]` one (all of
them in one compiled, `vmap`-ed call: the learning rate is a traced hyperparameter) and keeps,
per task, the rate with the best final score on the evaluation's own seeds. Tuning on the
very runs that are reported favours the baselines; a learned optimizer that wins anyway wins.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import jax
import numpy as np
import optax

from metarl.programs.evaluation import RuleResult
from metarl.programs.stats import iqm
from metarl.programs.task_eval import TaskEval
from metarl.spec.schema import Inner, Task

PyTree = Any
# multiples of the [inner] learning rate tried for every baseline: half-decades from 0.1x to
# 100x, so SGD with momentum (which wants larger steps than Adam) has its optimum inside too
LR_GRID = tuple(float(10 ** (e / 2)) for e in range(-2, 5))
CENSORED = 2.0  # a run that never reaches the target counts as this many budgets


TUNED_BASELINES = ("adam", "adamw", "sgd_momentum")


def baseline_slot(name: str) -> Callable[[Any, PyTree], optax.GradientTransformation]:
    """The optimizer slot of a hand-designed optimizer at the traced learning rate."""
    makers = {
        "adam": lambda lr: optax.adam(lr),
        "adamw": lambda lr: optax.adamw(lr, weight_decay=1e-4),
        "sgd_momentum": lambda lr: optax.sgd(lr, momentum=0.9),
    }
    make = makers[name]
    return lambda hparams, meta: make(hparams.lr)


def _run(te: TaskEval, key: jax.Array, meta: PyTree, hparams: Any) -> np.ndarray:
    return np.asarray(jax.jit(te.curves)(key, meta, hparams))


def _run_grid(te: TaskEval, key: jax.Array, hparams: Any) -> np.ndarray:
    """`(grid, seeds, updates)` curves, one row per learning rate of `LR_GRID`."""
    lrs = np.asarray(LR_GRID, np.float32) * np.float32(hparams.lr)
    grid = hparams._replace(lr=lrs)
    axes = jax.tree.map(lambda _: None, hparams)._replace(lr=0)
    curves = jax.jit(jax.vmap(te.curves, in_axes=(None, None, axes)))(key, None, grid)
    return np.asarray(curves)


def _result(res: RuleResult, te: TaskEval, curves: np.ndarray) -> None:
    final = curves[:, -te.tail:].mean(1)
    label = te.task.label
    res.curves[label] = curves
    res.final[label] = final
    res.normalised[label] = np.asarray(te.normalise(final))


def compare_optimizers(candidates: dict[str, tuple[Callable[[Task], Any], PyTree]],
                       hparams: Any, tasks: list[Task], inner: Inner, baselines: list[str],
                       final_fraction: float, seed: int = 0) -> dict[str, RuleResult]:
    """Each candidate `name: (slot(task), meta_params)` as it is, then each baseline tuned,
    on every task, `inner.seeds` seeds each, the same seeds for all (common random numbers).
    A baseline's result carries its tuned learning rate per task in `settings`."""
    results = {name: RuleResult() for name in (*candidates, *baselines)}
    hp = hparams.as_arrays()
    keys = jax.random.split(jax.random.PRNGKey(seed), len(tasks))
    for task, key in zip(tasks, keys, strict=True):
        for name, (slot, meta) in candidates.items():
            te = TaskEval(task, inner, final_fraction, optimizer=slot(task))
            _result(results[name], te, _run(te, key, meta, hp))
        for name in baselines:
            te = TaskEval(task, inner, final_fraction, optimizer=baseline_slot(name))
            grid = _run_grid(te, key, hp)
            score = np.nanmean(grid[:, :, -te.tail:].mean(2), axis=1)
            best = int(np.nanargmax(np.where(np.isfinite(score), score, -np.inf)))
            _result(results[name], te, grid[best])
            results[name].settings[task.label] = LR_GRID[best] * float(hparams.lr)
    return results


def updates_to_reach(curve: np.ndarray, target: float, window: int) -> float:
    """The first update (1-based) at which the trailing mean of `curve` over `window` updates
    reaches `target`; `CENSORED` budgets if it never does."""
    smooth = np.convolve(curve, np.ones(window) / window, mode="full")[: len(curve)]
    smooth[: window - 1] = np.cumsum(curve[: window - 1]) / np.arange(1, window)
    # the tolerance lets a curve whose window mean *is* the target (Adam's own) reach it
    hit = np.flatnonzero(smooth >= target - 1e-6 * max(1.0, abs(target)))
    return float(hit[0] + 1) if hit.size else CENSORED * len(curve)


def steps_ratio(learned: np.ndarray, adam: np.ndarray, window: int) -> float:
    """Updates the learned optimizer needs to reach tuned Adam's final score, over the
    updates Adam needs, both on their seed-mean `(seeds, updates)` curves: below 1 is
    faster (Metz et al. 2022's "steps to reach Adam's loss")."""
    mean_l, mean_a = learned.mean(0), adam.mean(0)
    target = mean_a[-window:].mean()
    return updates_to_reach(mean_l, target, window) / updates_to_reach(mean_a, target, window)


def steps_to_reach(results: dict[str, RuleResult], reps: int = 1000, seed: int = 0
                   ) -> dict[str, float]:
    """Per task and over tasks (IQM with a paired bootstrap 95% CI over seeds), the ratio of
    updates the learned optimizer (the first result) needs to reach tuned Adam's final score
    to Adam's own."""
    if "adam" not in results:
        return {}
    learned, adam = next(iter(results.values())), results["adam"]
    tasks = list(learned.curves)
    windows = {t: max(1, round(adam.curves[t].shape[1] * 0.1)) for t in tasks}
    out = {f"steps_ratio_to_adam/{t}": steps_ratio(learned.curves[t], adam.curves[t],
                                                   windows[t]) for t in tasks}
    ratios = np.array([out[f"steps_ratio_to_adam/{t}"] for t in tasks])
    out["steps_ratio_to_adam/iqm"] = iqm(ratios)
    seeds = len(next(iter(learned.curves.values())))
    if seeds > 1:
        rng = np.random.default_rng(seed)
        stats = []
        for _ in range(reps):
            idx = rng.integers(0, seeds, seeds)  # the same seeds for both: paired
            stats.append(iqm([steps_ratio(learned.curves[t][idx], adam.curves[t][idx],
                                          windows[t]) for t in tasks]))
        out["steps_ratio_to_adam/iqm_ci_low"] = float(np.quantile(stats, 0.025))
        out["steps_ratio_to_adam/iqm_ci_high"] = float(np.quantile(stats, 0.975))
    return out
