"""Inner runs carried across outer steps, one truncation per step, restarted when they end.

Online outer loops (PES, truncated ES, meta-gradients) keep several inner runs alive between
outer steps. If every run started together, every outer step would see the same truncation
position: all estimates early in training for a while, then all late, so the meta-parameters
would chase whichever phase of training the runs are in. The runs are therefore *staggered*:
run i starts at position floor(i * T / n) of T truncations, so the positions are spread evenly
and each outer step averages over the whole inner run. This is the role of
`random_initial_iteration_offset` in learned_optimization, whose `TruncatedPES` is used with
it to run the particles of Vicol et al. 2021 unsynchronised; evenly spaced offsets instead of
random ones make the spread exact whenever n is a multiple of T, and deterministic.

A staggered run's first life starts from a fresh inner state at its offset and is cut short
(T - offset truncations); from its first restart on, every run covers the whole T.
"""

from __future__ import annotations

from typing import Any, NamedTuple

import jax
import jax.numpy as jnp

PyTree = Any


class InnerRuns(NamedTuple):
    state: PyTree  # inner states, leading axes position.shape (+ any per-run member axes)
    position: jax.Array  # (runs,) int32: truncations this run has done since its start


def staggered_positions(runs: int, truncations: int) -> jax.Array:
    return ((jnp.arange(runs) * truncations) // runs).astype(jnp.int32)


def start_runs(fresh: PyTree, runs: int, truncations: int) -> InnerRuns:
    return InnerRuns(fresh, staggered_positions(runs, truncations))


def select_runs(done: jax.Array, fresh: PyTree, carried: PyTree) -> PyTree:
    """Per run, `fresh` where `done` else `carried` (leaves may have more axes than done)."""

    def pick(f: jax.Array, c: jax.Array) -> jax.Array:
        mask = done.reshape(done.shape + (1,) * (c.ndim - done.ndim))
        return jnp.where(mask, f, c)

    return jax.tree.map(pick, fresh, carried)


def advance_runs(runs: InnerRuns, reached: PyTree, fresh: PyTree, truncations: int,
                 restart: jax.Array) -> tuple[InnerRuns, jax.Array]:
    """After one truncation: runs that finished their T truncations, or that `restart` marks
    (a non-finite score: carrying a diverged state would only repeat it), begin again from
    `fresh`; the others keep the state they `reached`. Returns the runs and which restarted."""
    position = runs.position + 1
    done = (position >= truncations) | restart
    return InnerRuns(select_runs(done, fresh, reached), jnp.where(done, 0, position)), done
