"""Learned rule against hand-designed baselines on a task suite, same budget and seeds."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import jax
import numpy as np
from matplotlib.figure import Figure

from metarl.ppo import HParams
from metarl.programs.stats import bootstrap_ci, iqm
from metarl.programs.task_eval import TaskEval, normalise_return
from metarl.spec.schema import Inner, Task

PyTree = Any


@dataclass
class RuleResult:
    """One rule on every task: `(seeds,)` final returns and `(seeds, updates)` curves."""

    final: dict[str, np.ndarray] = field(default_factory=dict)
    normalised: dict[str, np.ndarray] = field(default_factory=dict)
    curves: dict[str, np.ndarray] = field(default_factory=dict)
    # per task, what the rule's runs were set to when it was chosen per task (a tuned rate)
    settings: dict[str, float] = field(default_factory=dict)

    def scores(self) -> np.ndarray:
        """`(seeds, tasks)` normalised final returns."""
        return np.stack(list(self.normalised.values()), axis=1)

    def iqm(self) -> tuple[float, float, float]:
        s = self.scores()
        return (iqm(s), *bootstrap_ci(s))


def evaluate_rules(runs: dict[str, tuple[Any, PyTree, HParams]], tasks: list[Task],
                   inner: Inner, final_fraction: float, seed: int = 0
                   ) -> dict[str, RuleResult]:
    """Train PPO with each `(objective, meta_params, hparams)` on each task, `inner.seeds`
    seeds. Every run sees the same seeds on a task (common random numbers)."""
    results = {name: RuleResult() for name in runs}
    keys = jax.random.split(jax.random.PRNGKey(seed), len(tasks))
    for task, key in zip(tasks, keys, strict=True):
        for name, (objective, params, hparams) in runs.items():
            te = TaskEval(task, inner, final_fraction, objective)
            curves = np.asarray(jax.jit(te.curves)(key, params, hparams.as_arrays()))
            final = curves[:, -te.tail:].mean(1)
            res = results[name]
            res.curves[task.label] = curves
            res.final[task.label] = final
            res.normalised[task.label] = np.asarray(te.normalise(final))
    return results


def reference_results(inner: Inner, tasks: list[Task], seeds: int, seed: int = 0
                      ) -> dict[str, RuleResult]:
    """The inner loop's classic algorithms on every task that has them (`reference_scores`),
    as results beside a comparison: `(seeds,)` scores, normalised as the task's, and a flat
    curve at the score (they do not learn over updates)."""
    results: dict[str, RuleResult] = {}
    keys = jax.random.split(jax.random.PRNGKey(seed), len(tasks))
    for task, key in zip(tasks, keys, strict=True):
        for name, scores in inner.reference_scores(task, seeds, key).items():
            res = results.setdefault(name, RuleResult())
            res.final[task.label] = np.asarray(scores, np.float64)
            res.normalised[task.label] = np.asarray(normalise_return(task, res.final[task.label]))
            res.curves[task.label] = res.final[task.label][:, None]
    # a table row needs every task: an algorithm some task lacks is left out
    return {n: r for n, r in results.items() if len(r.final) == len(tasks)}


def curves_figure(results: dict[str, RuleResult], title: str) -> Figure:
    tasks = list(next(iter(results.values())).curves)
    fig = Figure(figsize=(4.2 * len(tasks), 3.4), dpi=100)
    axes = fig.subplots(1, len(tasks), squeeze=False)
    for ax, task in zip(axes[0], tasks, strict=True):
        for name, res in results.items():
            c = res.curves[task]
            mean, se = c.mean(0), c.std(0) / np.sqrt(max(len(c), 1))
            if len(mean) == 1:  # a reference that does not learn: its level
                ax.axhline(mean[0], ls="--", lw=1, label=name, color=f"C{len(ax.lines)}")
                continue
            x = np.arange(1, len(mean) + 1)
            ax.plot(x, mean, label=name)
            ax.fill_between(x, mean - se, mean + se, alpha=0.2)
        ax.set_title(task, fontsize=9)
        ax.set_xlabel("inner-loop update")
        ax.set_ylabel("score (RL: episode return)")
        ax.grid(alpha=0.3)
    axes[0][0].legend(fontsize=8)
    fig.suptitle(title, fontsize=10)
    fig.tight_layout()
    return fig


def regret_figure(results: dict[str, RuleResult], title: str, oracle: str = "oracle"
                  ) -> Figure | None:
    """Per task, the oracle's score minus each other result's, over inner-loop updates (for
    RL²: the regret of a trial, as the agent learns), the classic algorithms as dashed levels;
    None when no result is the oracle."""
    if oracle not in results:
        return None
    best = {task: c.mean() for task, c in results[oracle].final.items()}
    others = {name: RuleResult(res.final, res.normalised,
                               {t: best[t] - c for t, c in res.curves.items()})
              for name, res in results.items() if name != oracle}
    fig = curves_figure(others, title)
    for ax in fig.axes:
        ax.set_ylabel(f"regret per trial (vs {oracle})")
    return fig
