"""What every outer loop optimises: an inner run cut into truncations, as pure functions.

The split is learned_optimization's `TruncatedStep` (Metz et al. 2022): a fresh inner state,
and one truncation of the inner run that scores itself and hands back the state it reached.
An outer loop that scores whole runs (ES) chains all truncations (`full_fitness`); one that
learns online (PES, meta-gradients) carries inner states across outer steps and unrolls one
truncation at a time.

The objective of a meta-parameter is the mean over the run's truncations of the fitness of
each truncation. With `truncations == 1` it is the fitness of one full-length run.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, NamedTuple

import jax
import jax.numpy as jnp

PyTree = Any


class Evaluation(NamedTuple):
    """The score of one member on one truncation (or one whole run)."""

    fitness: jax.Array  # scalar per member, to MAXIMISE; NaN/inf mark a failed run
    info: PyTree  # anything a kind wants back per member (per-task returns, ...)


class TruncatedProblem(NamedTuple):
    """An inner run as `truncations` unrolls of a state.

    `init_inner(key, meta)` makes one member's fresh inner state; `unroll(meta, inner_state,
    key)` runs one truncation and returns its `Evaluation` and the state it reached. Both
    must be pure and jit-able: outer loops `vmap` them over members and differentiate
    `unroll` (meta-gradients)."""

    init_inner: Callable[[jax.Array, PyTree], PyTree]
    unroll: Callable[[PyTree, PyTree, jax.Array], tuple[Evaluation, PyTree]]
    truncations: int = 1


def average_over_truncations(info: PyTree) -> PyTree:
    """Mean over the leading (truncation) axis for float leaves; the last value for integer
    and boolean leaves, whose mean would not be a value they can take."""

    def reduce(x: jax.Array) -> jax.Array:
        return jnp.mean(x, axis=0) if jnp.issubdtype(x.dtype, jnp.inexact) else x[-1]

    return jax.tree.map(reduce, info)


def full_fitness(problem: TruncatedProblem, meta: PyTree, key: jax.Array) -> Evaluation:
    """The objective of `meta`: a fresh inner run, all truncations scanned, fitness and info
    averaged over truncations. Differentiable in `meta` through the whole run."""
    k_init, k_run = jax.random.split(key)
    inner = problem.init_inner(k_init, meta)

    def truncation(state: PyTree, k: jax.Array) -> tuple[PyTree, Evaluation]:
        ev, state = problem.unroll(meta, state, k)
        return state, ev

    _, evs = jax.lax.scan(truncation, inner, jax.random.split(k_run, problem.truncations))
    return Evaluation(jnp.mean(evs.fitness), average_over_truncations(evs.info))
