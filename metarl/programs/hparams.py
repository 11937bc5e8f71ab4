"""Search kind `hparams`: random search or ES over PPO hyperparameters (AutoRL baseline).

Candidates live in an unconstrained "unit" space: each hyperparameter is a real `z` mapped
through a sigmoid onto its range (log-scaled where the spec says `log = true`). ES moves
freely in z; random search draws z = logit(u), u ~ U(0, 1), i.e. uniformly over the range.
"""

from __future__ import annotations

from typing import Any

import jax
import jax.numpy as jnp
import numpy as np

from metarl.outer.evolution import Evaluation
from metarl.ppo import HParams
from metarl.programs.meta_test import MetaTest, meta_test_inner, meta_test_window
from metarl.programs.task_eval import SuiteEval
from metarl.spec.schema import Range, SearchSpec

PyTree = Any


def from_unit(z: jax.Array, r: Range) -> jax.Array:
    u = jax.nn.sigmoid(z)
    if r.log:
        return jnp.exp(jnp.log(r.low) + u * (jnp.log(r.high) - jnp.log(r.low)))
    return r.low + u * (r.high - r.low)


def from_unit_host(z: np.ndarray, r: Range) -> np.ndarray:
    """`from_unit` in float32 NumPy, for logging between generations: a JAX call there would
    queue behind the generation already running and stall the loop until it finishes."""
    z = np.asarray(z, np.float32)
    u = (np.float32(1) / (np.float32(1) + np.exp(-z))).astype(np.float32)
    if r.log:
        lo, hi = np.log(np.float32(r.low)), np.log(np.float32(r.high))
        return np.exp(lo + u * (hi - lo)).astype(np.float32)
    return (np.float32(r.low) + u * np.float32(r.high - r.low)).astype(np.float32)


class HParamSearch:
    kind = "hparams"

    def __init__(self, spec: SearchSpec):
        self.spec = spec
        self.space = dict(sorted(spec.search_space.items()))
        self.base = spec.inner.hparams()
        self.suite = SuiteEval(spec.tasks.train, spec.inner, spec.outer.final_fraction)
        self.meta_test = None if not spec.tasks.held_out else self._meta_test(spec)

    def _meta_test(self, spec: SearchSpec) -> MetaTest:
        """The search mean against the `[inner]` hyperparameters on the held-out tasks."""
        suite = SuiteEval(spec.tasks.held_out, meta_test_inner(spec), meta_test_window(spec),
                          where="tasks.held_out")
        base = self.base.as_arrays()
        return MetaTest(
            suite, jax.jit(lambda z, key: suite.candidate_returns(key, None, self.to_hparams(z))),
            jax.jit(lambda key: suite.candidate_returns(key, None, base)), "inner")

    def initial_mean(self) -> dict[str, jax.Array]:
        return {name: jnp.zeros((), jnp.float32) for name in self.space}

    def sample(self, key: jax.Array) -> dict[str, jax.Array]:
        keys = jax.random.split(key, len(self.space))
        return {name: jax.random.logistic(k) for k, name in zip(keys, self.space, strict=True)}

    def to_hparams(self, z: dict[str, jax.Array]) -> HParams:
        values = {name: from_unit(z[name], r) for name, r in self.space.items()}
        return self.base.as_arrays()._replace(**values)

    def evaluate(self, population: dict[str, jax.Array], key: jax.Array) -> Evaluation:
        hps = jax.vmap(self.to_hparams)(population)
        raw = self.suite.returns(key, None, hps)
        return Evaluation(self.suite.normalised(raw).mean(1), raw)

    def describe(self, z: PyTree) -> dict[str, float]:
        """A candidate as the hyperparameter values a person would read."""
        return {name: float(from_unit_host(z[name], r)) for name, r in self.space.items()}

    def export_params(self, z: PyTree) -> dict[str, Any]:
        return {"hparams": {**self.base._asdict(), **self.describe(z)}}

    def population_columns(self, population: PyTree) -> dict[str, np.ndarray]:
        return {name: from_unit_host(population[name], r) for name, r in self.space.items()}
