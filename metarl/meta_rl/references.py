"""The classic algorithms of a trial env's task distribution, as functions of fresh tasks: what
`metarl evaluate` sets beside an RL² agent (total reward per trial, the agent's own score)."""

from __future__ import annotations

from collections.abc import Callable

import jax
import numpy as np

from metarl.envs.bandit import BernoulliBandit
from metarl.envs.tabular_mdp import TabularMDP
from metarl.meta_rl import bandit_baselines, mdp_baselines

# `(key, tasks) -> (tasks,)` total reward per trial of a batch of tasks
TrialPolicy = Callable[[jax.Array, object], jax.Array]


def trial_baselines(env: object, episodes_per_trial: int) -> dict[str, TrialPolicy]:
    """`{name: policy}` for the base env of an RL² trial; empty for an env without
    classic algorithms here."""
    if isinstance(env, BernoulliBandit):
        # a bandit trial is one episode of `trial_length` pulls; more episodes are more pulls
        pulls = env.trial_length * episodes_per_trial
        return {name: (lambda key, tasks, f=f: f(key, tasks, pulls).sum(1))
                for name, f in bandit_baselines.BASELINES.items()}
    if isinstance(env, TabularMDP):
        return {name: (lambda key, tasks, f=f: f(key, tasks, episodes_per_trial,
                                                 env.episode_length).sum(1))
                for name, f in mdp_baselines.BASELINES.items()}
    return {}


def reference_scores(env: object, episodes_per_trial: int, seeds: int, key: jax.Array,
                     trials_per_seed: int = 64) -> dict[str, np.ndarray]:
    """`{name: (seeds,)}` mean total reward per trial of each classic algorithm, each "seed"
    a batch of `trials_per_seed` freshly drawn tasks (the same tasks for every algorithm)."""
    policies = trial_baselines(env, episodes_per_trial)
    if not policies:
        return {}
    k_tasks, k_play = jax.random.split(key)
    tasks = jax.vmap(env.sample_params)(jax.random.split(k_tasks, seeds * trials_per_seed))
    return {name: np.asarray(jax.jit(policy)(k_play, tasks)).reshape(seeds, -1).mean(1)
            for name, policy in policies.items()}
