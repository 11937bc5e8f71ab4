"""`metarl/Maze`: a partially observed maze whose level is the env's params, for PLR and ACCEL.

The dynamics, observation and reward are jaxued's minigrid-style maze
(`jaxued.environments.maze.Maze`, after MiniGrid, Chevalier-Boisvert et al. 2018): the agent
turns left, turns right or moves one cell forward; walls and the goal block the move; bumping
into the goal (moving forward while facing it) pays `1 - 0.9 * t / max_steps` at step `t` of
the episode and ends it (terminal), and an episode that reaches `max_steps` is truncated. The
level (walls, goal, start cell and direction) is a `MazeLevel` pytree in `params`, so every
env of a batch can play its own level, as PLR (Jiang et al. 2021) and ACCEL (Parker-Holder et
al. 2022, "Evolving Curricula with Regret-Based Environment Design") need: `sample_params` is
jaxued's procedural generator (domain randomisation), `mutate_params` ACCEL's edits.

Automatic reset returns to the start of the *same* level (the `params` given to `step`), never
a random one: which level comes next is the curriculum's decision.

Observation: a flat float32 vector, the object channel of jaxued's egocentric `view` x `view`
image flattened, then a one-hot of the direction. The image covers the agent's cell, the
`view - 1` cells ahead and `view // 2` to each side; cells hold jaxued's object index divided
by 10 (empty 0.1, wall 0.2, goal 0.8; outside the grid reads as wall). jaxued indexes it
`[side, depth]`: `[view // 2, view - 1]` is the agent's own cell, `[view // 2, view - 2]` the
cell ahead, `[0, :]` the leftmost column of cells and `[:, 0]` the farthest row.
jaxued's colour and state channels are left out: in this maze they are fixed by the object
type. Docs: docs/mazes.md.
"""

from __future__ import annotations

from functools import cached_property
from typing import TYPE_CHECKING

import jax
import jax.numpy as jnp
from jaxued.environments.maze import Level as JaxuedLevel
from jaxued.environments.maze import Maze as JaxuedMaze
from jaxued.environments.maze import make_level_generator, make_level_mutator
from jaxued.environments.maze.env import EnvParams as JaxuedParams
from jaxued.environments.maze.env import EnvState as MazeState

from metarl.envs import maze_paths
from metarl.envs.env import StepResult
from metarl.envs.maze_levels import (
    MazeLevel,
    host_level,
    level_from_name_or_text,
    make_level,
)
from metarl.envs.registry import EnvParamError
from metarl.envs.spaces import Box, Discrete, Space

if TYPE_CHECKING:  # matplotlib loads when a picture is drawn
    from matplotlib.figure import Figure

# jaxued's Actions enum has 7 members (minigrid's pickup, drop, toggle, done too); in its maze
# only the first three do anything, so the action space is those three
NUM_ACTIONS = 3  # 0 turn left, 1 turn right, 2 forward
MAX_EDITS = 20  # the static bound on `mutate_params`'s num_edits (ACCEL edits 20 at most)
_WHERE = "metarl/Maze env_kwargs.level"

# the dtypes jaxued's reset gives its state; its step returns some fields as other integer
# types (agent_dir becomes int32), which a `lax.scan` carry may not do
_STATE_DTYPES = {"agent_pos": jnp.uint32, "agent_dir": jnp.uint8, "goal_pos": jnp.uint32,
                 "wall_map": jnp.bool_, "maze_map": jnp.uint8, "time": jnp.int32,
                 "terminal": jnp.bool_}


def solved(reward: jax.Array) -> jax.Array:
    """Whether a step's reward ends an episode with a solve. Only reaching the goal pays, and
    always more than 0 (`1 - 0.9 * t / max_steps >= 0.1`), so a solve is `reward > 0`."""
    return jnp.asarray(reward) > 0


def to_jaxued(level: MazeLevel) -> JaxuedLevel:
    """jaxued's `Level` of one of our levels (the whole square grid is the level)."""
    height, width = level.wall_map.shape[-2:]
    return JaxuedLevel(level.wall_map, level.goal_pos.astype(jnp.uint32),
                       level.agent_pos.astype(jnp.uint32), level.agent_dir.astype(jnp.uint8),
                       width, height)


def from_jaxued(level: JaxuedLevel) -> MazeLevel:
    """Our `MazeLevel` of a jaxued `Level` (its width and height fields are dropped)."""
    return make_level(level.wall_map, level.goal_pos, level.agent_pos, level.agent_dir)


def _canonical(state: MazeState) -> MazeState:
    return state.replace(**{name: jnp.asarray(getattr(state, name), dtype)
                            for name, dtype in _STATE_DTYPES.items()})


def _check_int(name: str, value: object, low: int, high: int | None = None,
               odd: bool = False, why: str = "") -> int:
    ok = isinstance(value, int) and not isinstance(value, bool) and value >= low \
        and (high is None or value <= high) and (not odd or value % 2 == 1)
    if not ok:
        bound = f"in [{low}, {high}]" if high is not None else f"at least {low}"
        kind = "an odd integer" if odd else "an integer"
        raise EnvParamError(f"metarl/Maze env_kwargs.{name} must be {kind} {bound}{why}, "
                            f"got {value!r}")
    return int(value)


class Maze:
    """A `size` x `size` maze with per-env levels as params (see the module docstring).

    `size`: the grid's side; smaller levels are padded with walls, larger ones refused.
    `n_walls`: walls placed by `sample_params` (drawn with replacement, so at most that many).
    `view`: the side of the egocentric view (odd). `max_steps`: the episode's time limit.
    `level`: a named maze (`metarl.envs.maze_levels.NAMED_MAZES`) or maze text, used as
    `default_params`; without it the default is a fixed solvable random level.
    """

    name = "metarl/Maze"

    def __init__(self, size: int = 13, n_walls: int = 25, view: int = 5, max_steps: int = 250,
                 level: str | None = None):
        self.size = _check_int("size", size, 3)
        self.n_walls = _check_int("n_walls", n_walls, 0, self.size * self.size - 2,
                                  why=f" (a {self.size}x{self.size} grid keeps 2 cells free for "
                                      f"the agent and the goal)")
        self.view = _check_int("view", view, 3, odd=True)
        self.max_steps = _check_int("max_steps", max_steps, 1)
        self.level = level
        self._level = None if level is None else level_from_name_or_text(level, self.size,
                                                                          _WHERE)
        self._maze = JaxuedMaze(max_height=self.size, max_width=self.size,
                                agent_view_size=self.view, normalize_obs=True)
        self._maze_params = JaxuedParams(max_steps_in_episode=self.max_steps)
        self._generate = make_level_generator(self.size, self.size, self.n_walls)
        self._mutate = make_level_mutator(MAX_EDITS)

    @property
    def episode_steps(self) -> int:
        """The longest episode (truncation); episodes that reach the goal end earlier."""
        return self.max_steps

    @cached_property
    def default_params(self) -> MazeLevel:
        """The `level` given, else a fixed solvable level of the generator's distribution
        (`maze_levels.host_level(size, n_walls, seed=0)`, drawn with numpy: nothing to
        compile when a spec is checked)."""
        return self._level if self._level is not None else host_level(self.size, self.n_walls)

    def sample_params(self, key: jax.Array) -> MazeLevel:
        """A procedurally generated level (jaxued's `make_level_generator`: `n_walls` wall
        cells drawn with replacement, then the agent's cell, direction and the goal's cell
        uniformly among the free cells). It may be unsolvable, as in PLR's maze
        generator; `level_stats(level)["solvable"]` tells."""
        return from_jaxued(self._generate(key))

    def mutate_params(self, key: jax.Array, level: MazeLevel,
                      num_edits: jax.Array | int) -> MazeLevel:
        """ACCEL's edit of a level (jaxued's `make_level_mutator`): up to `num_edits` distinct
        cells (at most `MAX_EDITS`; may be traced) each get one of: add a wall, remove a
        wall, move the agent there (new random direction), move the goal there. An agent or
        goal walled in is moved to a random free cell, so the result is always well formed
        (distinct free cells inside the grid). 0 edits return the level unchanged. The result
        may be unsolvable; `level_stats` tells."""
        num_edits = jnp.clip(jnp.asarray(num_edits, jnp.int32), 0, MAX_EDITS)
        return from_jaxued(self._mutate(key, to_jaxued(level), num_edits))

    def level_stats(self, level: MazeLevel) -> dict[str, jax.Array]:
        """`wall_count` (every wall cell of the grid, padding included), `shortest_path`
        (4-neighbour moves from agent to goal, -1 if unreachable) and `solvable`."""
        return maze_paths.level_stats(level)

    @staticmethod
    def solved(reward: jax.Array) -> jax.Array:
        """Whether a step's reward ends an episode with a solve (`reward > 0`, see the
        module-level `solved`); curriculum loops score solve rates with it."""
        return solved(reward)

    def named_level(self, value: str, where: str) -> MazeLevel:
        """A named maze or maze text as a level of this env's size; a `MazeLevelError`
        naming `where` if it cannot be used (e.g. a task's `eval_levels[0]`)."""
        return level_from_name_or_text(value, self.size, where)

    def render_levels(self, levels: MazeLevel, titles: list[str] | None = None) -> Figure:
        """A matplotlib figure of the levels (`metarl.envs.maze_render.render_levels`)."""
        from metarl.envs.maze_render import render_levels

        return render_levels(levels, titles)

    def _obs(self, state: MazeState) -> jax.Array:
        image = self._maze.get_obs(state).image[..., 0].reshape(-1)
        direction = jax.nn.one_hot(state.agent_dir, 4, dtype=jnp.float32)
        return jnp.concatenate([image.astype(jnp.float32), direction])

    def reset(self, key: jax.Array, params: MazeLevel) -> tuple[jax.Array, MazeState]:
        """The start of `params`'s level: its start cell and direction, time 0."""
        del key  # a level has one start state
        state = _canonical(self._maze.init_state_from_level(to_jaxued(params)))
        return self._obs(state), state

    def step(self, key: jax.Array, state: MazeState, action: jax.Array,
             params: MazeLevel) -> StepResult:
        """One move; an ended episode restarts at the start of the same level `params`."""
        return self.step_with_reset(key, state, action, params, self.reset(key, params))

    def step_with_reset(self, key: jax.Array, state: MazeState, action: jax.Array,
                        params: MazeLevel, reset: tuple[jax.Array, MazeState]) -> StepResult:
        """`step`, continuing from `reset` when the episode ends (see `ResetAheadEnv`)."""
        _, nxt, reward, _, _ = self._maze.step_env(key, state, jnp.asarray(action, jnp.int32),
                                                   self._maze_params)
        nxt = _canonical(nxt)
        terminated = solved(reward)
        truncated = (nxt.time >= self.max_steps) & ~terminated
        final_obs = self._obs(nxt)
        obs, new_state = jax.tree.map(lambda r, s: jnp.where(terminated | truncated, r, s),
                                      reset, (final_obs, nxt))
        return StepResult(obs, new_state, reward.astype(jnp.float32), terminated, truncated,
                          final_obs)

    def observation_space(self, params: MazeLevel) -> Space:
        return Box(0.0, 1.0, (self.view * self.view + 4,))

    def action_space(self, params: MazeLevel) -> Space:
        return Discrete(NUM_ACTIONS)

    def __repr__(self) -> str:
        return (f"Maze(size={self.size}, n_walls={self.n_walls}, view={self.view}, "
                f"max_steps={self.max_steps}, level={self.level!r})")
