"""The search kinds that score a candidate by training agents on a task suite: fitness is the
per-task normalised final return averaged over tasks (`SuiteEval.fitness`), and what tracking
records per task is the same for all of them."""

from __future__ import annotations

from typing import Any

import numpy as np

from metarl.outer.problem import TruncatedProblem
from metarl.ppo import HParams
from metarl.programs.kind import SearchKind
from metarl.programs.task_eval import SuiteEval

PyTree = Any


class SuiteKind(SearchKind):
    """A kind whose candidates train on `self.suite` (the spec's training tasks). Subclasses
    set `self.suite` and implement `inner_args`."""

    suite: SuiteEval
    differentiable = True  # through PPO's SGD steps (`PPO.meta_objective`)

    def inner_args(self, meta: PyTree) -> tuple[PyTree, HParams]:
        """What a candidate trains with: `(meta_params for the inner loop, hparams)`."""
        raise NotImplementedError

    def problem(self, truncations: int = 1, differentiable: bool = False) -> TruncatedProblem:
        return self.suite.problem(self.inner_args, truncations, differentiable)

    @property
    def steps_per_candidate(self) -> int:
        return self.suite.steps_per_candidate

    def member_metrics(self, info: Any) -> dict[str, np.ndarray]:
        returns = np.asarray(info, np.float64)
        return {f"return/{label}": returns[:, i] for i, label in enumerate(self.suite.labels)}

    def generation_metrics(self, info: Any) -> dict[str, float]:
        returns = np.asarray(info, np.float64)
        stats = {}
        for i, label in enumerate(self.suite.labels):
            column = returns[:, i][np.isfinite(returns[:, i])]
            # NaN (left out of the log) when no member's return on the task is finite
            stats[f"task/{label}/return_mean"] = float(column.mean()) if column.size else np.nan
            stats[f"task/{label}/return_best"] = float(column.max()) if column.size else np.nan
        return stats
