"""The interface every policy objective in `metarl.learned` shares.

An objective is a frozen (hence hashable) dataclass, so it can be a static argument of `jit`
and a field of other static configuration. Its numbers live outside it, in `meta_params`: a
pytree of float32 arrays that the outer loop (ES) perturbs and that `metarl.export` writes
out. Calling it is exactly the PPO objective protocol of `metarl.ppo`:
`objective(inputs, meta_params) -> per-sample value to maximise`.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from dataclasses import dataclass
from typing import Any

import jax

from metarl.ppo.objectives import ObjectiveInputs

PyTree = Any


@dataclass(frozen=True)
class LearnedObjective(ABC):
    """A policy objective parameterised by a pytree of meta-parameters."""

    @property
    @abstractmethod
    def name(self) -> str:
        """The registry name (`make_objective(name)` rebuilds an equal objective)."""

    @abstractmethod
    def init(self, key: jax.Array) -> PyTree:
        """Initial meta-parameters: a pytree of float32 arrays (an empty dict if none)."""

    @abstractmethod
    def __call__(self, inputs: ObjectiveInputs, meta_params: PyTree) -> jax.Array:
        """Per-sample objective to maximise, with the shape of `inputs.ratio`."""


@dataclass(frozen=True)
class DriftObjective(LearnedObjective):
    """An objective of Mirror Learning's form `r*A - drift(r, A)` (Kuba et al. 2022,
    "Mirror Learning: A Unifying Framework of Policy Optimisation"; Lu et al. 2022,
    "Discovered Policy Optimisation").

    Mirror Learning's guarantees (monotonic improvement, convergence) hold when the drift is
    non-negative everywhere and zero, with zero gradient, at `r = 1`; subclasses say how they
    meet these conditions.
    """

    @abstractmethod
    def drift(self, meta_params: PyTree, ratio: jax.Array, advantage: jax.Array,
              progress: jax.Array | None = None) -> jax.Array:
        """The drift penalty, elementwise over broadcastable `ratio`, `advantage` (and
        `progress`, the fraction of training done, for temporally aware rules)."""

    def __call__(self, inputs: ObjectiveInputs, meta_params: PyTree) -> jax.Array:
        r, a = inputs.ratio, inputs.advantage
        return r * a - self.drift(meta_params, r, a, inputs.progress)
