"""Meta-tests: the search mean trained on the held-out tasks, beside a fixed baseline trained
on the same seeds, so that a user watching a search sees whether the candidate generalises
better than what they would have used without the search."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import jax
import numpy as np

from metarl.programs.task_eval import SuiteEval
from metarl.spec.schema import Inner, SearchSpec

PyTree = Any


def meta_test_inner(spec: SearchSpec) -> Inner:
    """The inner-loop settings of a meta-test: the spec's, with `tracking.meta_test_seeds`."""
    return spec.inner.model_copy(update={"seeds": spec.tracking.meta_test_seeds})


def meta_test_window(spec: SearchSpec) -> float:
    """The fraction of updates a meta-test scores: `tracking.meta_test_final_fraction`, or the
    fitness window."""
    return spec.tracking.meta_test_final_fraction or spec.outer.final_fraction


class MetaTest:
    """Scores a candidate on a held-out suite and adds the baseline's figures and the ratio.

    `candidate_returns(candidate, key)` and `baseline_returns(key)` give `(tasks,)` raw final
    returns. The runner passes the same key at every meta-test, so successive figures differ
    only by the candidate, and the baseline trains once per key.
    """

    def __init__(self, suite: SuiteEval, candidate_returns: Callable[[PyTree, jax.Array], Any],
                 baseline_returns: Callable[[jax.Array], Any], baseline: str):
        self.suite = suite
        self.baseline = baseline
        self._candidate = candidate_returns
        self._baseline = baseline_returns
        self._baseline_summaries: dict[bytes, dict[str, float]] = {}

    def __call__(self, candidate: PyTree, key: jax.Array) -> dict[str, float]:
        out = self.suite.summary(self._candidate(candidate, key))
        base = self._baseline_summary(key)
        out.update({f"{self.baseline}/{k}": v for k, v in base.items()})
        ref = base["normalised_return"]
        # below the task's lower return bound a ratio means nothing
        out[f"ratio_to_{self.baseline}"] = out["normalised_return"] / ref if ref > 0 else np.nan
        return out

    def _baseline_summary(self, key: jax.Array) -> dict[str, float]:
        k = np.asarray(jax.random.key_data(key)).tobytes()
        if k not in self._baseline_summaries:
            self._baseline_summaries[k] = self.suite.summary(self._baseline(key))
        return self._baseline_summaries[k]
