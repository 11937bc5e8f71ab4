"""One `init / ask / tell / mean` face over evosax strategies and random search.

Fitness handed to `tell` here is *to be maximised*; the sign flip for evosax, which
minimises, happens in `EvosaxStrategy.tell` and nowhere else.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, NamedTuple, Protocol

import jax
import jax.numpy as jnp
import optax

PyTree = Any


class Strategy(Protocol):
    population_size: int

    def init(self, key: jax.Array, mean: PyTree) -> PyTree: ...

    def ask(self, key: jax.Array, state: PyTree) -> tuple[PyTree, PyTree]: ...

    def tell(self, key: jax.Array, population: PyTree, fitness: jax.Array,
             state: PyTree) -> PyTree: ...

    def mean(self, state: PyTree) -> PyTree: ...


class EvosaxStrategy:
    """An evosax distribution-based strategy (OpenAI-ES, SNES, CMA-ES)."""

    def __init__(self, algorithm: str, population_size: int, solution: PyTree,
                 sigma_init: float, learning_rate: float, antithetic: bool = True):
        from evosax.algorithms import CMA_ES, SNES, Open_ES

        self.population_size = population_size
        if algorithm == "open_es":
            self.es = Open_ES(population_size=population_size, solution=solution,
                              use_antithetic_sampling=antithetic,
                              optimizer=optax.adam(learning_rate),
                              std_schedule=optax.constant_schedule(sigma_init))
            self.params = self.es.default_params
        elif algorithm == "snes":
            self.es = SNES(population_size=population_size, solution=solution,
                           optimizer=optax.sgd(learning_rate))
            self.params = self.es.default_params.replace(std_init=sigma_init)
        elif algorithm == "cma_es":
            self.es = CMA_ES(population_size=population_size, solution=solution)
            self.params = self.es.default_params.replace(std_init=sigma_init)
        else:
            raise ValueError(f"unknown evosax algorithm {algorithm!r}; "
                             "allowed: open_es, snes, cma_es")

    def init(self, key: jax.Array, mean: PyTree) -> PyTree:
        return self.es.init(key, mean, self.params)

    def ask(self, key: jax.Array, state: PyTree) -> tuple[PyTree, PyTree]:
        return self.es.ask(key, state, self.params)

    def tell(self, key: jax.Array, population: PyTree, fitness: jax.Array,
             state: PyTree) -> PyTree:
        state, _ = self.es.tell(key, population, -fitness, state, self.params)
        return state

    def mean(self, state: PyTree) -> PyTree:
        return self.es.get_mean(state)


class RandomSearchState(NamedTuple):
    best: PyTree
    best_fitness: jax.Array


class RandomSearch:
    """Independent samples every generation (Bergstra & Bengio 2012); its "mean" is the best
    candidate seen so far, so mean evaluations and exports work as for ES."""

    def __init__(self, population_size: int, sample: Callable[[jax.Array], PyTree]):
        self.population_size = population_size
        self.sample = sample

    def init(self, key: jax.Array, mean: PyTree) -> RandomSearchState:
        return RandomSearchState(mean, jnp.asarray(-jnp.inf))

    def ask(self, key: jax.Array, state: RandomSearchState) -> tuple[PyTree, RandomSearchState]:
        return jax.vmap(self.sample)(jax.random.split(key, self.population_size)), state

    def tell(self, key: jax.Array, population: PyTree, fitness: jax.Array,
             state: RandomSearchState) -> RandomSearchState:
        i = jnp.argmax(fitness)
        better = fitness[i] > state.best_fitness
        best = jax.tree.map(lambda p, b: jnp.where(better, p[i], b), population, state.best)
        return RandomSearchState(best, jnp.where(better, fitness[i], state.best_fitness))

    def mean(self, state: RandomSearchState) -> PyTree:
        return state.best


def make_strategy(algorithm: str, population_size: int, solution: PyTree, *,
                  sigma_init: float = 0.5, learning_rate: float = 0.1, antithetic: bool = True,
                  sample: Callable[[jax.Array], PyTree] | None = None) -> Strategy:
    if algorithm == "random":
        if sample is None:
            raise ValueError("random search needs a `sample(key)` function for candidates")
        return RandomSearch(population_size, sample)
    return EvosaxStrategy(algorithm, population_size, solution, sigma_init, learning_rate,
                          antithetic)
