"""Bernoulli multi-armed bandits as a task distribution, the bandit setting of RL²
(Duan et al. 2016, "RL²: Fast Reinforcement Learning via Slow Reinforcement Learning", §4.1).

A task is the vector of arm success probabilities, held in the env's params, so a batch of
envs with per-env params plays a different bandit in every env. One *episode* of this env is
the whole trial: `trial_length` pulls of the same arms, after which it truncates and resets
(the arms stay, they are params). An RL² trial on this env is therefore one episode; the
observation carries no information (a constant zero), because everything the agent can learn
arrives through the previous action and reward, which RL² feeds back itself.
"""

from __future__ import annotations

import jax
import jax.numpy as jnp
from flax import struct

from metarl.envs.env import StepResult
from metarl.envs.spaces import Box, Discrete, Space


@struct.dataclass
class BanditParams:
    """One bandit task: `probs[k]` is the probability that pulling arm k pays 1."""

    probs: jax.Array


@struct.dataclass
class BanditState:
    time: jax.Array  # pulls made so far in this trial


class BernoulliBandit:
    """`num_arms` Bernoulli arms pulled `trial_length` times per episode (= per trial).

    `sample_params(key)` draws a task with every probability uniform in [0, 1] (Duan et al.'s
    setting); `default_params` is a fixed, evenly spaced task for smoke tests.
    """

    def __init__(self, num_arms: int = 5, trial_length: int = 100):
        if num_arms < 1 or trial_length < 1:
            raise ValueError("num_arms and trial_length must be at least 1")
        self.num_arms = int(num_arms)
        self.trial_length = int(trial_length)
        self.name = "metarl/BernoulliBandit"

    @property
    def episode_steps(self) -> int:
        """Every episode's length (fixed): a trial of pulls."""
        return self.trial_length

    @property
    def default_params(self) -> BanditParams:
        return BanditParams(jnp.arange(1, self.num_arms + 1, dtype=jnp.float32)
                            / (self.num_arms + 1))

    def sample_params(self, key: jax.Array) -> BanditParams:
        """A task from Duan et al.'s distribution: each arm's probability ~ U[0, 1]."""
        return BanditParams(jax.random.uniform(key, (self.num_arms,), jnp.float32))

    def _obs(self) -> jax.Array:
        return jnp.zeros((1,), jnp.float32)

    def reset(self, key: jax.Array, params: BanditParams) -> tuple[jax.Array, BanditState]:
        del key, params  # the start of a trial is the same for every task
        return self._obs(), BanditState(jnp.zeros((), jnp.int32))

    def step(self, key: jax.Array, state: BanditState, action: jax.Array,
             params: BanditParams) -> StepResult:
        return self.step_with_reset(key, state, action, params, self.reset(key, params))

    def step_with_reset(self, key: jax.Array, state: BanditState, action: jax.Array,
                        params: BanditParams,
                        reset: tuple[jax.Array, BanditState]) -> StepResult:
        """`step`, continuing from `reset` when the trial ends (see `ResetAheadEnv`)."""
        p = params.probs[jnp.asarray(action, jnp.int32)]
        reward = (jax.random.uniform(key, (), jnp.float32) < p).astype(jnp.float32)
        time = state.time + 1
        truncated = time >= self.trial_length
        new_state = jax.tree.map(lambda r, s: jnp.where(truncated, r, s), reset[1],
                                 BanditState(time))
        obs = self._obs()
        return StepResult(obs, new_state, reward, jnp.zeros((), bool), truncated, obs)

    def observation_space(self, params: BanditParams) -> Space:
        return Box(0.0, 0.0, (1,))

    def action_space(self, params: BanditParams) -> Space:
        return Discrete(self.num_arms)

    def __repr__(self) -> str:
        return f"BernoulliBandit(num_arms={self.num_arms}, trial_length={self.trial_length})"
