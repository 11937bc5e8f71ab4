"""Adapter from gymnax environments to the metarl `Env` protocol."""

from __future__ import annotations

from typing import Any

import jax
import numpy as np

from metarl.envs.env import StepResult
from metarl.envs.spaces import Box, Discrete, Space


def _convert_space(space: Any) -> Space:
    if hasattr(space, "n"):
        return Discrete(int(space.n))
    low = np.asarray(space.low, np.float32)
    high = np.asarray(space.high, np.float32)
    shape = tuple(int(s) for s in space.shape)
    return Box(_static(low), _static(high), shape)


def _static(a: np.ndarray) -> float | tuple:
    """A hashable copy of a bound, so spaces can be static arguments."""
    return float(a) if a.ndim == 0 else tuple(a.reshape(-1).tolist())


class GymnaxEnv:
    """A gymnax environment. gymnax already resets automatically and reports the final
    observation, so this is a thin renaming layer."""

    def __init__(self, env_id: str, **make_kwargs: Any):
        import gymnax

        self.name = f"gymnax/{env_id}"
        self._env, self._default_params = gymnax.make(env_id, **make_kwargs)

    @property
    def default_params(self) -> Any:
        return self._default_params

    def reset(self, key: jax.Array, params: Any) -> tuple[jax.Array, Any]:
        return self._env.reset(key, params)

    def step(self, key: jax.Array, state: Any, action: jax.Array, params: Any) -> StepResult:
        # gymnax's own key split, so this equals `gymnax`'s `step`
        key_step, key_reset = jax.random.split(key)
        return self.step_with_reset(key_step, state, action, params,
                                    self._env.reset_env(key_reset, params))

    def step_with_reset(self, key: jax.Array, state: Any, action: jax.Array, params: Any,
                        reset: tuple[jax.Array, Any]) -> StepResult:
        """`step`, continuing from `reset = (obs, state)` where the episode ends: what gymnax's
        automatic reset does, with the reset drawn by the caller (see `ResetAheadEnv`)."""
        obs, stepped, reward, terminated, _ = self._env.step_env(key, state, action, params)
        truncated = self._env.is_truncated(stepped, params)
        done = terminated | truncated
        new_obs, new_state = jax.tree.map(lambda r, s: jax.lax.select(done, r, s), reset,
                                          (obs, stepped))
        return StepResult(new_obs, new_state, reward.astype(np.float32),
                          terminated.astype(bool), truncated.astype(bool), obs)

    def observation_space(self, params: Any) -> Space:
        return _convert_space(self._env.observation_space(params))

    def action_space(self, params: Any) -> Space:
        return _convert_space(self._env.action_space(params))

    def __repr__(self) -> str:
        return f"GymnaxEnv({self.name!r})"
