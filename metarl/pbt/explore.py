"""Explore: new hyperparameters for the members that just copied another (Jaderberg et al.
2017, section 3.1): each value multiplied by one of a few factors (0.8 or 1.2 in the paper),
or, with some probability, drawn afresh from the prior. Values stay inside their bounds
(`HyperSpace.value` clamps). PB2's GP-bandit step (`metarl.pbt.pb2`) is the other explorer.

An explorer is pure: `explore(key, u, scores, source, state, step) -> (u, state)` takes the
`(pop, D)` quantiles each member trained with this interval, their scores, the exploit step's
`source` and the explorer's own state, and returns the quantiles of the next interval.
Members that kept their state (`source[i] == i`) keep their hyperparameters."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Protocol

import jax
import jax.numpy as jnp

from metarl.pbt.space import HyperSpace

PyTree = Any


class Explorer(Protocol):
    space: HyperSpace

    def init(self, population: int) -> PyTree: ...

    def explore(self, key: jax.Array, u: jax.Array, scores: jax.Array, source: jax.Array,
                state: PyTree, step: jax.Array) -> tuple[jax.Array, PyTree]: ...


def copied(source: jax.Array) -> jax.Array:
    """`(pop,)` bool: which members took another's state."""
    return source != jnp.arange(source.shape[0], dtype=source.dtype)


def sample_prior(key: jax.Array, space: HyperSpace, population: int) -> jax.Array:
    """`(pop, D)` quantiles drawn uniformly: the prior (log-uniform on log ranges)."""
    return jax.random.uniform(key, (population, space.dims), jnp.float32)


def perturb(key: jax.Array, u: jax.Array, space: HyperSpace, factors: tuple[float, ...],
            resample_probability: float) -> jax.Array:
    """Every value of `u` (`(pop, D)`) multiplied by a factor drawn from `factors`, or with
    probability `resample_probability` redrawn from the prior; clamped into the bounds."""
    k_factor, k_coin, k_prior = jax.random.split(key, 3)
    choice = jax.random.randint(k_factor, u.shape, 0, len(factors))
    scaled = space.unit(space.value(u) * jnp.asarray(factors, jnp.float32)[choice])
    fresh = jax.random.bernoulli(k_coin, resample_probability, u.shape)
    return jnp.where(fresh, jax.random.uniform(k_prior, u.shape, jnp.float32), scaled)


@dataclass(frozen=True)
class PerturbExplorer:
    """PBT's explore step: perturb by `factors` or resample with `resample_probability`."""

    space: HyperSpace
    factors: tuple[float, ...] = (0.8, 1.2)
    resample_probability: float = 0.25

    def init(self, population: int) -> PyTree:
        return ()

    def explore(self, key: jax.Array, u: jax.Array, scores: jax.Array, source: jax.Array,
                state: PyTree, step: jax.Array) -> tuple[jax.Array, PyTree]:
        del scores, step
        inherited = u[source]
        new = perturb(key, inherited, self.space, self.factors, self.resample_probability)
        return jnp.where(copied(source)[:, None], new, inherited), state


def make_explorer(name: str, space: HyperSpace, factors: tuple[float, ...],
                  resample_probability: float, **pb2: Any) -> Explorer:
    """The explorer a spec names: `perturb` (PBT) or `pb2`."""
    if name == "pb2":
        from metarl.pbt.pb2 import PB2Explorer

        return PB2Explorer(space, **pb2)
    return PerturbExplorer(space, tuple(factors), resample_probability)
