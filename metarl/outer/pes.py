"""Persistent evolution strategies (PES) and truncated ES over a truncated inner run.

Vicol, Metz and Sohl-Dickstein 2021, "Unbiased Gradient Estimation in Unrolled Computation
Graphs with Persistent Evolution Strategies". Antithetic particle pairs each carry their own
inner runs across outer steps. Every outer step draws a fresh perturbation eps_i per pair,
unrolls one truncation of the + run with mean + eps_i and of the - run with mean - eps_i, and
estimates the gradient of the fitness as

    g = 1 / (2 P sigma^2) * sum_i xi_i * (F_i^+ - F_i^-),   xi_i = sum of pair i's eps so far

where xi_i accumulates every perturbation since the pair's inner run began. Because the
fitness of a truncation depends on the meta-parameters of all earlier truncations of the same
run, that accumulation makes g unbiased for the gradient of the objective (the mean over a
run's truncations of their fitness). Truncated ES is the same loop with xi_i = eps_i: it
credits a truncation to its own perturbation only, and is biased wherever the inner state
carries the meta-parameters' influence forward.

Why not evosax's `PersistentES`: it keeps one inner-step counter for all particles, so every
particle restarts at once; staggered runs (`metarl.outer.inner_runs`) need a position and a
reset per pair, and the inner states must live beside the accumulators in one state pytree.
"""

from __future__ import annotations

from typing import Any, NamedTuple

import jax
import jax.numpy as jnp
import optax

from metarl.outer.inner_runs import InnerRuns, advance_runs, start_runs
from metarl.outer.loop import (
    OPTIMIZERS,
    OuterLoopError,
    StepReport,
    as_state,
    fitness_metrics,
    global_norm,
    raw_key,
    where,
)
from metarl.outer.problem import TruncatedProblem

PyTree = Any

class PESState(NamedTuple):
    mean: PyTree
    opt_state: PyTree
    runs: InnerRuns  # inner states with leading axes (pairs, 2): [+ run, - run]
    accumulated: PyTree  # (pairs, ...) perturbations of the + run since its start
    key: jax.Array
    step: jax.Array
    skipped: jax.Array  # updates skipped for a non-finite gradient, in total


class Estimate(NamedTuple):
    """One step's gradient estimate (ascent direction on fitness) and what produced it."""

    gradient: PyTree
    state: PESState  # particles advanced; mean and optimizer untouched
    report: StepReport  # mean: the mean the members were drawn around
    valid_pairs: jax.Array


def pairs_to_members(tree: PyTree) -> PyTree:
    """(pairs, 2, ...) -> (2 * pairs, ...): member 2i is pair i's + run, 2i+1 its - run."""
    return jax.tree.map(lambda x: x.reshape((-1,) + x.shape[2:]), tree)


class PES:
    """PES (or, with `truncated=True`, truncated ES): one truncation per outer step."""

    def __init__(self, solution: PyTree, population_size: int, sigma: float = 0.1,
                 learning_rate: float = 0.01, optimizer: str = "adam",
                 truncated: bool = False):
        self.name = "truncated_es" if truncated else "pes"
        if population_size < 2 or population_size % 2:
            raise OuterLoopError(f"outer loop {self.name!r}: population_size must be even and "
                                 f"at least 2 (antithetic pairs), not {population_size}")
        if not sigma > 0:
            raise OuterLoopError(f"outer loop {self.name!r}: sigma must be positive")
        if optimizer not in OPTIMIZERS:
            raise OuterLoopError(f"outer loop {self.name!r}: optimizer {optimizer!r} unknown; "
                                 f"allowed: {', '.join(OPTIMIZERS)}")
        self.solution = solution
        self.population_size = population_size
        self.pairs = population_size // 2
        self.sigma = float(sigma)
        self.truncated = truncated
        self.optimizer = OPTIMIZERS[optimizer](learning_rate)

    def _check(self, problem: TruncatedProblem) -> None:
        if problem.truncations < 2:
            raise OuterLoopError(f"outer loop {self.name!r} needs an inner run cut into at "
                                 "least 2 truncations; with 1 use an ES such as 'open_es'")

    def _fresh(self, key: jax.Array, mean: PyTree, problem: TruncatedProblem) -> PyTree:
        """A fresh inner state per pair, the same for its + and - runs (common random
        numbers), made with the unperturbed mean: PES credits the meta-parameters' effect
        through the unrolls, not through `init_inner`."""
        keys = jax.random.split(key, self.pairs)
        fresh = jax.vmap(problem.init_inner, in_axes=(0, None))(keys, mean)
        return jax.tree.map(lambda x: jnp.stack([x, x], axis=1), fresh)

    def init(self, key: jax.Array, mean: PyTree, problem: TruncatedProblem) -> PESState:
        self._check(problem)
        key, k_fresh = jax.random.split(raw_key(key))
        runs = start_runs(self._fresh(k_fresh, mean, problem), self.pairs, problem.truncations)
        accumulated = jax.tree.map(lambda m: jnp.zeros((self.pairs,) + jnp.shape(m),
                                                       jnp.result_type(m)), mean)
        zero = jnp.zeros((), jnp.int32)
        return as_state(PESState(mean, self.optimizer.init(mean), runs, accumulated, key,
                                 zero, zero))

    def estimate(self, state: PESState, problem: TruncatedProblem) -> Estimate:
        """Unroll every particle by one truncation and estimate the gradient."""
        key, k_eps, k_unroll, k_fresh = jax.random.split(state.key, 4)
        eps = self._perturbations(k_eps, state.mean)
        accumulated = eps if self.truncated else jax.tree.map(jnp.add, state.accumulated, eps)
        members = jax.tree.map(lambda m, e: m + jnp.stack([e, -e], axis=1), state.mean, eps)
        keys = jax.random.split(k_unroll, self.pairs)  # one per pair, shared by its two runs
        unroll_pair = jax.vmap(problem.unroll, in_axes=(0, 0, None))
        ev, reached = jax.vmap(unroll_pair)(members, state.runs.state, keys)
        gradient, valid = self._gradient(accumulated, ev.fitness)
        runs, done = advance_runs(state.runs, reached, self._fresh(k_fresh, state.mean, problem),
                                  problem.truncations, restart=~valid)
        accumulated = jax.tree.map(
            lambda a: jnp.where(done.reshape((-1,) + (1,) * (a.ndim - 1)), 0, a), accumulated)
        fitness = ev.fitness.reshape(-1)
        metrics = fitness_metrics(fitness) | {
            "truncation": jnp.mean(state.runs.position.astype(jnp.float32)),
            "inner_resets": 2 * done.sum(), "valid_pairs": valid.sum()}
        report = StepReport(pairs_to_members(members), fitness,
                            pairs_to_members(ev.info), state.mean, metrics)
        advanced = state._replace(runs=runs, accumulated=accumulated, key=key)
        return Estimate(gradient, advanced, report, valid)

    def _perturbations(self, key: jax.Array, mean: PyTree) -> PyTree:
        leaves, tree = jax.tree.flatten(mean)
        keys = jax.random.split(key, len(leaves))
        return jax.tree.unflatten(tree, [
            self.sigma * jax.random.normal(k, (self.pairs,) + jnp.shape(x), jnp.result_type(x))
            for x, k in zip(leaves, keys, strict=True)])

    def _gradient(self, accumulated: PyTree, fitness: jax.Array) -> tuple[PyTree, jax.Array]:
        """The antithetic PES/TES estimate over the pairs whose two scores are finite; a
        pair with a failed run is left out (and restarted) rather than poisoning the mean."""
        valid = jnp.isfinite(fitness).all(axis=1)
        diff = fitness[:, 0] - fitness[:, 1]
        # below float32 resolution a difference is rounding (XLA may compute one score in two
        # fusions), not signal; Adam would scale such noise up to full-size steps
        resolution = 8 * jnp.finfo(fitness.dtype).eps * jnp.abs(fitness).max(axis=1)
        diff = jnp.where(valid & (jnp.abs(diff) > resolution), diff, 0.0)
        scale = 1.0 / (2.0 * jnp.maximum(valid.sum(), 1) * self.sigma ** 2)
        return jax.tree.map(lambda a: scale * jnp.tensordot(diff, a, axes=1), accumulated), valid

    def step(self, state: PESState, problem: TruncatedProblem) -> tuple[PESState, StepReport]:
        est = self.estimate(state, problem)
        grad_norm = global_norm(est.gradient)
        ok = jnp.isfinite(grad_norm) & est.valid_pairs.any()
        # optax minimises: the fitness gradient goes in negated
        neg = jax.tree.map(jnp.negative, est.gradient)
        updates, opt_state = self.optimizer.update(neg, state.opt_state, state.mean)
        mean = optax.apply_updates(state.mean, updates)
        new = est.state._replace(mean=where(ok, mean, state.mean),
                                 opt_state=where(ok, opt_state, state.opt_state),
                                 step=state.step + 1, skipped=state.skipped + (~ok))
        metrics = est.report.metrics | {"grad_norm": grad_norm,
                                        "update_skipped": (~ok).astype(jnp.int32),
                                        "update_skipped_total": new.skipped}
        return as_state(new), est.report._replace(mean=new.mean, metrics=metrics)

    def mean(self, state: PESState) -> PyTree:
        return state.mean

