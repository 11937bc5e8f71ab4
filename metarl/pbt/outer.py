"""The `pbt` outer loop: Population Based Training (Jaderberg et al. 2017) with one PBT
interval per outer step, so checkpoints, resume, progress and tracking work as for any
search.

Each member is a `PBTMember` (hyperparameters as quantiles of the kind's `HyperSpace`, its
line's schedule, whom it copied last) with its own carried inner run (the problem's inner
state: weights, optimizer state, envs, counters). An outer step unrolls every member's run by
one truncation of the problem (one interval) in one vmapped, device-sharded call, then
exploits and explores (`metarl.pbt.population`) inside the same jitted step. Runs are never
restarted: a `pbt` search trains one population once, over at most `truncations` intervals."""

from __future__ import annotations

from typing import Any, NamedTuple

import jax
import jax.numpy as jnp

from metarl.outer.loop import OuterLoopError, StepReport, as_state, fitness_metrics, raw_key
from metarl.outer.problem import Evaluation, TruncatedProblem
from metarl.outer.sharding import replicated, shard_over_population
from metarl.pbt.exploit import bottom_count
from metarl.pbt.explore import Explorer, copied, sample_prior
from metarl.pbt.population import (
    PBTMember,
    best_member,
    exploit_and_explore,
    perturb_objective,
    record_interval,
)

PyTree = Any


class PBTState(NamedTuple):
    members: PBTMember  # leading axis (pop,)
    runs: PyTree  # the members' inner states, leading axis (pop,)
    explorer: PyTree
    key: jax.Array
    step: jax.Array  # intervals done
    best: jax.Array  # index of the best member at the last step


class PBT:
    """PBT over `population_size` members; `explorer` (the kind's: which hyperparameters,
    perturb or PB2) and `quantile` come from the search kind."""

    name = "pbt"

    def __init__(self, solution: PyTree, population_size: int, explorer: Explorer | None = None,
                 quantile: float = 0.25, mesh: jax.sharding.Mesh | None = None,
                 objective_sigma: float = 0.0):
        if explorer is None or not isinstance(solution, PBTMember):
            raise OuterLoopError("outer loop 'pbt' trains a population of hyperparameter "
                                 "settings: use it with kind = 'pbt'")
        if population_size < 2:
            raise OuterLoopError(f"outer loop 'pbt' needs a population of at least 2, not "
                                 f"{population_size}")
        n = bottom_count(population_size, quantile)
        if n < 1 or 2 * n > population_size:
            raise OuterLoopError(
                f"outer loop 'pbt': quantile {quantile} of a population of {population_size} is "
                f"{n} member(s); it must be at least 1 and at most half the population")
        self.solution, self.explorer, self.quantile = solution, explorer, quantile
        self.population_size, self.mesh = population_size, mesh
        self.objective_sigma = objective_sigma  # explore noise of a learned objective's weights

    def init(self, key: jax.Array, mean: PyTree, problem: TruncatedProblem) -> PBTState:
        if problem.truncations < 2:
            raise OuterLoopError("outer loop 'pbt' needs outer.truncations >= 2: one PBT "
                                 "interval per truncation of the inner runs")
        key, k_prior, k_runs = jax.random.split(raw_key(key), 3)
        pop = self.population_size
        u = sample_prior(k_prior, self.explorer.space, pop)
        # the kind's empty schedule (NaN rows: intervals not trained yet) for every member
        schedule = jnp.broadcast_to(mean.schedule, (pop,) + mean.schedule.shape)
        # every member starts from the kind's objective weights (if it searches some)
        objective = jax.tree.map(lambda w: jnp.broadcast_to(w, (pop,) + w.shape), mean.objective)
        members = PBTMember(u, schedule.astype(jnp.float32), jnp.arange(pop, dtype=jnp.int32),
                            objective)
        runs = jax.vmap(problem.init_inner)(jax.random.split(k_runs, pop), members)
        return as_state(PBTState(members, runs, self.explorer.init(pop), key,
                                 jnp.zeros((), jnp.int32), jnp.zeros((), jnp.int32)))

    def _unroll(self, problem: TruncatedProblem, members: PBTMember, runs: PyTree,
                key: jax.Array) -> tuple[Evaluation, PyTree]:
        def unroll(batch: tuple[PBTMember, PyTree], k: jax.Array) -> tuple[Evaluation, PyTree]:
            return jax.vmap(problem.unroll, in_axes=(0, 0, None))(*batch, k)

        if self.mesh is not None:
            unroll = shard_over_population(unroll, self.mesh)
        return unroll((members, runs), key)

    def step(self, state: PBTState, problem: TruncatedProblem) -> tuple[PBTState, StepReport]:
        if self.mesh is not None:  # the state enters and leaves whole on every device
            state = replicated(state, self.mesh)
        key, k_unroll, k_pbt = jax.random.split(state.key, 3)
        ev, runs = self._unroll(problem, state.members, state.runs, k_unroll)
        done = self.exploit(k_pbt, ev.fitness, state._replace(key=key), runs)
        report = StepReport(state.members, ev.fitness, ev.info, self.mean(done),
                            fitness_metrics(ev.fitness) | {
                                "copied": copied(done.members.source).sum(),
                                "interval": state.step})
        if self.mesh is not None:
            # every process reads whole steps, not its slice; and the next step is compiled
            # for the state as it was laid out at the start (the exploit gather already
            # moves members across devices)
            report = replicated(report, self.mesh)
            done = replicated(done, self.mesh)
        return done, report

    def exploit(self, key: jax.Array, scores: jax.Array, state: PBTState,
                runs: PyTree) -> PBTState:
        """The exploit/explore step after an interval whose runs reached `runs`; a copier
        also perturbs the learned objective's weights it copied, if members carry some."""
        searched = state.members.objective is not None
        if searched:  # a key of its own: searches without an objective keep their draws
            key, k_objective = jax.random.split(key)
        out = exploit_and_explore(key, scores, state.members.u, runs, self.explorer,
                                  state.explorer, self.quantile, state.step)
        members = record_interval(state.members, out, state.step)
        if searched:
            members = members._replace(objective=perturb_objective(
                k_objective, members.objective, out.source, self.objective_sigma))
        return as_state(state._replace(members=members, runs=out.states, explorer=out.explorer,
                                       step=state.step + 1,
                                       best=best_member(scores).astype(jnp.int32)))

    def mean(self, state: PBTState) -> PBTMember:
        """The best member of the last interval (its schedule included): what a search
        reports as its mean and best, and what `metarl export` writes."""
        return jax.tree.map(lambda x: x[state.best], state.members)
