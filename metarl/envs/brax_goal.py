"""Continuous-control task distributions on Brax locomotion: a task is a target forward
velocity ("cheetah-vel": Finn et al. 2017, "Model-Agnostic Meta-Learning for Fast Adaptation of
Deep Networks", §5.3; Rothfuss et al. 2019, "ProMP: Proximal Meta-Policy Search") or a
direction to run in ("cheetah-dir", same papers).

The task lives in the env's params, so a batch of envs with per-env params runs a different
target in every env, and it is never observed: the agent infers it from the reward, as in those
papers and in RL². The body, its observation, its dynamics, its termination and its control
cost are the Brax env's own (`metarl.envs.brax_env.BraxEnv`); only the reward is replaced.

Forward velocity is the torso's x velocity over one env step, `(x_after - x_before) / dt` of
body 0 of the pipeline state, which is exactly what Brax 0.14's `ant`, `halfcheetah`, `hopper`
and `walker2d` report as their `x_velocity` metric; those are the bodies offered.

For the bodies that end an episode when they fall (`ant`, `hopper`, `walker2d`), the env's own
healthy (survival) reward is added: the velocity reward is never positive, so without it
falling over at once would be the best policy (the MuJoCo ant-vel tasks of MAML-era code add
a survival bonus too). `halfcheetah` has none and never terminates.
"""

from __future__ import annotations

from typing import Any

import jax
import jax.numpy as jnp
from flax import struct

from metarl.envs.brax_env import BraxEnv, BraxState
from metarl.envs.env import StepResult

# bodies whose body 0 is the torso and whose own `x_velocity` metric is its x velocity
FORWARD_BODIES = ("ant", "halfcheetah", "hopper", "walker2d")
# where each body's survival reward sits in its metrics (a body missing here has none)
_HEALTHY_METRIC = {"ant": "reward_survive", "hopper": "reward_healthy",
                   "walker2d": "reward_healthy"}


@struct.dataclass
class VelocityTask:
    """One task: `target`, the forward velocity to hold (m/s)."""

    target: jax.Array


@struct.dataclass
class DirectionTask:
    """One task: `direction`, +1 (run forward) or -1 (run backward)."""

    direction: jax.Array


def forward_velocity(before: Any, after: Any, dt: jax.Array | float) -> jax.Array:
    """The torso's x velocity between two Brax pipeline states one env step of `dt` apart."""
    return (after.x.pos[0, 0] - before.x.pos[0, 0]) / dt


def velocity_reward(velocity: jax.Array, target: jax.Array, ctrl_cost: jax.Array) -> jax.Array:
    """`-|velocity - target| - ctrl_cost`, cheetah-vel's reward (Finn et al. 2017)."""
    return -jnp.abs(velocity - target) - ctrl_cost


def direction_reward(velocity: jax.Array, direction: jax.Array,
                     ctrl_cost: jax.Array) -> jax.Array:
    """`direction * velocity - ctrl_cost`, cheetah-dir's reward (Finn et al. 2017)."""
    return direction * velocity - ctrl_cost


class _BraxForwardTask(BraxEnv):
    """A Brax body whose reward depends on its forward velocity and a task in the params; the
    episode length is fixed at construction so that `episode_steps` always tells the truth
    (RL² sizes its rollouts by it)."""

    def __init__(self, env_name: str, backend: str | None, max_steps_in_episode: int,
                 **kwargs: Any):
        if env_name not in FORWARD_BODIES:
            raise ValueError(f"{type(self).__name__} needs a body with a forward direction, "
                             f"one of {', '.join(FORWARD_BODIES)}; got {env_name!r}")
        if max_steps_in_episode < 1:
            raise ValueError("max_steps_in_episode must be at least 1")
        super().__init__(env_name, backend, **kwargs)
        self.env_name = env_name
        self.max_steps_in_episode = int(max_steps_in_episode)
        self._healthy_metric = _HEALTHY_METRIC.get(env_name)

    @property
    def episode_steps(self) -> int:
        """Every episode's length when the body does not fall (halfcheetah never does)."""
        return self.max_steps_in_episode

    def task_reward(self, velocity: jax.Array, ctrl_cost: jax.Array, params: Any) -> jax.Array:
        raise NotImplementedError

    def step(self, key: jax.Array, state: BraxState, action: jax.Array,
             params: Any) -> StepResult:
        # BraxEnv.step returns the state after the automatic reset; the reward needs the
        # physics state just before it, so the step is taken here
        del key  # brax dynamics are deterministic given the action
        nxt = self._env.step(state.pipeline, action)
        velocity = forward_velocity(state.pipeline.pipeline_state, nxt.pipeline_state,
                                    self._env.dt)
        ctrl_cost = -nxt.metrics["reward_ctrl"]  # the body's own weight times |action|²
        reward = self.task_reward(velocity, ctrl_cost, params)
        if self._healthy_metric is not None:
            reward = reward + nxt.metrics[self._healthy_metric]
        time = state.time + 1
        terminated = jnp.asarray(nxt.done).astype(bool)
        truncated = (time >= self.max_steps_in_episode) & ~terminated
        done = terminated | truncated
        pipeline = jax.tree.map(lambda a, b: jnp.where(done, a, b), state.first, nxt)
        time = jnp.where(done, 0, time)
        return StepResult(pipeline.obs, BraxState(pipeline, state.first, time),
                          jnp.asarray(reward, jnp.float32), terminated, truncated, nxt.obs)


class BraxGoalVelocity(_BraxForwardTask):
    """Run at a target forward velocity drawn per task uniform in [`low`, `high`] (MAML's
    cheetah-vel draws from [0, 2], ProMP's from [0, 3], our default); reward
    `-|v - target| - ctrl_cost`, episodes of `max_steps_in_episode` steps (MAML's horizon:
    200).

    `default_params` is the middle of the range.
    """

    def __init__(self, env_name: str = "halfcheetah", backend: str | None = None,
                 low: float = 0.0, high: float = 3.0, max_steps_in_episode: int = 200,
                 **kwargs: Any):
        if not low <= high:
            raise ValueError(f"low must not exceed high, got low={low}, high={high}")
        super().__init__(env_name, backend, max_steps_in_episode, **kwargs)
        self.low, self.high = float(low), float(high)
        self.name = "metarl/BraxGoalVelocity"

    @property
    def default_params(self) -> VelocityTask:
        return VelocityTask(jnp.asarray((self.low + self.high) / 2, jnp.float32))

    def sample_params(self, key: jax.Array) -> VelocityTask:
        """A task: the target velocity uniform in [low, high]."""
        return VelocityTask(jax.random.uniform(key, (), jnp.float32, self.low, self.high))

    def task_reward(self, velocity: jax.Array, ctrl_cost: jax.Array,
                    params: VelocityTask) -> jax.Array:
        return velocity_reward(velocity, params.target, ctrl_cost)

    def __repr__(self) -> str:
        return (f"BraxGoalVelocity({self.env_name!r}, low={self.low}, high={self.high}, "
                f"max_steps_in_episode={self.max_steps_in_episode})")


class BraxGoalDirection(_BraxForwardTask):
    """Run forward or backward, the direction drawn per task with probability 1/2 each;
    reward `direction * v - ctrl_cost`, episodes of `max_steps_in_episode` steps.

    `default_params` is forward (+1).
    """

    def __init__(self, env_name: str = "halfcheetah", backend: str | None = None,
                 max_steps_in_episode: int = 200, **kwargs: Any):
        super().__init__(env_name, backend, max_steps_in_episode, **kwargs)
        self.name = "metarl/BraxGoalDirection"

    @property
    def default_params(self) -> DirectionTask:
        return DirectionTask(jnp.asarray(1.0, jnp.float32))

    def sample_params(self, key: jax.Array) -> DirectionTask:
        """A task: +1 or -1 with probability 1/2 each."""
        forward = jax.random.bernoulli(key, 0.5)
        return DirectionTask(jnp.where(forward, 1.0, -1.0).astype(jnp.float32))

    def task_reward(self, velocity: jax.Array, ctrl_cost: jax.Array,
                    params: DirectionTask) -> jax.Array:
        return direction_reward(velocity, params.direction, ctrl_cost)

    def __repr__(self) -> str:
        return (f"BraxGoalDirection({self.env_name!r}, "
                f"max_steps_in_episode={self.max_steps_in_episode})")
