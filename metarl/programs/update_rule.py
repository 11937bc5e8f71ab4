"""Search kind `update_rule`: evolve a learned policy objective (LPO drift, temporally aware
LPO, or a general learned objective) with ES, training PPO agents on a task suite.

Meta-parameters are the objective's network weights; fitness is the per-task normalised final
return of PPO trained with the rule, averaged over tasks and seeds (Lu et al. 2022,
"Discovered Policy Optimisation"; Jackson et al. 2024 for temporal awareness).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Literal

import jax
import jax.numpy as jnp
from matplotlib.figure import Figure
from pydantic import Field

from metarl.export import ExportError, is_module_ref
from metarl.learned import LearnedObjective, make_objective, num_params, objective_settings
from metarl.ppo import HParams
from metarl.ppo.objectives import ppo_clip
from metarl.programs.evaluation import RuleResult, evaluate_rules
from metarl.programs.kind import register_kind
from metarl.programs.meta_test import MetaTest, meta_test_inner, meta_test_window
from metarl.programs.suite_kind import SuiteKind
from metarl.programs.task_eval import SuiteEval
from metarl.spec.schema import Rule, SearchSpec, Task

PyTree = Any


def rule_objective(rule: Rule) -> LearnedObjective:
    """The objective `rule` names; a `module:` rule by the `RULE` and `SETTINGS` read from
    the module (`rule.exported`), so no module code is ever run."""
    if not is_module_ref(rule.objective):
        return make_objective(rule.objective, **rule.settings)
    if rule.exported is None:
        raise ExportError(f"rule.objective {rule.objective!r} was not read: load the spec with "
                          "metarl.spec.load_spec (or load_spec_data), which parses the module")
    try:
        return make_objective(rule.exported.rule, **rule.exported.settings)
    except ValueError as err:
        raise ExportError(f"rule.exported: cannot rebuild rule {rule.exported.rule!r}: {err}") \
            from None


def start_weights(rule: Rule) -> PyTree:
    """An exported module's weights as float32 arrays, if this process read the file."""
    if rule.start_weights is None:
        return None
    return {k: jnp.asarray(v, jnp.float32) for k, v in rule.start_weights.items()}


class UpdateRuleSpec(SearchSpec):
    """An `update_rule` search: `[rule]` names the learned objective searched."""

    kind: Literal["update_rule"] = "update_rule"
    rule: Rule = Field(default_factory=Rule)

    def resolve_files(self, source: str, spec_path: Path | None) -> UpdateRuleSpec:
        rule = self.rule.read_module(source, spec_path)  # a module: rule, parsed, never run
        return self if rule is self.rule else self.model_copy(update={"rule": rule})


@register_kind
class UpdateRuleSearch(SuiteKind):
    name = "update_rule"
    Spec = UpdateRuleSpec
    baselines = ("ppo_clip", "dpo")

    def __init__(self, spec: UpdateRuleSpec):
        super().__init__(spec)
        self.objective = rule_objective(spec.rule)
        self._start: PyTree = start_weights(spec.rule)
        self.hparams = spec.inner.hparams()
        self.suite = SuiteEval(spec.tasks.train, spec.inner, spec.outer.final_fraction,
                               self.objective)
        if spec.tasks.held_out:
            self.meta_test = self._meta_test(spec)

    def _meta_test(self, spec: UpdateRuleSpec) -> MetaTest:
        """The search mean against PPO-clip on the held-out tasks."""
        inner, hp = meta_test_inner(spec), self.hparams.as_arrays()
        final = meta_test_window(spec)
        rule = SuiteEval(spec.tasks.held_out, inner, final, self.objective,
                         where="tasks.held_out")
        clip = SuiteEval(spec.tasks.held_out, inner, final, ppo_clip, where="tasks.held_out")
        return MetaTest(rule, jax.jit(lambda params, key: rule.candidate_returns(key, params, hp)),
                        jax.jit(lambda key: clip.candidate_returns(key, None, hp)), "ppo_clip")

    def initial_mean(self) -> PyTree:
        """The exported module's weights for a `module:` rule read from its file; else the
        rule's initialisation. A `module:` rule rebuilt from a stored spec (resume, evaluate)
        gets its default initialisation, a template the run's checkpoint then overwrites."""
        if self._start is None:
            key = jax.random.PRNGKey(self.spec.seed)
            near_ppo = getattr(self.objective, "init_near_ppo", None)
            if is_module_ref(self.spec.rule.objective):
                self._start = self.objective.init(key)
            elif self.spec.rule.init == "ppo" and near_ppo is not None:
                self._start = near_ppo(key, clip_eps=self.hparams.clip_eps)
            else:
                self._start = self.objective.init(key)
        return self._start

    def inner_args(self, params: PyTree) -> tuple[PyTree, HParams]:
        return params, self.hparams.as_arrays()

    def describe(self, params: PyTree) -> dict[str, Any]:
        return {"objective": self.objective.name}

    def export_params(self, params: PyTree) -> dict[str, Any]:
        return {"objective": self.objective.name,
                "settings": objective_settings(self.objective),
                "num_params": num_params(params)}

    def figures(self, mean: PyTree, generation: int) -> dict[str, Figure]:
        from metarl.programs.drift_plot import drift_figure

        # the colour bar says whether it is the drift or the drift a general objective implies
        fig = drift_figure(self.objective, mean, f"mean rule, generation {generation}")
        return {f"drift/gen_{generation:05d}.png": fig}

    def default_module_name(self) -> str:
        return f"{self.spec.name}_rule.py"

    def export_module(self, params: PyTree, path: Path, provenance: dict[str, Any],
                      symbolic: bool = True) -> Path:
        """The rule as a standalone module (jax.numpy only); with `symbolic`, a closed-form
        fit of its drift appended (`drift_symbolic`)."""
        from metarl.export import append_symbolic, write_module

        write_module(self.objective, params, path, provenance)
        if symbolic and hasattr(self.objective, "drift"):
            append_symbolic(path, self.objective, params)
        return path

    def compare(self, candidate: PyTree, tasks: list[Task], seeds: int, baselines: list[str],
                final_fraction: float, seed: int) -> dict[str, RuleResult]:
        """The learned rule against closed-form rules, same hyperparameters and seeds."""
        runs = {"learned": (self.objective, candidate, self.hparams)}
        for name in baselines:
            objective = make_objective(name)
            runs[name] = (objective, objective.init(None), self.hparams)
        inner = self.spec.inner.model_copy(update={"seeds": seeds})
        return evaluate_rules(runs, tasks, inner, final_fraction, seed)
