"""RL²'s view of a task distribution (Duan et al. 2016, "RL²: Fast Reinforcement Learning via
Slow Reinforcement Learning"): a **trial** is `episodes_per_trial` episodes of one task drawn
from the distribution, and the agent sees, besides the observation, its previous action, the
previous reward and whether the previous step ended an episode.

`TrialEnv` wraps any env of the protocol whose params are a task and which can draw one
(`sample_params(key)`). To the inner loop the whole trial is one episode: it ends (truncated)
only after the trial's last episode, and its return is the trial's total reward, the quantity
RL² maximises, and it ends as terminated: no value is bootstrapped across a change of task.
So a recurrent PPO that resets its hidden state at episode ends resets it
between trials only, and keeps it across the episodes of a trial: the memory in which the
agent learns the task.

The task lives in the wrapper's state, drawn at every trial's start; the wrapper's own params
are the base env's default params, used only for its spaces (the task distribution is the base
env's `sample_params`).
"""

from __future__ import annotations

from typing import Any

import jax
import jax.numpy as jnp
from flax import struct

from metarl.envs.env import Env, StepResult
from metarl.envs.spaces import Box, Discrete, Space

PyTree = Any


@struct.dataclass
class TrialState:
    base: PyTree  # the base env's state
    task: PyTree  # this trial's task: the base env's params
    episode: jax.Array  # episodes finished in this trial
    base_obs: jax.Array  # the base env's current observation


class TrialEnv:
    """`base` played in trials of `episodes_per_trial` episodes of one sampled task."""

    def __init__(self, base: Env, episodes_per_trial: int):
        if not hasattr(base, "sample_params"):
            raise ValueError(f"env {base.name!r} has no task distribution (sample_params): "
                             "RL² needs one")
        if episodes_per_trial < 1:
            raise ValueError(f"episodes_per_trial must be at least 1, got {episodes_per_trial}")
        self.base = base
        self.episodes_per_trial = int(episodes_per_trial)
        self.name = f"rl2({base.name})"
        space = base.action_space(base.default_params)
        self.discrete = isinstance(space, Discrete)
        self.action_width = space.n if self.discrete else int(jnp.prod(jnp.array(space.shape)))
        self.base_obs_size = int(jnp.prod(jnp.array(
            base.observation_space(base.default_params).shape)))

    @property
    def default_params(self) -> PyTree:
        return self.base.default_params

    @property
    def trial_steps(self) -> int | None:
        """Steps per trial when the base env's episodes have a fixed length, else None."""
        steps = getattr(self.base, "episode_steps", None)
        return None if steps is None else steps * self.episodes_per_trial

    def observation_space(self, params: PyTree) -> Space:
        size = self.base_obs_size + self.action_width + 2  # + previous reward, episode end
        return Box(-jnp.inf, jnp.inf, (size,))

    def action_space(self, params: PyTree) -> Space:
        return self.base.action_space(self.base.default_params)

    def _obs(self, base_obs: jax.Array, action: jax.Array, reward: jax.Array,
             episode_end: jax.Array) -> jax.Array:
        if self.discrete:
            previous = jax.nn.one_hot(action, self.action_width, dtype=jnp.float32)
        else:
            previous = jnp.reshape(action, (-1,)).astype(jnp.float32)
        return jnp.concatenate([jnp.reshape(base_obs, (-1,)).astype(jnp.float32), previous,
                                jnp.reshape(reward, (1,)).astype(jnp.float32),
                                jnp.reshape(episode_end, (1,)).astype(jnp.float32)])

    def _no_action(self) -> jax.Array:
        if self.discrete:
            return jnp.asarray(-1, jnp.int32)  # one_hot(-1) is all zeros: no previous action
        return jnp.zeros((self.action_width,), jnp.float32)

    def reset(self, key: jax.Array, params: PyTree) -> tuple[jax.Array, TrialState]:
        """A new trial: a task drawn from the base env's distribution, its first episode."""
        del params  # the task is drawn, not given
        k_task, k_reset = jax.random.split(key)
        task = self.base.sample_params(k_task)
        obs, base_state = self.base.reset(k_reset, task)
        state = TrialState(base_state, task, jnp.zeros((), jnp.int32), obs)
        zero = jnp.zeros((), jnp.float32)
        return self._obs(obs, self._no_action(), zero, zero), state

    def step(self, key: jax.Array, state: TrialState, action: jax.Array,
             params: PyTree) -> StepResult:
        k_step, k_trial = jax.random.split(key)
        # the base env resets itself between the episodes of a trial, on the same task
        out = self.base.step(k_step, state.base, action, state.task)
        episode_end = out.terminated | out.truncated
        episode = state.episode + episode_end.astype(jnp.int32)
        trial_end = episode >= self.episodes_per_trial
        inside = TrialState(out.state, state.task, episode, out.obs)
        obs = self._obs(out.obs, action, out.reward, episode_end)
        final_obs = self._obs(out.final_obs, action, out.reward, episode_end)
        next_obs, next_state = self.reset(k_trial, params)
        state = jax.tree.map(lambda new, old: jnp.where(trial_end, new, old), next_state,
                             inside)
        obs = jnp.where(trial_end, next_obs, obs)
        # the trial's end is terminal for the agent: what follows is another task, so nothing
        # may be bootstrapped across it (a time-limit truncation would be)
        return StepResult(obs, state, out.reward, trial_end, jnp.zeros((), bool), final_obs)

    def __repr__(self) -> str:
        return f"TrialEnv({self.base!r}, episodes_per_trial={self.episodes_per_trial})"
