"""Search kind `update_rule`: evolve a learned policy objective (LPO drift, temporally aware
LPO, or a general learned objective) with ES, training PPO agents on a task suite.

Meta-parameters are the objective's network weights; fitness is the per-task normalised final
return of PPO trained with the rule, averaged over tasks and seeds (Lu et al. 2022,
"Discovered Policy Optimisation"; Jackson et al. 2024 for temporal awareness).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import jax
import numpy as np
from matplotlib.figure import Figure

from metarl.learned import make_objective, num_params, objective_settings
from metarl.learned.registry import MODULE_PREFIX
from metarl.outer.evolution import Evaluation
from metarl.ppo.objectives import ppo_clip
from metarl.programs.meta_test import MetaTest, meta_test_inner, meta_test_window
from metarl.programs.task_eval import SuiteEval
from metarl.spec.schema import SearchSpec

PyTree = Any


class UpdateRuleSearch:
    kind = "update_rule"

    def __init__(self, spec: SearchSpec, base_dir: str | Path | None = None):
        self.spec = spec
        rule = spec.rule
        self._start: PyTree = None
        if rule.objective.startswith(MODULE_PREFIX):
            # an exported rule as the starting point: its objective and its weights
            from metarl.export import load_rule
            from metarl.export.loader import parse_module_ref

            self.objective, self._start = load_rule(parse_module_ref(rule.objective, base_dir))
        else:
            self.objective = make_objective(rule.objective, **rule.settings)
        self.hparams = spec.inner.hparams()
        self.suite = SuiteEval(spec.tasks.train, spec.inner, spec.outer.final_fraction,
                               self.objective)
        self.meta_test = None if not spec.tasks.held_out else self._meta_test(spec)

    def _meta_test(self, spec: SearchSpec) -> MetaTest:
        """The search mean against PPO-clip on the held-out tasks."""
        inner, hp = meta_test_inner(spec), self.hparams.as_arrays()
        final = meta_test_window(spec)
        rule = SuiteEval(spec.tasks.held_out, inner, final, self.objective,
                         where="tasks.held_out")
        clip = SuiteEval(spec.tasks.held_out, inner, final, ppo_clip, where="tasks.held_out")
        return MetaTest(rule, jax.jit(lambda params, key: rule.candidate_returns(key, params, hp)),
                        jax.jit(lambda key: clip.candidate_returns(key, None, hp)), "ppo_clip")

    def initial_mean(self) -> PyTree:
        if self._start is None:
            key = jax.random.PRNGKey(self.spec.seed)
            near_ppo = getattr(self.objective, "init_near_ppo", None)
            if self.spec.rule.init == "ppo" and near_ppo is not None:
                self._start = near_ppo(key, clip_eps=self.hparams.clip_eps)
            else:
                self._start = self.objective.init(key)
        return self._start

    def evaluate(self, population: PyTree, key: jax.Array) -> Evaluation:
        raw = self.suite.returns(key, population, self.hparams.as_arrays(),
                                 hparams_batched=False)
        return Evaluation(self.suite.normalised(raw).mean(1), raw)

    def describe(self, params: PyTree) -> dict[str, Any]:
        return {"objective": self.objective.name}

    def export_params(self, params: PyTree) -> dict[str, Any]:
        return {"objective": self.objective.name,
                "settings": objective_settings(self.objective),
                "num_params": num_params(params)}

    def population_columns(self, population: PyTree) -> dict[str, np.ndarray]:
        return {}

    def figures(self, mean: PyTree, generation: int) -> dict[str, Figure]:
        from metarl.programs.drift_plot import drift_figure

        # the colour bar says whether it is the drift or the drift a general objective implies
        fig = drift_figure(self.objective, mean, f"mean rule, generation {generation}")
        return {f"drift/gen_{generation:05d}.png": fig}
