"""Helpers for meta-parameter pytrees: counting and flattening.

The ES outer loop (evosax) works on any pytree, so these are for people, logs and tools that
want one vector (e.g. a distance between two rules or a parameter count in a run's tags).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import jax
import numpy as np
from jax.flatten_util import ravel_pytree

PyTree = Any


def num_params(meta_params: PyTree) -> int:
    """How many scalars the pytree holds (0 for an empty pytree)."""
    return int(sum(np.size(leaf) for leaf in jax.tree.leaves(meta_params)))


def flatten_params(meta_params: PyTree) -> tuple[jax.Array, Callable[[jax.Array], PyTree]]:
    """`(vector, unflatten)`: the pytree as one float vector and the inverse function."""
    return ravel_pytree(meta_params)
