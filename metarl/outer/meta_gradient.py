"""Meta-gradients through one truncation of carried inner runs.

In the spirit of Xu, van Hasselt and Silver 2018, "Meta-Gradient Reinforcement Learning":
the meta-parameters are updated online, by differentiating the fitness of the latest
truncation of the inner run with respect to them (`jax.grad` of `problem.unroll`), with the
inner state the run arrived with held fixed. `batch` inner runs, staggered over the run's
truncations (`metarl.outer.inner_runs`) and carried across outer steps, average their
gradients; an optax optimizer applies the average after global-norm clipping.

Differentiating through an unroll can explode: Metz, Freeman, Schoenholz and Kachman 2021,
"Gradients are not all you need", show that through chaotic inner dynamics the gradient's
norm and variance grow exponentially with the unroll length. Every step reports:

* `grad_norm`: the global norm of the batch-mean gradient, before clipping;
* `grad_norm_ratio`: `grad_norm` over the median of the last `norm_window` finite norms
  (1 until there is a history): a sudden jump is the explosion that rule describes;
* `grad_noise`: the standard error of the batch-mean gradient over its norm (0 for batch 1):
  above 1, per-run gradients disagree more than they agree (high variance, cancelling);
* `chaotic`: 1 when `grad_norm_ratio > chaos_ratio` or `grad_noise > chaos_noise`.

The flag is a report; clipping bounds the damage of one exploding step. A non-finite mean
gradient skips the update: meta-parameters, optimizer state and the norm history stay as
they were, the skip is counted, and the runs whose gradient or fitness was non-finite restart
from a fresh inner state (carrying them would only repeat the failure).
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

class MetaGradientState(NamedTuple):
    mean: PyTree
    opt_state: PyTree
    runs: InnerRuns  # (batch, ...) inner states
    key: jax.Array
    step: jax.Array
    norms: jax.Array  # (norm_window,) recent finite grad norms, NaN where none yet
    clipped: jax.Array  # clip events in total
    skipped: jax.Array  # updates skipped for a non-finite gradient, in total


class Estimate(NamedTuple):
    gradients: PyTree  # (batch, ...) per-run gradients of fitness (ascent direction)
    state: MetaGradientState  # runs advanced; mean, optimizer and statistics untouched
    report: StepReport


def tree_norms(tree: PyTree) -> jax.Array:
    """Per-run global norms of a pytree with a leading run axis."""
    return jnp.sqrt(sum(jnp.sum(x.reshape(x.shape[0], -1) ** 2, axis=1)
                        for x in jax.tree.leaves(tree)))


class MetaGradient:
    """Online meta-gradient outer loop (see module doc)."""

    name = "meta_gradient"

    def __init__(self, solution: PyTree, learning_rate: float = 1e-3, optimizer: str = "adam",
                 max_grad_norm: float | None = 1.0, batch: int = 1, chaos_ratio: float = 10.0,
                 chaos_noise: float = 10.0, norm_window: int = 32):
        if optimizer not in OPTIMIZERS:
            raise OuterLoopError(f"outer loop 'meta_gradient': optimizer {optimizer!r} unknown;"
                                 f" allowed: {', '.join(OPTIMIZERS)}")
        if batch < 1 or norm_window < 1:
            raise OuterLoopError("outer loop 'meta_gradient': batch and norm_window must be "
                                 "at least 1")
        if max_grad_norm is not None and not max_grad_norm > 0:
            raise OuterLoopError("outer loop 'meta_gradient': max_grad_norm must be positive "
                                 "(or unset for no clipping)")
        self.solution = solution
        self.optimizer = OPTIMIZERS[optimizer](learning_rate)
        self.max_grad_norm = max_grad_norm
        self.batch = batch
        self.population_size = batch
        self.chaos_ratio = chaos_ratio
        self.chaos_noise = chaos_noise
        self.norm_window = norm_window

    def _fresh(self, key: jax.Array, mean: PyTree, problem: TruncatedProblem) -> PyTree:
        keys = jax.random.split(key, self.batch)
        return jax.vmap(problem.init_inner, in_axes=(0, None))(keys, mean)

    def init(self, key: jax.Array, mean: PyTree,
             problem: TruncatedProblem) -> MetaGradientState:
        key, k_fresh = jax.random.split(raw_key(key))
        runs = start_runs(self._fresh(k_fresh, mean, problem), self.batch, problem.truncations)
        zero = jnp.zeros((), jnp.int32)
        return as_state(MetaGradientState(
            mean, self.optimizer.init(mean), runs, key, zero,
            jnp.full((self.norm_window,), jnp.nan, jnp.float32), zero, zero))

    def estimate(self, state: MetaGradientState, problem: TruncatedProblem) -> Estimate:
        """Per-run gradients of one truncation's fitness; the runs advance by it."""
        key, k_unroll, k_fresh = jax.random.split(state.key, 3)

        def fitness(meta: PyTree, inner: PyTree, k: jax.Array):
            ev, reached = problem.unroll(meta, inner, k)
            return ev.fitness, (ev, reached)

        grad_fn = jax.vmap(jax.grad(fitness, has_aux=True), in_axes=(None, 0, 0))
        grads, (ev, reached) = grad_fn(state.mean, state.runs.state,
                                       jax.random.split(k_unroll, self.batch))
        failed = ~(jnp.isfinite(ev.fitness) & jnp.isfinite(tree_norms(grads)))
        runs, done = advance_runs(state.runs, reached, self._fresh(k_fresh, state.mean, problem),
                                  problem.truncations, restart=failed)
        metrics = fitness_metrics(ev.fitness) | {
            "nan_skipped": failed.sum(),
            "truncation": jnp.mean(state.runs.position.astype(jnp.float32)),
            "inner_resets": done.sum()}
        report = StepReport(None, ev.fitness, ev.info, state.mean, metrics)
        return Estimate(grads, state._replace(runs=runs, key=key), report)

    def diagnose(self, gradients: PyTree, norms: jax.Array) -> dict[str, jax.Array]:
        """The exploding/chaotic meta-gradient report (module doc) for one step."""
        mean = jax.tree.map(lambda g: jnp.mean(g, axis=0), gradients)
        norm = global_norm(mean)
        median = jnp.nanmedian(norms)
        ratio = jnp.where(jnp.isnan(median), 1.0, norm / jnp.maximum(median, 1e-30))
        deviation = jax.tree.map(lambda g, m: g - m, gradients, mean)
        spread = jnp.sqrt(jnp.mean(tree_norms(deviation) ** 2))  # per-run std (norm)
        n = self.batch
        noise = (spread / jnp.sqrt(max(n - 1, 1))) / jnp.maximum(norm, 1e-30) if n > 1 else 0.0
        chaotic = (ratio > self.chaos_ratio) | (noise > self.chaos_noise)
        return {"grad_norm": norm, "grad_norm_ratio": ratio,
                "grad_noise": jnp.asarray(noise, jnp.float32),
                "chaotic": chaotic.astype(jnp.int32)}

    def step(self, state: MetaGradientState,
             problem: TruncatedProblem) -> tuple[MetaGradientState, StepReport]:
        est = self.estimate(state, problem)
        diag = self.diagnose(est.gradients, state.norms)
        norm = diag["grad_norm"]
        ok = jnp.isfinite(norm)
        limit = jnp.inf if self.max_grad_norm is None else self.max_grad_norm
        clipped = ok & (norm > limit)
        scale = jnp.where(clipped, limit / norm, 1.0)
        # optax minimises: the (clipped) fitness gradient goes in negated
        neg = jax.tree.map(lambda g: -scale * jnp.mean(g, axis=0), est.gradients)
        updates, opt_state = self.optimizer.update(neg, state.opt_state, state.mean)
        mean = optax.apply_updates(state.mean, updates)
        slot = state.step % self.norm_window
        norms = state.norms.at[slot].set(norm)
        new = est.state._replace(
            mean=where(ok, mean, state.mean), opt_state=where(ok, opt_state, state.opt_state),
            step=state.step + 1, norms=where(ok, norms, state.norms),
            clipped=state.clipped + clipped, skipped=state.skipped + (~ok))
        metrics = est.report.metrics | diag | {
            "grad_clipped": clipped.astype(jnp.int32), "grad_clipped_total": new.clipped,
            "update_skipped": (~ok).astype(jnp.int32), "update_skipped_total": new.skipped}
        return as_state(new), est.report._replace(mean=new.mean, metrics=metrics)

    def mean(self, state: MetaGradientState) -> PyTree:
        return state.mean
