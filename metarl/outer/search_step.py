"""One outer step of a search as a single pure, jit-able function, whatever the outer loop:
the loop's own step, plus the search's record of its best candidate.

The step sees a `TruncatedProblem` and an `OuterLoop`; it never knows which kind or inner
loop it drives. Whole-run loops (ES, random search) score each member on a complete inner run,
so their best member is a candidate with a fitness; online loops (PES, truncated ES,
meta-gradients) score stretches of runs at staggered positions, which are not comparable
across steps, so for them the "best" is the current mean with this step's estimate of its
objective.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, NamedTuple

import jax
import jax.numpy as jnp

from metarl.errors import UserError
from metarl.outer.loop import OuterLoop, as_state
from metarl.outer.problem import TruncatedProblem

PyTree = Any


class NoValidMembers(UserError):
    """A step in which no member scored a finite fitness: nothing can be ranked, so the search
    stops (FAILED) rather than learn from nothing or call a never-scored candidate best."""

    exit_code = 1


class SearchState(NamedTuple):
    loop: PyTree  # the outer loop's state (keys included)
    generation: jax.Array  # outer steps done
    best_fitness: jax.Array  # -inf until a candidate scores
    best_params: PyTree


class Generation(NamedTuple):
    """What one outer step hands back to the host for tracking."""

    population: PyTree | None  # members scored, leading axis (pop,); None for meta-gradients
    fitness: jax.Array  # (pop,) as evaluated, NaN/inf included
    info: PyTree  # per-member information from the kind, leading axis (pop,)
    invalid: jax.Array  # members whose fitness was NaN/inf
    mean: PyTree  # the meta-parameters after the step
    metrics: dict[str, jax.Array]  # the loop's own figures (gradient norms, resets, ...)


def init_search_state(loop: OuterLoop, key: jax.Array, mean: PyTree,
                      problem: TruncatedProblem) -> SearchState:
    return SearchState(loop.init(key, mean, problem), jnp.zeros((), jnp.int32),
                       jnp.asarray(-jnp.inf, jnp.float32), as_state(mean))


def make_search_step(loop: OuterLoop, problem: TruncatedProblem
                     ) -> Callable[[SearchState], tuple[SearchState, Generation]]:
    """`step(state) -> (state, Generation)`: one step of `loop` on `problem`, then the best
    candidate so far updated."""
    whole_runs = problem.truncations == 1

    def step(state: SearchState) -> tuple[SearchState, Generation]:
        loop_state, report = loop.step(state.loop, problem)
        invalid = ~jnp.isfinite(report.fitness)
        scored = jnp.where(invalid, -jnp.inf, report.fitness)
        if whole_runs and report.population is not None:
            i = jnp.argmax(scored)
            better = scored[i] > state.best_fitness
            best_params = jax.tree.map(lambda p, b: jnp.where(better, p[i], b),
                                       report.population, state.best_params)
            best_fitness = jnp.where(better, scored[i], state.best_fitness)
        else:
            finite = (~invalid).sum()
            estimate = jnp.where(invalid, 0.0, report.fitness).sum() / jnp.maximum(finite, 1)
            best_fitness = jnp.where(finite > 0, estimate, state.best_fitness)
            best_params = report.mean
        new = SearchState(loop_state, state.generation + 1, best_fitness.astype(jnp.float32),
                          as_state(best_params))
        return new, Generation(report.population, report.fitness, report.info, invalid,
                               report.mean, report.metrics)

    return step
