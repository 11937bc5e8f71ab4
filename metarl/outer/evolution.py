"""One generation of an evolutionary outer loop as a single pure, jit-able function.

The loop sees only a pytree of meta-parameters and `evaluate(population, key) -> Evaluation`
(higher fitness is better); it never knows which inner loop it drives.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, NamedTuple

import jax
import jax.numpy as jnp

from metarl.errors import UserError
from metarl.outer.sharding import shard_over_population
from metarl.outer.strategy import Strategy

PyTree = Any


class Evaluation(NamedTuple):
    fitness: jax.Array  # (pop,) to maximise
    task_returns: jax.Array  # (pop, tasks): raw final returns, averaged over seeds


class OuterState(NamedTuple):
    strategy: PyTree
    key: jax.Array
    generation: jax.Array
    best_fitness: jax.Array
    best_params: PyTree


class Generation(NamedTuple):
    """What one generation hands back to the host for tracking."""

    population: PyTree
    fitness: jax.Array  # as evaluated, NaN/inf included
    task_returns: jax.Array
    invalid: jax.Array  # members whose fitness was NaN/inf (ranked worst)
    mean: PyTree  # the strategy's mean after the update


Evaluate = Callable[[PyTree, jax.Array], Evaluation]


class NoValidMembers(UserError):
    """Every member of a generation had a NaN or infinite fitness: nothing can be ranked, so
    the search stops (the runner raises this after recording the generation)."""

    exit_code = 1  # the spec parsed; what it asked for could not be scored


def init_outer_state(strategy: Strategy, key: jax.Array, mean: PyTree) -> OuterState:
    k_init, key = jax.random.split(key)
    return OuterState(strategy.init(k_init, mean), key, jnp.zeros((), jnp.int32),
                      jnp.asarray(-jnp.inf, jnp.float32), mean)


def make_generation(strategy: Strategy, evaluate: Evaluate,
                    mesh: jax.sharding.Mesh | None = None) -> Callable:
    """`generation(state) -> (state, Generation)`: ask, evaluate all members in one vmapped
    call (sharded over `mesh`), rank non-finite fitness worst, tell, track the best.

    A generation in which every member is invalid is not told: all -inf fitness carries no
    ranking and would move an ES mean on noise (or to NaN). The strategy stays as asked; the
    caller is expected to stop (`Generation.invalid` says so; the runner raises
    `NoValidMembers`).
    """

    evaluate_all = evaluate if mesh is None else shard_over_population(evaluate, mesh)

    def generation(state: OuterState) -> tuple[OuterState, Generation]:
        key, k_ask, k_eval, k_tell = jax.random.split(state.key, 4)
        population, strat = strategy.ask(k_ask, state.strategy)
        ev = evaluate_all(population, k_eval)
        invalid = ~jnp.isfinite(ev.fitness)
        fitness = jnp.where(invalid, -jnp.inf, ev.fitness)
        told = strategy.tell(k_tell, population, fitness, strat)
        strat = jax.tree.map(lambda t, s: jnp.where(jnp.all(invalid), s, t), told, strat)
        i = jnp.argmax(fitness)
        better = fitness[i] > state.best_fitness
        best_params = jax.tree.map(lambda p, b: jnp.where(better, p[i], b), population,
                                   state.best_params)
        new = OuterState(strat, key, state.generation + 1,
                         jnp.where(better, fitness[i], state.best_fitness), best_params)
        return new, Generation(population, ev.fitness, ev.task_returns, invalid,
                               strategy.mean(strat))

    return generation
