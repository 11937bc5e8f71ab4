"""The supervised inner loop's traced hyperparameters (see `metarl.ppo.config` for the split
between static settings and traced numbers)."""

from __future__ import annotations

from typing import NamedTuple

import jax.numpy as jnp


class SupervisedHParams(NamedTuple):
    """Numbers that only enter arithmetic, so one compiled run can be `vmap`-ed over them."""

    lr: float = 1e-3

    def as_arrays(self) -> SupervisedHParams:
        return SupervisedHParams(*(jnp.asarray(v, jnp.float32) for v in self))
