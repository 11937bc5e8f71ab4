"""Adapter from `brax.envs` environments to the metarl `Env` protocol."""

from __future__ import annotations

from typing import Any

import jax
import jax.numpy as jnp
from flax import struct

from metarl.envs.env import StepResult
from metarl.envs.spaces import Box, Space


@struct.dataclass
class BraxParams:
    """Brax tasks differ only in their episode length here; domain randomisation of the
    physics would add fields to this pytree."""

    max_steps_in_episode: int = 1000


@struct.dataclass
class BraxState:
    pipeline: Any  # brax.envs.State
    first: Any  # the reset state automatic resets return to (as brax's AutoResetWrapper)
    time: jax.Array


class BraxEnv:
    """A `brax.envs` environment on any backend (`generalized`, `positional`, `spring`, `mjx`).

    Automatic resets return to the state drawn at `reset`, as Brax's own training wrappers do:
    a fresh physics reset inside every vectorised step would cost as much as the step itself.
    """

    def __init__(self, env_name: str, backend: str | None = None, **kwargs: Any):
        from brax import envs

        if backend is not None:
            kwargs["backend"] = backend
        self.name = f"brax/{env_name}"
        self._env = envs.get_environment(env_name, **kwargs)

    @property
    def default_params(self) -> BraxParams:
        return BraxParams()

    def reset(self, key: jax.Array, params: BraxParams) -> tuple[jax.Array, BraxState]:
        first = self._env.reset(key)
        return first.obs, BraxState(first, first, jnp.zeros((), jnp.int32))

    def step(self, key: jax.Array, state: BraxState, action: jax.Array,
             params: BraxParams) -> StepResult:
        del key  # brax dynamics are deterministic given the action
        nxt = self._env.step(state.pipeline, action)
        time = state.time + 1
        terminated = jnp.asarray(nxt.done).astype(bool)
        truncated = (time >= params.max_steps_in_episode) & ~terminated
        done = terminated | truncated
        pipeline = jax.tree.map(lambda a, b: jnp.where(done, a, b), state.first, nxt)
        time = jnp.where(done, 0, time)
        return StepResult(pipeline.obs, BraxState(pipeline, state.first, time),
                          jnp.asarray(nxt.reward, jnp.float32), terminated, truncated, nxt.obs)

    def observation_space(self, params: BraxParams) -> Space:
        return Box(-float("inf"), float("inf"), (int(self._env.observation_size),))

    def action_space(self, params: BraxParams) -> Space:
        return Box(-1.0, 1.0, (int(self._env.action_size),))

    def __repr__(self) -> str:
        return f"BraxEnv({self.name!r})"
