"""One exploit-and-explore step over a population, and the PBT member record the `pbt` outer
loop carries. Shared by the `pbt` search (`metarl.pbt.outer`) and the `pbt` inner loop
(`metarl.pbt.inner_loop`): both hold members' training states with a leading population axis
and their hyperparameters as `(pop, D)` quantiles of a `HyperSpace`."""

from __future__ import annotations

from typing import Any, NamedTuple

import jax
import jax.numpy as jnp

from metarl.pbt.exploit import copy_members, truncation_selection
from metarl.pbt.explore import Explorer

PyTree = Any


class Exploited(NamedTuple):
    source: jax.Array  # (pop,) whose state each member continues from (itself if kept)
    u: jax.Array  # (pop, D) hyperparameters of the next interval
    states: PyTree  # the training states, copied where `source` says
    explorer: PyTree  # the explorer's state


def exploit_and_explore(key: jax.Array, scores: jax.Array, u: jax.Array, states: PyTree,
                        explorer: Explorer, explorer_state: PyTree, quantile: float,
                        step: jax.Array) -> Exploited:
    """Truncation selection on `scores`, then every leaf of `states` (weights, optimizer
    state, update counters, env states, keys) gathered from the source member in one piece,
    then new hyperparameters for the members that copied. The caller trains the next interval
    with `u` from here: the copied weights with the perturbed hyperparameters."""
    k_exploit, k_explore = jax.random.split(key)
    source = truncation_selection(k_exploit, scores, quantile)
    new_u, explorer_state = explorer.explore(k_explore, u, scores, source, explorer_state, step)
    return Exploited(source, new_u, copy_members(states, source), explorer_state)


class PBTMember(NamedTuple):
    """A member of a `pbt` search, the outer loop's meta-parameters: its hyperparameters, the
    schedule its line has trained with so far (copied with its weights), and the member it
    copied at the last exploit step (itself if none)."""

    u: jax.Array  # (D,) quantiles of the next interval
    schedule: jax.Array  # (intervals, D) quantiles its line trained with, interval by interval
    source: jax.Array  # () int32
    # the weights of a learned objective the member trains with (`[pbt] objective`), or None
    objective: PyTree = None


def record_interval(members: PBTMember, exploited: Exploited, step: jax.Array) -> PBTMember:
    """The members after an exploit step: each line's schedule gains the hyperparameters its
    source trained with in interval `step` (the ones behind the weights it now holds)."""
    schedule = members.schedule[exploited.source]
    trained = members.u[exploited.source]
    schedule = jax.lax.dynamic_update_slice_in_dim(schedule, trained[:, None, :], step, axis=1)
    objective = jax.tree.map(lambda w: w[exploited.source], members.objective)
    return PBTMember(exploited.u, schedule, exploited.source, objective)


def perturb_objective(key: jax.Array, weights: PyTree, source: jax.Array,
                      sigma: float) -> PyTree:
    """Explore for a learned objective's weights `(pop, ...)`: the members that copied
    another (`source` not themselves) add Gaussian noise of std `sigma` to the weights they
    copied; the others keep theirs."""
    copier = source != jnp.arange(source.shape[0])
    leaves, tree = jax.tree.flatten(weights)
    keys = jax.random.split(key, max(len(leaves), 1))
    noisy = [w + sigma * jax.random.normal(k, w.shape, w.dtype)
             * copier.reshape((-1,) + (1,) * (w.ndim - 1))
             for w, k in zip(leaves, keys, strict=False)]
    return jax.tree.unflatten(tree, noisy)


def best_member(scores: jax.Array) -> jax.Array:
    """Index of the best finite score (0 if none is finite)."""
    return jnp.argmax(jnp.where(jnp.isfinite(scores), scores, -jnp.inf))
