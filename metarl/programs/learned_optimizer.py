"""Search kind `learned_optimizer`: discover an optimizer (the network weights of a learned
optimizer, `metarl.learned_optimizers`) with ES, PES or meta-gradients, training the inner
loop's models with it: supervised task families (`inner.algorithm = "supervised"`) or PPO
agents, whose optimizer slot it fills.

Fitness is the suite fitness of every kind: per task, the inner loop's score over the window
(for supervised tasks the log-loss improvement, for RL the return), normalised and averaged.
With `optimizer.init = "adam"` the search starts at Adam (Metz et al. 2022; Goldie et al. 2024).
"""

from __future__ import annotations

import inspect
from collections.abc import Callable
from pathlib import Path
from typing import Any, Literal

import jax
import numpy as np
import optax
from matplotlib.figure import Figure
from pydantic import Field, model_validator

from metarl.learned_optimizers import get_learned_optimizer, make_learned_optimizer
from metarl.learned_optimizers.registry import optimizer_settings
from metarl.programs.evaluation import RuleResult
from metarl.programs.kind import register_kind
from metarl.programs.meta_test import MetaTest, meta_test_inner, meta_test_window
from metarl.programs.suite_kind import SuiteKind
from metarl.programs.task_eval import SuiteEval
from metarl.spec.base import Strict
from metarl.spec.schema import SearchSpec, Task

PyTree = Any
# what the kind sets itself: the step size is the inner loop's `lr`, the horizon each task's
_SET_BY_KIND = ("meta_params", "key", "learning_rate", "total_steps", "actor_mask",
                "output_scale")
# features only an RL inner loop gives (OPEN's dormancy, batch proportion, actor noise)
_RL_ONLY = {"open": "reads RL features (dormancy, batch proportion, noise on the actor)"}


def optimizer_setting_names(name: str) -> list[str]:
    """The settings a spec may give the learned optimizer `name`: its constructor's and its
    initialiser's arguments, less those the kind sets."""
    family = get_learned_optimizer(name)
    params = [*inspect.signature(family.make).parameters,
              *inspect.signature(family.init_meta).parameters]
    return sorted({p for p in params if p not in _SET_BY_KIND})


class OptimizerChoice(Strict):
    """The learned optimizer a `learned_optimizer` search discovers."""

    name: Literal["mlp", "open"] = Field(
        "mlp", description="mlp (Metz et al. 2022, per-parameter MLP) or open (OPEN, Goldie "
        "et al. 2024, a per-parameter GRU for RL)")
    init: Literal["adam", "random"] = Field(
        "adam", description="start at Adam (a zero output layer) or at random weights")
    settings: dict[str, int | float | list[float]] = Field(
        default_factory=dict, description="sizes and constants, e.g. hidden_size = 16, "
        "momentum_decays = [0.9, 0.99], magnitude_scale = 0.1")

    @model_validator(mode="after")
    def _known_settings(self) -> OptimizerChoice:
        allowed = optimizer_setting_names(self.name)
        unknown = sorted(set(self.settings) - set(allowed))
        if unknown:
            raise ValueError(f"optimizer.settings: unknown setting(s) {', '.join(unknown)} "
                             f"for optimizer {self.name!r}; allowed: {', '.join(allowed)}")
        full = optimizer_settings(self.name, self.settings)
        decays = full["momentum_decays"]
        if not decays or not all(0 <= d < 1 for d in decays):
            raise ValueError("optimizer.settings.momentum_decays: one or more decay rates in "
                             f"[0, 1), got {list(decays)}")
        count = self.settings.get("num_momenta", len(decays))
        if count != len(decays):
            raise ValueError(f"optimizer.settings: num_momenta = {count} must equal the number "
                             f"of momentum_decays ({len(decays)})")
        return self

    def make_settings(self) -> dict[str, Any]:
        """The settings `make` takes (lists as tuples)."""
        make = get_learned_optimizer(self.name).make
        names = inspect.signature(make).parameters
        return {k: tuple(v) if isinstance(v, list) else v
                for k, v in self.settings.items() if k in names}

    def init_settings(self) -> dict[str, Any]:
        """The settings `init_meta` takes (network sizes)."""
        names = inspect.signature(get_learned_optimizer(self.name).init_meta).parameters
        sizes = {k: v for k, v in self.settings.items() if k in names and k != "key"}
        # the network reads one feature per momentum: its size follows the decays given
        decays = optimizer_settings(self.name, self.settings)["momentum_decays"]
        return {**sizes, "num_momenta": len(decays)}


class LearnedOptimizerSpec(SearchSpec):
    """A `learned_optimizer` search: `[optimizer]` names the learned optimizer."""

    kind: Literal["learned_optimizer"] = "learned_optimizer"
    optimizer: OptimizerChoice = Field(default_factory=OptimizerChoice)

    @model_validator(mode="after")
    def _features_fit_the_inner_loop(self) -> LearnedOptimizerSpec:
        name = self.optimizer.name
        if name in _RL_ONLY and self.inner.algorithm != "ppo":
            raise ValueError(f"optimizer.name = {name!r} {_RL_ONLY[name]}, which inner loop "
                             f"{self.inner.algorithm!r} does not give: use inner.algorithm = "
                             "'ppo', or optimizer.name = 'mlp'")
        return self


def actor_mask(params: PyTree) -> PyTree:
    """True on the actor's weights of an actor-critic (`{"actor": ..., "critic": ...}`),
    where OPEN adds its learned exploration noise; False elsewhere."""
    if isinstance(params, dict) and "actor" in params:
        return {k: jax.tree.map(lambda _, a=(k == "actor"): a, v) for k, v in params.items()}
    return jax.tree.map(lambda _: False, params)


@register_kind
class LearnedOptimizerSearch(SuiteKind):
    name = "learned_optimizer"
    Spec = LearnedOptimizerSpec
    # each tuned on the task it is compared on (a learning-rate grid, the best kept)
    baselines = ("adam", "adamw", "sgd_momentum", "symbolic")

    def __init__(self, spec: LearnedOptimizerSpec):
        super().__init__(spec)
        self.choice = spec.optimizer
        self.family = get_learned_optimizer(self.choice.name)
        self.settings = self.choice.make_settings()
        self.hparams = spec.inner.hparams()
        self.suite = SuiteEval(spec.tasks.train, spec.inner, spec.outer.final_fraction,
                               optimizer=self.slot)
        if spec.tasks.held_out:
            self.meta_test = self._meta_test(spec)

    def slot(self, task: Task) -> Callable[[Any, PyTree], optax.GradientTransformation]:
        """What fills the optimizer slot of `task`'s inner loop: the learned optimizer with the
        candidate's weights, the inner loop's learning rate and the task's horizon."""
        total = self.spec.inner.optimizer_steps(task)
        extra = {"actor_mask": actor_mask} if self.choice.name in _RL_ONLY else {}

        def build(hparams: Any, meta: PyTree) -> optax.GradientTransformation:
            return make_learned_optimizer(self.choice.name, meta, learning_rate=hparams.lr,
                                          total_steps=total, **extra, **self.settings)

        build.reads_dormancy = self.choice.name in _RL_ONLY  # PPO computes it for OPEN
        return build

    def _meta_test(self, spec: LearnedOptimizerSpec) -> MetaTest:
        """The search mean against Adam at the `[inner]` learning rate on the held-out
        tasks (the tuned comparison is `metarl evaluate`'s)."""
        from metarl.programs.optimizer_baselines import baseline_slot

        inner, final, hp = meta_test_inner(spec), meta_test_window(spec), \
            self.hparams.as_arrays()
        learned = SuiteEval(spec.tasks.held_out, inner, final, where="tasks.held_out",
                            optimizer=self.slot)
        adam = SuiteEval(spec.tasks.held_out, inner, final, where="tasks.held_out",
                         optimizer=lambda task: baseline_slot("adam"))
        return MetaTest(learned,
                        jax.jit(lambda meta, key: learned.candidate_returns(key, meta, hp)),
                        jax.jit(lambda key: adam.candidate_returns(key, None, hp)), "adam")

    def initial_mean(self) -> PyTree:
        key = jax.random.PRNGKey(self.spec.seed)
        init = self.family.adam_init_meta if self.choice.init == "adam" else \
            self.family.init_meta
        return init(key, **self.choice.init_settings())

    def inner_args(self, meta: PyTree) -> tuple[PyTree, Any]:
        return meta, self.hparams.as_arrays()

    def describe(self, meta: PyTree) -> dict[str, Any]:
        return {"optimizer": self.choice.name}

    def export_params(self, meta: PyTree) -> dict[str, Any]:
        return {"optimizer": self.choice.name, "settings": self.choice.settings,
                "learning_rate": float(self.hparams.lr),
                "num_params": int(sum(np.size(x) for x in jax.tree.leaves(meta)))}

    def figures(self, mean: PyTree, generation: int) -> dict[str, Figure]:
        from metarl.programs.optimizer_figures import optimizer_figures

        return optimizer_figures(self, mean, generation)

    def default_module_name(self) -> str:
        return f"{self.spec.name}_optimizer.py"

    def export_settings(self) -> dict[str, Any]:
        """The settings an exported module's `optimizer()` defaults to: the search's, its
        learning rate, and the training tasks' horizon when they share one."""
        horizons = {self.spec.inner.optimizer_steps(t) for t in self.spec.tasks.train}
        return {**self.settings, "learning_rate": float(self.hparams.lr),
                "total_steps": horizons.pop() if len(horizons) == 1 else None}

    def export_module(self, params: PyTree, path: Path, provenance: dict[str, Any],
                      symbolic: bool = True) -> Path:
        """The optimizer as a standalone module (jax, optax, numpy); with `symbolic`, a
        closed-form fit of its update appended (`symbolic_optimizer`)."""
        from metarl.export import write_optimizer_module

        extra = ""
        if symbolic:
            fit = self.distill(params)
            provenance = {**provenance, "symbolic_fit": fit.expression(),
                          "symbolic_fit_relative_rmse": round(float(fit.relative_rmse), 6)}
            extra = fit.source()
        return write_optimizer_module(self.choice.name, params, self.export_settings(), path,
                                      provenance, extra_source=extra)

    def compare(self, candidate: PyTree, tasks: list[Task], seeds: int, baselines: list[str],
                final_fraction: float, seed: int) -> dict[str, RuleResult]:
        """The learned optimizer against hand-designed ones, each with its learning rate
        tuned per task on a grid, same seeds; `symbolic` is the learned one's distilled
        closed form at the search's learning rate (its held-out performance)."""
        from metarl.programs.optimizer_baselines import TUNED_BASELINES, compare_optimizers

        candidates = {"learned": (self.slot, candidate)}
        if "symbolic" in baselines:
            candidates["symbolic"] = (self._symbolic_slot(candidate), None)
        inner = self.spec.inner.model_copy(update={"seeds": seeds})
        return compare_optimizers(candidates, self.hparams, tasks, inner,
                                  [b for b in baselines if b in TUNED_BASELINES],
                                  final_fraction, seed)

    def distill(self, meta: PyTree) -> Any:
        """The closed form fit to the optimizer's update (`metarl.distill.optimizer`)."""
        from metarl.distill.optimizer import fit_optimizer

        return fit_optimizer(self.choice.name, meta, self.settings, seed=self.spec.seed)

    def _symbolic_slot(self, meta: PyTree) -> Callable[[Task], Any]:
        fit = self.distill(meta)

        def slot(task: Task) -> Callable[[Any, PyTree], optax.GradientTransformation]:
            total = self.spec.inner.optimizer_steps(task)
            return lambda hparams, _: fit.transformation(hparams.lr, total)

        return slot

    def comparison_metrics(self, results: dict[str, RuleResult]) -> dict[str, float]:
        from metarl.programs.optimizer_baselines import steps_to_reach

        return steps_to_reach(results)
