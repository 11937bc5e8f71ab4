"""Search kind `hparams`: random search or ES over PPO hyperparameters (AutoRL baseline).

Candidates live in an unconstrained "unit" space: each hyperparameter is a real `z` mapped
through a sigmoid onto its range (log-scaled where the spec says `log = true`). ES moves
freely in z; random search draws z = logit(u), u ~ U(0, 1), i.e. uniformly over the range.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, Literal

import jax
import jax.numpy as jnp
import numpy as np
from pydantic import Field, model_validator

from metarl.ppo import HParams
from metarl.ppo.objectives import ppo_clip
from metarl.programs.evaluation import RuleResult, evaluate_rules
from metarl.programs.kind import register_kind
from metarl.programs.meta_test import MetaTest, meta_test_inner, meta_test_window
from metarl.programs.ranges import unit_to_range
from metarl.programs.suite_kind import SuiteKind
from metarl.programs.task_eval import SuiteEval
from metarl.spec.schema import Range, SearchSpec, Task

PyTree = Any


class HParamsSpec(SearchSpec):
    """An `hparams` search: `[search_space]` names the hyperparameters searched."""

    kind: Literal["hparams"] = "hparams"
    search_space: dict[str, Range] = Field(
        default_factory=dict, description="hyperparameter name = range, e.g. lr = { low = "
        "1e-4, high = 1e-2, log = true }; the others stay at their [inner] values")

    @model_validator(mode="after")
    def _searchable(self) -> HParamsSpec:
        if not self.search_space:
            raise ValueError("an hparams search needs a [search_space] table, e.g. "
                             "lr = { low = 1e-4, high = 1e-2, log = true }")
        unknown = sorted(set(self.search_space) - set(HParams._fields))
        if unknown:
            raise ValueError(f"search_space has unknown hyperparameter(s) {unknown}; "
                             f"allowed: {', '.join(HParams._fields)}")
        return self


@register_kind
class HParamSearch(SuiteKind):
    name = "hparams"
    Spec = HParamsSpec
    baselines = ("inner",)  # the [inner] hyperparameters the search started from

    def __init__(self, spec: HParamsSpec):
        super().__init__(spec)
        self.space = dict(sorted(spec.search_space.items()))
        self.base = spec.inner.hparams()
        self.suite = SuiteEval(spec.tasks.train, spec.inner, spec.outer.final_fraction)
        if spec.tasks.held_out:
            self.meta_test = self._meta_test(spec)

    def _meta_test(self, spec: HParamsSpec) -> MetaTest:
        """The search mean against the `[inner]` hyperparameters on the held-out tasks."""
        suite = SuiteEval(spec.tasks.held_out, meta_test_inner(spec), meta_test_window(spec),
                          where="tasks.held_out")
        base = self.base.as_arrays()
        return MetaTest(
            suite, jax.jit(lambda z, key: suite.candidate_returns(key, None, self.to_hparams(z))),
            jax.jit(lambda key: suite.candidate_returns(key, None, base)), "inner")

    def initial_mean(self) -> dict[str, jax.Array]:
        return {name: jnp.zeros((), jnp.float32) for name in self.space}

    def sampler(self) -> Callable[[jax.Array], dict[str, jax.Array]]:
        def sample(key: jax.Array) -> dict[str, jax.Array]:
            keys = jax.random.split(key, len(self.space))
            return {name: jax.random.logistic(k) for k, name in zip(keys, self.space,
                                                                     strict=True)}
        return sample

    def to_hparams(self, z: dict[str, jax.Array]) -> HParams:
        values = {name: unit_to_range(z[name], r) for name, r in self.space.items()}
        return self.base.as_arrays()._replace(**values)

    def inner_args(self, z: dict[str, jax.Array]) -> tuple[None, HParams]:
        return None, self.to_hparams(z)

    def describe(self, z: PyTree) -> dict[str, float]:
        """A candidate as the hyperparameter values a person would read."""
        return {name: float(unit_to_range(z[name], r, np)) for name, r in self.space.items()}

    def headline(self, z: PyTree) -> dict[str, float]:
        return {**self.base._asdict(), **self.describe(z)}

    def export_params(self, z: PyTree) -> dict[str, Any]:
        return {"hparams": self.headline(z)}

    def population_columns(self, population: PyTree) -> dict[str, np.ndarray]:
        return {name: unit_to_range(population[name], r, np) for name, r in self.space.items()}

    def compare(self, candidate: PyTree, tasks: list[Task], seeds: int, baselines: list[str],
                final_fraction: float, seed: int) -> dict[str, RuleResult]:
        """The found hyperparameters against the `[inner]` ones, same seeds."""
        runs = {"found": (ppo_clip, None, self._host_hparams(candidate))}
        runs.update({name: (ppo_clip, None, self.base) for name in baselines})
        inner = self.spec.inner.model_copy(update={"seeds": seeds})
        return evaluate_rules(runs, tasks, inner, final_fraction, seed)

    def _host_hparams(self, z: PyTree) -> HParams:
        return self.base._replace(**self.describe(z))
