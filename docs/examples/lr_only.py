"""A search kind of your own, complete: search PPO's learning rate alone, on a log scale.

`metarl.programs.hparams` does this and more; this file shows every piece a kind has, in
the smallest working form. Register it with `register_kind` (as below) before loading a spec
that says `kind = "lr_only"`, or ship it in a package with an entry point

    [project.entry-points."metarl.kinds"]
    lr_only = "my_package.lr_only:LearningRateKind"

so that `metarl search run` finds it by name. tests/test_extending.py runs this file.
"""

from __future__ import annotations

from typing import Any, Literal

import jax
import jax.numpy as jnp
import numpy as np
from pydantic import BaseModel, ConfigDict, Field

from metarl.ppo import HParams
from metarl.programs import register_kind
from metarl.programs.suite_kind import SuiteKind
from metarl.programs.task_eval import SuiteEval
from metarl.spec import SearchSpec


class LrRange(BaseModel):
    """The kind's own spec section, `[lr_only]`."""

    model_config = ConfigDict(extra="forbid", frozen=True)
    low: float = Field(1e-5, gt=0)
    high: float = Field(1e-2, gt=0)


class LrOnlySpec(SearchSpec):
    kind: Literal["lr_only"] = "lr_only"
    lr_only: LrRange = Field(default_factory=LrRange)


@register_kind
class LearningRateKind(SuiteKind):
    """Meta-parameter: one real `z`; the learning rate is `low * (high/low) ** sigmoid(z)`."""

    name = "lr_only"
    Spec = LrOnlySpec
    baselines = ("inner",)

    def __init__(self, spec: LrOnlySpec):
        super().__init__(spec)
        self.base = spec.inner.hparams()
        self.suite = SuiteEval(spec.tasks.train, spec.inner, spec.outer.final_fraction)

    def lr(self, z: Any, xp: Any = jnp) -> Any:
        r = self.spec.lr_only
        u = 1 / (1 + xp.exp(-z))
        return r.low * (r.high / r.low) ** u

    # what is searched, and how a candidate trains
    def initial_mean(self) -> jax.Array:
        return jnp.zeros((), jnp.float32)

    def inner_args(self, z: jax.Array) -> tuple[None, HParams]:
        return None, self.base.as_arrays()._replace(lr=self.lr(z))

    # what tracking and the CLI show
    def describe(self, z: Any) -> dict[str, float]:
        return {"lr": float(self.lr(np.asarray(z, np.float64), np))}

    def headline(self, z: Any) -> dict[str, float]:
        return self.describe(z)

    def export_params(self, z: Any) -> dict[str, Any]:
        return {"hparams": {**self.base._asdict(), **self.describe(z)}}
