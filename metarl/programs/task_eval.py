"""Training a population on a task suite and scoring it: the fitness of every search kind.

Each task gets its own compiled PPO (tasks differ in env and budget, so in shapes); within a
task, members and seeds are `vmap`-ed, so the whole population trains in one call.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

import jax
import jax.numpy as jnp

from metarl.errors import UserError
from metarl.outer.problem import Evaluation, TruncatedProblem
from metarl.ppo import HParams, TrainState
from metarl.ppo.objectives import Objective, ppo_clip
from metarl.programs.ranges import sample_range
from metarl.spec.schema import Inner, Range, Task

PyTree = Any


def sample_value(key: jax.Array, spec: float | int | bool | Range) -> jax.Array | float:
    """A fixed env param as it is, or a draw from its range."""
    return sample_range(key, spec) if isinstance(spec, Range) else spec


def tail_length(num_updates: int, final_fraction: float) -> int:
    """Updates in the score window of fitness and evaluation alike: the last
    `final_fraction` of them, at least one."""
    return max(1, round(num_updates * final_fraction))


def tail_mean(curves: jax.Array, final_fraction: float) -> jax.Array:
    """Mean of `curves` (`(..., updates)`) over the score window."""
    return curves[..., -tail_length(curves.shape[-1], final_fraction):].mean(-1)


def normalise_return(task: Task, ret: jax.Array) -> jax.Array:
    """`ret` mapped by the task's `return_range` onto [0, 1] (unchanged without one)."""
    if task.return_range is None:
        return ret
    lo, hi = task.return_range
    return (ret - lo) / (hi - lo)


class TaskEval:
    """One task: its compiled-once inner loop (the `[inner]` section's), env-param
    distribution and return normaliser. `optimizer` fills the inner loop's optimizer slot
    (None: the loop's own)."""

    def __init__(self, task: Task, inner: Inner, final_fraction: float,
                 objective: Objective = ppo_clip, where: str = "tasks", optimizer: Any = None):
        self.task = task
        self.seeds = inner.seeds
        self.loop = inner.build_task(task, objective, optimizer, where)
        self.config = self.loop.config
        self.train = self.loop.train
        self.tail = tail_length(self.config.num_updates, final_fraction)

    def sample_env_params(self, key: jax.Array) -> PyTree:
        keys = jax.random.split(key, max(1, len(self.task.env_params)))
        values = {name: sample_value(k, spec) for k, (name, spec) in
                  zip(keys, sorted(self.task.env_params.items()), strict=False)}
        default = self.loop.default_env_params
        return default.replace(**values) if values else default

    def curves(self, key: jax.Array, meta_params: PyTree, hparams: HParams) -> jax.Array:
        """Score curves `(seeds, updates)` of one candidate (RL: episode returns)."""
        keys = jax.random.split(key, self.seeds)
        env_params = jax.vmap(self.sample_env_params)(keys)
        _, metrics = jax.vmap(self.train, in_axes=(0, None, None, 0))(
            keys, meta_params, hparams, env_params)
        return self.loop.score(metrics)

    def final_return(self, key: jax.Array, meta_params: PyTree, hparams: HParams) -> jax.Array:
        """Mean return over the last `final_fraction` of updates and over seeds."""
        return self.curves(key, meta_params, hparams)[:, -self.tail:].mean()

    def normalise(self, ret: jax.Array) -> jax.Array:
        return normalise_return(self.task, ret)

    def init_runs(self, key: jax.Array, meta_params: PyTree, hparams: HParams) -> TrainState:
        """`seeds` fresh PPO runs of one candidate (leading axis: seeds), each on env params
        drawn from the task's distribution, as `curves` draws them."""
        keys = jax.random.split(key, self.seeds)
        env_params = jax.vmap(self.sample_env_params)(keys)
        return jax.vmap(self.loop.init, in_axes=(0, None, None, 0))(keys, meta_params, hparams,
                                                                   env_params)

    def unroll(self, runs: TrainState, meta_params: PyTree, hparams: HParams,
               updates: int) -> tuple[TrainState, jax.Array]:
        """`updates` more updates of every run, with `hparams` from now on (they may change
        between truncations). Returns the runs and this stretch's share of the score: with
        `w = num_updates / tail` on the updates of the score window and 0 elsewhere, the mean
        over the stretch's updates of `w * return`, so that the mean over the stretches of a
        whole run is the window's mean return (for one stretch, exactly `final_return`)."""
        n, tail = self.config.num_updates, self.tail
        hp = jax.tree.map(lambda x: jnp.broadcast_to(x, (self.seeds,)), hparams)
        # a loop whose state wraps an agent's (curricula) says where its hyperparameters live
        with_hparams = getattr(self.loop, "with_hparams", None)
        runs = with_hparams(runs, hp) if with_hparams else runs._replace(hparams=hp)
        first = runs.update[0]
        runs, metrics = jax.vmap(lambda r: self.loop.step(r, meta_params, updates))(runs)
        index = first + jnp.arange(updates)
        weight = jnp.where(index >= n - tail, n / tail, 0.0)
        return runs, (jax.lax.stop_gradient(self.loop.score(metrics)) * weight).mean()

    def meta_objective(self, runs: TrainState) -> jax.Array:
        """`PPO.meta_objective` of every run, averaged: differentiable in the meta-parameters
        through the updates the runs made."""
        return jax.vmap(self.loop.meta_objective)(runs).mean()


class SuiteEval:
    """A population's raw and normalised final returns on every task of a suite.
    `optimizer(task)`, when given, fills each task's optimizer slot (see `TaskEval`)."""

    def __init__(self, tasks: Sequence[Task], inner: Inner, final_fraction: float,
                 objective: Objective = ppo_clip, where: str = "tasks.train",
                 optimizer: Callable[[Task], Any] | None = None):
        self.tasks = [TaskEval(t, inner, final_fraction, objective, f"{where}[{i}]",
                               None if optimizer is None else optimizer(t))
                      for i, t in enumerate(tasks)]
        self.labels = [t.task.label for t in self.tasks]

    @property
    def steps_per_candidate(self) -> int:
        return sum(t.config.num_updates * t.config.batch_size * t.seeds for t in self.tasks)

    def candidate_returns(self, key: jax.Array, meta_params: PyTree,
                          hparams: HParams) -> jax.Array:
        """One candidate's `(tasks,)` raw final returns, on the seeds `key` gives."""
        keys = jax.random.split(key, len(self.tasks))
        return jnp.stack([t.final_return(k, meta_params, hparams)
                          for t, k in zip(self.tasks, keys, strict=True)])

    def summary(self, returns: jax.Array) -> dict[str, float]:
        """Metrics of one candidate's `(tasks,)` raw returns: per task and normalised mean."""
        out = {f"return/{lab}": float(r) for lab, r in zip(self.labels, returns, strict=True)}
        out["normalised_return"] = float(self.normalised(returns[None])[0].mean())
        return out

    def problem(self, inner_args: Callable[[PyTree], tuple[PyTree, HParams]],
                truncations: int = 1, differentiable: bool = False) -> TruncatedProblem:
        """One candidate's inner runs on every task as a `TruncatedProblem`: a candidate
        `meta` trains with `inner_args(meta) = (meta_params, hparams)`, each task's run cut
        into `truncations` stretches of equal length. The fitness is the normalised score of
        the stretch averaged over tasks, info the raw per-task shares of the score window (see
        `TaskEval.unroll`). With `differentiable`, the fitness keeps its value but its
        gradient with respect to `meta` is that of the tasks' meta-objectives
        (`PPO.meta_objective`, Xu et al. 2018): returns of sampled episodes have none."""
        for t in self.tasks:
            if t.config.num_updates % truncations:
                raise UserError(
                    f"outer.truncations = {truncations} does not divide the "
                    f"{t.config.num_updates} inner-loop updates of task {t.task.label!r}; choose a "
                    "divisor, or change its timesteps")

        def init_inner(key: jax.Array, meta: PyTree) -> tuple[TrainState, ...]:
            meta_params, hp = inner_args(meta)
            keys = jax.random.split(key, len(self.tasks))
            return tuple(t.init_runs(k, meta_params, hp)
                         for t, k in zip(self.tasks, keys, strict=True))

        def unroll(meta: PyTree, runs: tuple[TrainState, ...],
                   key: jax.Array) -> tuple[Evaluation, tuple[TrainState, ...]]:
            del key  # every run carries its own keys
            meta_params, hp = inner_args(meta)
            out = [t.unroll(r, meta_params, hp, t.config.num_updates // truncations)
                   for t, r in zip(self.tasks, runs, strict=True)]
            raw = jnp.stack([share for _, share in out])
            runs = tuple(r for r, _ in out)
            fitness = self.fitness(raw[None])[0]
            if differentiable:
                meta_objective = jnp.mean(jnp.stack(
                    [t.meta_objective(r) for t, r in zip(self.tasks, runs, strict=True)]))
                # the value stays the fitness, the gradient is the meta-objective's
                fitness = fitness + meta_objective - jax.lax.stop_gradient(meta_objective)
            return Evaluation(fitness, raw), runs

        return TruncatedProblem(init_inner, unroll, truncations)

    def fitness(self, returns: jax.Array) -> jax.Array:
        """`(pop,)` fitness of `(pop, tasks)` raw returns: each task's return normalised by
        its `return_range`, then averaged over tasks. Every kind that trains on a suite scores
        this way."""
        return self.normalised(returns).mean(1)

    def normalised(self, returns: jax.Array) -> jax.Array:
        return jnp.stack([t.normalise(returns[:, i]) for i, t in enumerate(self.tasks)], 1)
