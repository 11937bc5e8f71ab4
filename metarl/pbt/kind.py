"""Search kind `pbt`: Population Based Training over the inner loop's hyperparameters
(Jaderberg et al. 2017), with PB2's explore step as an option (Parker-Holder et al. 2020).

The population is the outer loop's (`outer.algorithm = "pbt"`, `metarl.pbt.outer`): one PBT
interval, a truncation of every member's carried inner runs, is one outer step, so checkpoints,
resume, progress and MLflow work as for every search. A member's fitness at an interval is its
normalised mean return over the interval's updates, averaged over the training tasks. The
kind says what a member is (`PBTMember`: hyperparameters as quantiles of `[pbt.search_space]`,
its line's schedule, whom it copied) and records it: each member's schedule, returns and
lineage as a child run at the end, `lineage.json` and `lineage.png` at every checkpoint, and
the best member's schedule as a module (`metarl export`)."""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any, Literal

import jax
import jax.numpy as jnp
import numpy as np
from matplotlib.figure import Figure
from pydantic import Field, model_validator

from metarl.learned import make_objective
from metarl.outer.settings import normalise_name
from metarl.pbt.lineage import SOURCE_COLUMN, lineage_figure, lineage_json, member_series
from metarl.pbt.population import PBTMember
from metarl.pbt.schedule_module import write_schedule
from metarl.pbt.settings import PBTFields
from metarl.ppo import HParams
from metarl.ppo.objectives import ppo_clip
from metarl.programs.kind import MemberRun, register_kind
from metarl.programs.suite_kind import SuiteKind
from metarl.programs.task_eval import SuiteEval
from metarl.spec.schema import SearchSpec

PyTree = Any


class PBTSpec(SearchSpec):
    """A `pbt` search: `[pbt]` names the hyperparameters and how members exploit and explore;
    `outer.population_size` members, `outer.truncations` intervals per run, one per
    generation."""

    kind: Literal["pbt"] = "pbt"
    pbt: PBTFields = Field(description="PBT's search space, exploit and explore settings")

    @model_validator(mode="before")
    @classmethod
    def _pbt_outer_loop(cls, data: Any) -> Any:
        # the population is the outer loop's: a `pbt` search runs outer loop `pbt` unless told
        if isinstance(data, dict) and isinstance(data.get("outer", {}), dict) \
                and "algorithm" not in data.get("outer", {}):
            data = {**data, "outer": {**data.get("outer", {}), "algorithm": "pbt"}}
        return data

    @model_validator(mode="after")
    def _fits(self) -> PBTSpec:
        outer = self.outer
        if normalise_name(outer.algorithm) != "pbt":
            raise ValueError(f"kind 'pbt' runs with outer.algorithm = 'pbt' (one PBT interval "
                             f"per outer step), not {outer.algorithm!r}")
        if outer.generations > outer.truncations:
            raise ValueError(
                f"outer.generations = {outer.generations} is more than the "
                f"outer.truncations = {outer.truncations} intervals of one training run: a "
                "pbt search trains its population once, one interval per generation")
        if self.inner.algorithm == "pbt":
            raise ValueError("kind 'pbt' trains its own population: give it the agents' inner "
                             "loop (inner.algorithm = 'ppo', 'rppo' or 'rl2'), not 'pbt'")
        fields = getattr(self.inner.hparams(), "_fields", ())
        self.pbt.check_names(fields, "pbt.search_space", self.inner.algorithm)
        self.pbt.check_population(outer.population_size, "outer.population_size")
        return self


@register_kind
class PBTSearch(SuiteKind):
    name = "pbt"
    Spec = PBTSpec
    differentiable = False  # members are chosen and copied, not differentiated

    def __init__(self, spec: PBTSpec):
        super().__init__(spec)
        self.space = spec.pbt.space()
        self.base = spec.inner.hparams()
        self.intervals = spec.outer.truncations
        # members may carry a learned objective's weights, searched alongside (`[pbt]`)
        name = spec.pbt.objective
        self.objective = None if name is None else make_objective(name)
        # final_fraction 1: an interval's score is its mean return, whatever its position
        self.suite = SuiteEval(spec.tasks.train, spec.inner, 1.0,
                               ppo_clip if self.objective is None else self.objective)

    def initial_mean(self) -> PBTMember:
        d = self.space.dims
        # NaN marks intervals not trained yet: a schedule is as long as the run got
        return PBTMember(jnp.full((d,), 0.5, jnp.float32),
                         jnp.full((self.intervals, d), jnp.nan, jnp.float32),
                         jnp.zeros((), jnp.int32), self._objective_start())

    def _objective_start(self) -> PyTree:
        """The objective's weights every member starts from: near PPO-clip where it can."""
        if self.objective is None:
            return None
        key = jax.random.PRNGKey(self.spec.seed)
        near_ppo = getattr(self.objective, "init_near_ppo", None)
        if near_ppo is not None:
            return near_ppo(key, clip_eps=self.base.clip_eps)
        return self.objective.init(key)

    def loop_settings(self) -> dict[str, Any]:
        return {"explorer": self.spec.pbt.explorer(), "quantile": self.spec.pbt.quantile,
                "objective_sigma": self.spec.pbt.objective_sigma}

    def inner_args(self, meta: PBTMember) -> tuple[PyTree, HParams]:
        values = self.space.value(meta.u)
        base = self.base.as_arrays()
        return meta.objective, base._replace(
            **{n: values[i] for i, n in enumerate(self.space.names)})

    # -- what tracking records ---------------------------------------------------------------
    def describe(self, meta: PyTree) -> dict[str, float]:
        return self.space.as_dict(np.asarray(meta.u))

    def headline(self, meta: PyTree) -> dict[str, float]:
        return {**self.base._asdict(), **self.describe(meta)}

    def schedule(self, meta: PyTree) -> dict[str, list[float]]:
        """The member's line's hyperparameters per interval trained so far."""
        rows = np.asarray(meta.schedule, np.float32)
        rows = rows[~np.isnan(rows).any(axis=1)]
        values = self.space.value(rows, np) if len(rows) else np.zeros((0, self.space.dims))
        return {n: [float(v) for v in values[:, i]] for i, n in enumerate(self.space.names)}

    def export_params(self, meta: PyTree) -> dict[str, Any]:
        return {"hparams": self.headline(meta), "schedule": self.schedule(meta)}

    def population_columns(self, population: PyTree) -> dict[str, np.ndarray]:
        values = self.space.value(np.asarray(population.u, np.float32), np)
        columns = {n: values[:, i] for i, n in enumerate(self.space.names)}
        return columns | {SOURCE_COLUMN: np.asarray(population.source)}

    def history_artifacts(self, rows: list[dict[str, Any]]) -> dict[str, Figure | str]:
        if not rows:
            return {}
        names = self.space.names
        return {"lineage.json": lineage_json(rows, names),
                "lineage.png": lineage_figure(rows, names, f"{self.spec.name}: PBT lineage")}

    def member_runs(self, rows: list[dict[str, Any]]) -> list[MemberRun]:
        """One child run per member: params its hyperparameters at the last interval, metrics
        its schedule (`hp/<name>`), scores, returns and `copied_from` per interval."""
        if not rows:
            return []
        runs = []
        for m in range(len(rows[0]["fitness"])):
            series = member_series(rows, m)
            params = {n: series[n][-1] for n in self.space.names}
            metrics: dict[str, Any] = {("hp/" + k if k in self.space.names else k): v
                                       for k, v in series.items()}
            runs.append(MemberRun(f"member-{m:03d}", params | {"member": m}, metrics,
                                  {"metarl.trial": "pbt-member", "metarl.member": str(m)}))
        return runs

    # -- what commands do with a result ------------------------------------------------------
    def default_module_name(self) -> str:
        return f"{self.spec.name}_schedule.py"

    def export_module(self, params: PyTree, path: Path, provenance: dict[str, Any],
                      symbolic: bool = True) -> Path:
        """The member's schedule as a module that replays it (`metarl.pbt.schedule_module`)."""
        del symbolic  # a schedule has no closed form to fit
        clean = {k: (None if isinstance(v, float) and not math.isfinite(v) else v)
                 for k, v in provenance.items()}
        inner = self.spec.inner.model_dump(mode="json")
        tasks = [t.model_dump(mode="json") for t in self.spec.tasks.train]
        path = write_schedule(path, self.schedule(params), self.intervals,
                              dict(self.base._asdict()), inner, tasks, clean)
        if self.objective is not None:  # the member's objective, as an update-rule module
            from metarl.export import write_module

            write_module(self.objective, params.objective, objective_module_path(path), clean)
        return path


def objective_module_path(schedule_path: Path) -> Path:
    """Where the export of a search with a learned objective writes the objective's weights,
    beside the schedule module."""
    return schedule_path.with_name(f"{schedule_path.stem}_objective.py")
