"""A gridworld with a hidden goal as a task distribution: the maze setting of RL² (Duan et al.
2016, "RL²: Fast Reinforcement Learning via Slow Reinforcement Learning", §4.3: the target is
hidden, kept for a whole trial, and a good agent finds it in the first episode and goes straight
back to it in the next) on an open grid. Reaching the goal sends the agent back to the start
inside the episode, as in the navigation tasks of Mirowski et al. 2017 ("Learning to Navigate in
Complex Environments", where the agent respawns at a random place), so even a single episode
rewards exploiting a goal once found.

A task is the goal cell, held in the env's params. The grid is open: `size` x `size` cells
surrounded by walls, no walls inside. Every episode starts in the centre cell (`start_cell`:
fixed, so the path that found the goal can be replayed after every return; the centre keeps
every goal within `size - 1` steps for odd sizes); the goal is uniform among the other cells.
4 actions move up, right, down, left; a move into the outer wall leaves the agent where it is.
Reaching the goal pays 1 and puts the agent back on the start cell in the same step, so an
episode of `episode_length` steps (truncation, never termination) can collect the goal many
times: exploration pays once, exploitation every lap, which is what a trial of RL² should learn
to trade.

The goal is never observed. The observation is either the one-hot position (`view=None`,
fully observed position) or, with `view=v` (odd), the `v` x `v` window of cells centred on
the agent, 1 where a cell is wall (outside the grid) and 0 where it is free: a partially
observed, egocentric view in which the agent must keep track of where it is.
"""

from __future__ import annotations

import jax
import jax.numpy as jnp
from flax import struct

from metarl.envs.env import StepResult
from metarl.envs.spaces import Box, Discrete, Space

# (row, column) moves of actions 0..3: up, right, down, left
MOVES = ((-1, 0), (0, 1), (1, 0), (0, -1))


@struct.dataclass
class GoalParams:
    """One task: `goal` is the goal's cell index, `row * size + column`."""

    goal: jax.Array


@struct.dataclass
class GoalGridState:
    pos: jax.Array  # the agent's cell index, row * size + column
    time: jax.Array  # steps taken in this episode


class GoalGrid:
    """An open `size` x `size` grid, start in the centre, a hidden goal that pays 1 and sends
    the agent back to the start, episodes of `episode_length` steps; observation the one-hot
    position, or the egocentric `view` x `view` wall window when `view` is given.

    `sample_params(key)` draws the goal uniformly among the cells other than the start;
    `default_params` puts it in the bottom-right corner.
    """

    def __init__(self, size: int = 5, episode_length: int = 20, view: int | None = None):
        if size < 2 or episode_length < 1:
            raise ValueError("size must be at least 2 and episode_length at least 1")
        if view is not None and (view < 1 or view % 2 == 0):
            raise ValueError(f"view must be an odd number of cells (centred on the agent), "
                             f"got {view}")
        self.size = int(size)
        self.episode_length = int(episode_length)
        self.view = None if view is None else int(view)
        self.name = "metarl/GoalGrid"

    @property
    def num_cells(self) -> int:
        return self.size * self.size

    @property
    def start_cell(self) -> int:
        """The cell every episode starts in: the centre (for even sizes, below right of it)."""
        return (self.size // 2) * self.size + self.size // 2

    @property
    def episode_steps(self) -> int:
        """Every episode's length (fixed)."""
        return self.episode_length

    @property
    def default_params(self) -> GoalParams:
        return GoalParams(jnp.asarray(self.num_cells - 1, jnp.int32))

    def sample_params(self, key: jax.Array) -> GoalParams:
        """A task: the goal uniform among the `size² - 1` cells other than the start."""
        # draw among num_cells - 1 indices and skip over the start: uniform, no rejection
        index = jax.random.randint(key, (), 0, self.num_cells - 1, jnp.int32)
        return GoalParams(index + (index >= self.start_cell).astype(jnp.int32))

    def _obs(self, pos: jax.Array) -> jax.Array:
        if self.view is None:
            return jax.nn.one_hot(pos, self.num_cells, dtype=jnp.float32)
        half = self.view // 2
        offsets = jnp.arange(-half, half + 1)
        rows = pos // self.size + offsets[:, None]
        cols = pos % self.size + offsets[None, :]
        outside = (rows < 0) | (rows >= self.size) | (cols < 0) | (cols >= self.size)
        return outside.astype(jnp.float32)

    def reset(self, key: jax.Array, params: GoalParams) -> tuple[jax.Array, GoalGridState]:
        del key, params  # every episode of every task starts on the start cell
        pos = jnp.asarray(self.start_cell, jnp.int32)
        return self._obs(pos), GoalGridState(pos, jnp.zeros((), jnp.int32))

    def step(self, key: jax.Array, state: GoalGridState, action: jax.Array,
             params: GoalParams) -> StepResult:
        return self.step_with_reset(key, state, action, params, self.reset(key, params))

    def step_with_reset(self, key: jax.Array, state: GoalGridState, action: jax.Array,
                        params: GoalParams,
                        reset: tuple[jax.Array, GoalGridState]) -> StepResult:
        """`step`, continuing from `reset` when the episode ends (see `ResetAheadEnv`)."""
        del key  # the dynamics are deterministic
        move = jnp.asarray(MOVES, jnp.int32)[jnp.asarray(action, jnp.int32)]
        row = jnp.clip(state.pos // self.size + move[0], 0, self.size - 1)
        col = jnp.clip(state.pos % self.size + move[1], 0, self.size - 1)
        pos = row * self.size + col
        reached = pos == params.goal
        reward = reached.astype(jnp.float32)
        pos = jnp.where(reached, jnp.asarray(self.start_cell, jnp.int32), pos)
        time = state.time + 1
        truncated = time >= self.episode_length
        final_obs = self._obs(pos)
        obs, new_state = jax.tree.map(lambda r, s: jnp.where(truncated, r, s), reset,
                                      (final_obs, GoalGridState(pos, time)))
        return StepResult(obs, new_state, reward, jnp.zeros((), bool), truncated, final_obs)

    def observation_space(self, params: GoalParams) -> Space:
        if self.view is None:
            return Box(0.0, 1.0, (self.num_cells,))
        return Box(0.0, 1.0, (self.view, self.view))

    def action_space(self, params: GoalParams) -> Space:
        return Discrete(len(MOVES))

    def __repr__(self) -> str:
        return (f"GoalGrid(size={self.size}, episode_length={self.episode_length}, "
                f"view={self.view})")
