"""Search kind `curriculum`: an outer loop over the curriculum of a `plr` inner loop — its
replay settings (replay probability, temperature, staleness weight, the PVL/MaxMC mix, ACCEL's
edit rate) and, with `inner.score_function = "learned"`, a level-scoring network over
per-level statistics — scored by the trained agents' solve rate on each task's
`eval_levels`.

Settings are searched in an unconstrained space: each is a real `z` mapped by a sigmoid onto
its range (`SETTING_RANGES`), starting from the `[inner]` value. What tracking records per
generation beyond fitness: the replay buffer's statistics and level complexity, each eval
level's solve rate, and (at checkpoints) pictures of the highest-scoring levels of the best
member's buffer.
"""

from __future__ import annotations

from typing import Any, Literal

import jax
import jax.numpy as jnp
import numpy as np
from matplotlib.figure import Figure
from pydantic import Field, model_validator

from metarl.curriculum.loop import CurriculumMeta, CurriculumParams
from metarl.curriculum.sampler import SamplerParams, statistics
from metarl.curriculum.scores import init_scorer
from metarl.outer.problem import Evaluation, TruncatedProblem
from metarl.programs.evaluation import RuleResult
from metarl.programs.kind import NotSupported, register_kind
from metarl.programs.meta_test import MetaTest, meta_test_inner, meta_test_window
from metarl.programs.ranges import unit_to_range
from metarl.programs.suite_kind import SuiteKind
from metarl.programs.task_eval import SuiteEval, TaskEval
from metarl.spec.base import Strict
from metarl.spec.schema import Range, SearchSpec, Task

PyTree = Any

SETTING_RANGES = {"replay_prob": Range(low=0.0, high=1.0),
                  "temperature": Range(low=0.03, high=3.0, log=True),
                  "staleness_coef": Range(low=0.0, high=1.0),
                  "score_mix": Range(low=0.0, high=1.0),
                  "edit_rate": Range(low=0.0, high=1.0)}
Setting = Literal["replay_prob", "temperature", "staleness_coef", "score_mix", "edit_rate"]
TOP_LEVELS = 8  # levels pictured per checkpoint


class CurriculumSection(Strict):
    """`[curriculum]`: which settings the search moves."""

    search: list[Setting] = Field(
        default_factory=lambda: ["replay_prob", "temperature", "staleness_coef", "score_mix"],
        description="curriculum settings the search moves; the others stay at their [inner] "
        "values")
    scorer_hidden: int = Field(16, gt=0, description="hidden units of the learned level "
                               "scorer (inner.score_function = 'learned')")


class CurriculumSpec(SearchSpec):
    kind: Literal["curriculum"] = "curriculum"
    curriculum: CurriculumSection = Field(default_factory=CurriculumSection)

    @model_validator(mode="after")
    def _needs_a_curriculum(self) -> CurriculumSpec:
        if self.inner.algorithm != "plr":
            raise ValueError(f"a curriculum search needs inner.algorithm = 'plr' (got "
                             f"{self.inner.algorithm!r}): the curriculum is the plr loop's")
        method = self.inner.method  # type: ignore[union-attr]
        if method == "dr":
            raise ValueError("inner.method = 'dr' has no curriculum to search; use plr, "
                             "robust_plr or accel")
        searched = set(self.curriculum.search)
        if "edit_rate" in searched and method != "accel":
            raise ValueError("curriculum.search includes 'edit_rate', which only "
                             "inner.method = 'accel' uses")
        if "score_mix" in searched and self.inner.score_function == "learned":  # type: ignore
            raise ValueError("curriculum.search includes 'score_mix', but inner."
                             "score_function = 'learned' scores levels with the network")
        if not searched and self.inner.score_function != "learned":  # type: ignore
            raise ValueError("nothing to search: list settings in curriculum.search or set "
                             "inner.score_function = 'learned'")
        return self


def _logit(u: float) -> float:
    u = min(max(u, 0.02), 0.98)  # a range's end is not reachable by a sigmoid
    return float(np.log(u / (1 - u)))


def _quantile(value: float, r: Range) -> float:
    if r.log:
        return (np.log(value) - np.log(r.low)) / (np.log(r.high) - np.log(r.low))
    return (value - r.low) / (r.high - r.low)


@register_kind
class CurriculumSearch(SuiteKind):
    name = "curriculum"
    Spec = CurriculumSpec
    baselines = ("dr", "inner")  # domain randomisation; the [inner] hand-set curriculum
    differentiable = False  # which levels are played is a discrete choice

    def __init__(self, spec: CurriculumSpec):
        super().__init__(spec)
        inner = spec.inner
        self.base_params: CurriculumParams = inner.curriculum_params()  # type: ignore
        self.base = inner.hparams()  # type: ignore[union-attr]
        self.searched = sorted(spec.curriculum.search)
        self.learned = inner.score_function == "learned"  # type: ignore[union-attr]
        self.suite = SuiteEval(spec.tasks.train, inner, spec.outer.final_fraction)
        self.level_names = [[level_label(v, i) for i, v in enumerate(t.eval_levels)]
                            or ["default"] for t in spec.tasks.train]
        self._best_levels: tuple[Any, Any] | None = None  # (loop, levels) for figures
        if spec.tasks.held_out:
            self.meta_test = self._meta_test(spec)

    # -- candidates -------------------------------------------------------------------------
    def _values(self) -> dict[str, float]:
        p = self.base_params
        return {"replay_prob": p.sampler.replay_prob, "temperature": p.sampler.temperature,
                "staleness_coef": p.sampler.staleness_coef, "score_mix": p.score_mix,
                "edit_rate": p.edit_rate}

    def initial_mean(self) -> dict[str, Any]:
        values = self._values()
        mean: dict[str, Any] = {"z": {n: jnp.float32(_logit(_quantile(float(values[n]),
                                                                      SETTING_RANGES[n])))
                                      for n in self.searched}}
        if self.learned:
            mean["scorer"] = init_scorer(jax.random.key(self.spec.seed),
                                         self.spec.curriculum.scorer_hidden)
        return mean

    def settings(self, meta: PyTree, xp: Any = jnp) -> dict[str, Any]:
        values = dict(self._values())
        values.update({n: unit_to_range(meta["z"][n], SETTING_RANGES[n], xp)
                       for n in self.searched})
        return values

    def curriculum_params(self, meta: PyTree) -> CurriculumParams:
        v = self.settings(meta)
        return CurriculumParams(
            SamplerParams(v["replay_prob"], v["temperature"], v["staleness_coef"]),
            v["score_mix"], v["edit_rate"])

    def inner_args(self, meta: PyTree) -> tuple[CurriculumMeta, Any]:
        return (CurriculumMeta(self.curriculum_params(meta), meta.get("scorer"), None),
                self.base.as_arrays())

    # -- fitness with buffer figures --------------------------------------------------------
    def problem(self, truncations: int = 1, differentiable: bool = False) -> TruncatedProblem:
        if differentiable:
            raise NotSupported("a curriculum search has no meta-gradient: which levels are "
                               "played is a discrete choice; use an ES outer loop or pes")
        base = self.suite.problem(self.inner_args, truncations)

        def unroll(meta: PyTree, runs: tuple, key: jax.Array) -> tuple[Evaluation, tuple]:
            ev, runs = base.unroll(meta, runs, key)
            params = self.curriculum_params(meta).sampler
            extras = [self._extras(t, r, params) for t, r in zip(self.suite.tasks, runs,
                                                                  strict=True)]
            return Evaluation(ev.fitness, {"returns": ev.info, "tasks": extras}), runs

        return TruncatedProblem(base.init_inner, unroll, truncations)

    def _extras(self, task: Any, runs: Any, params: SamplerParams) -> dict[str, Any]:
        """One task's buffer figures (mean over seeds), eval scores per level, and the
        highest-scoring levels of the first seed's buffer."""
        loop = task.loop
        buffers = runs.sampler
        prio = loop.curriculum.prioritization
        stats = jax.vmap(lambda b: statistics(b, params, prio))(buffers)
        complexity = jax.vmap(jax.vmap(loop.space.stats))(buffers.levels)
        filled = buffers.filled
        for name, values in complexity.items():
            v = values.astype(jnp.float32)
            stats[f"level_{name}"] = jnp.where(filled, v, 0).sum(1) / jnp.maximum(
                filled.sum(1), 1)
        first = jax.tree.map(lambda x: x[0], buffers)
        top = jnp.argsort(jnp.where(first.filled, -first.scores, jnp.inf))[:TOP_LEVELS]
        return {"buffer": jax.tree.map(lambda x: x.mean(0), stats),
                "eval_per_level": runs.last_eval.mean(0),
                "top_levels": jax.tree.map(lambda x: x[top], first.levels),
                "top_scores": jnp.where(first.filled[top], first.scores[top], jnp.nan)}

    # -- tracking ---------------------------------------------------------------------------
    def member_metrics(self, info: Any) -> dict[str, np.ndarray]:
        return super().member_metrics(info["returns"])

    def generation_metrics(self, info: Any) -> dict[str, float]:
        stats = super().generation_metrics(info["returns"])
        returns = np.asarray(info["returns"], np.float64).mean(1)
        best = int(np.nanargmax(np.where(np.isfinite(returns), returns, -np.inf)))
        for i, (task, extra) in enumerate(zip(self.suite.tasks, info["tasks"], strict=True)):
            label = task.task.label
            for name, values in extra["buffer"].items():
                stats[f"buffer/{label}/{name}"] = float(np.nanmean(np.asarray(values)))
            per_level = np.asarray(extra["eval_per_level"], np.float64)
            # envs with a notion of solving (mazes) score solve rates, others returns
            prefix = "eval_return" if task.loop.solved is None else "solve_rate"
            for j, level in enumerate(self.level_names[i]):
                stats[f"{prefix}/{label}/{level}"] = float(per_level[:, j].mean())
                stats[f"{prefix}/{label}/{level}_best"] = float(per_level[:, j].max())
            if i == 0:
                self._best_levels = (task.loop, jax.tree.map(
                    lambda x: np.asarray(x[best]), extra["top_levels"]),
                    np.asarray(extra["top_scores"][best]))
        return stats

    def figures(self, mean: PyTree, generation: int) -> dict[str, Figure]:
        """The highest-scoring levels of the latest generation's best member's buffer (envs
        that draw their levels, e.g. mazes)."""
        if self._best_levels is None:
            return {}
        loop, levels, scores = self._best_levels
        render = getattr(loop.agent.env, "render_levels", None)
        if render is None:
            return {}
        keep = np.isfinite(scores)
        if not keep.any():
            return {}
        levels = jax.tree.map(lambda x: x[keep], levels)
        titles = [f"score {s:.3f}" for s in scores[keep]]
        return {f"levels/top_levels_gen{generation:04d}.png": render(levels, titles)}

    def describe(self, meta: PyTree) -> dict[str, float]:
        return {n: float(v) for n, v in self.settings(meta, np).items()}

    def headline(self, meta: PyTree) -> dict[str, float]:
        return self.describe(meta)

    def export_params(self, meta: PyTree) -> dict[str, Any]:
        out: dict[str, Any] = {"curriculum": self.describe(meta)}
        if self.learned:
            out["scorer"] = jax.tree.map(lambda x: np.asarray(x).tolist(), meta["scorer"])
        return out

    def population_columns(self, population: PyTree) -> dict[str, np.ndarray]:
        return {n: unit_to_range(population["z"][n], SETTING_RANGES[n], np)
                for n in self.searched}

    # -- comparisons ------------------------------------------------------------------------
    def _inner_as(self, method: str | None, seeds: int) -> Any:
        update: dict[str, Any] = {"seeds": seeds}
        if method is not None:
            update["method"] = method
        return self.spec.inner.model_copy(update=update)

    def _meta_test(self, spec: CurriculumSpec) -> MetaTest:
        """The search mean against domain randomisation on the held-out tasks."""
        inner, window = meta_test_inner(spec), meta_test_window(spec)
        suite = SuiteEval(spec.tasks.held_out, inner, window, where="tasks.held_out")
        dr = SuiteEval(spec.tasks.held_out, self._inner_as("dr", inner.seeds), window,
                       where="tasks.held_out")
        hp = self.base.as_arrays()

        def candidate(meta: PyTree, key: jax.Array) -> jax.Array:
            return suite.candidate_returns(key, self.inner_args(meta)[0], hp)

        return MetaTest(suite, jax.jit(candidate),
                        jax.jit(lambda key: dr.candidate_returns(key, None, hp)), "dr")

    def compare(self, candidate: PyTree, tasks: list[Task], seeds: int, baselines: list[str],
                final_fraction: float, seed: int) -> dict[str, RuleResult]:
        """The found curriculum, domain randomisation and the `[inner]` curriculum trained on
        the same seeds; one result row per task and eval level (a maze each), so a table
        shows the solve rate per named maze."""
        meta = self.inner_args(jax.tree.map(jnp.asarray, candidate))[0]
        runs = {"found": (self._inner_as(None, seeds), meta)}
        runs.update({name: (self._inner_as("dr" if name == "dr" else None, seeds), None)
                     for name in baselines})
        return {name: self._per_level(inner, m, tasks, final_fraction, seed)
                for name, (inner, m) in runs.items()}

    def _per_level(self, inner: Any, meta: PyTree, tasks: list[Task], final_fraction: float,
                   seed: int) -> RuleResult:
        res = RuleResult()
        hp = self.base.as_arrays()
        keys = jax.random.split(jax.random.PRNGKey(seed), len(tasks))
        for task, key in zip(tasks, keys, strict=True):
            te = TaskEval(task, inner, final_fraction)
            train = jax.jit(jax.vmap(lambda k, te=te: te.loop.train(k, meta, hp)))
            _, metrics = train(jax.random.split(key, inner.seeds))
            per_level = np.asarray(metrics["eval_per_level"], np.float64)  # (seeds, T, L)
            for j, level in enumerate(task.eval_levels or [None]):
                label = task.label if level is None else f"{task.label}/{level_label(level, j)}"
                res.curves[label] = per_level[..., j]
                res.final[label] = per_level[:, -te.tail:, j].mean(1)
                res.normalised[label] = np.asarray(te.normalise(res.final[label]))
        return res


def level_label(level: str, index: int) -> str:
    """A level's name in tables: its name, or `level<i>` for level text."""
    return level if "\n" not in level and len(level) <= 40 else f"level{index}"
