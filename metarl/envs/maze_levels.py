"""Maze levels: the level pytree, named mazes, maze text and level validation.

A level is what PLR and ACCEL (Jiang et al. 2021; Parker-Holder et al. 2022, "Evolving
Curricula with Regret-Based Environment Design") sample, score, replay and edit. It is the
`params` of `metarl/Maze` (`metarl/envs/maze.py`): a `MazeLevel` of four arrays, so a batch of
levels is one `MazeLevel` with a leading axis, `vmap` runs one level per env, `jnp.where` picks
between two batches, and two levels are the same level exactly when their leaves are equal.

Coordinates follow jaxued's minigrid-style maze (`jaxued.environments.maze`): positions are
`(x, y)` = `(column, row)`, `wall_map[y, x]` is True on a wall, and directions are 0 right,
1 down, 2 left, 3 up. Maze text uses jaxued's characters: `#` wall, `.` free, `G` goal, and
`>` `v` `<` `^` for the agent facing right, down, left, up; rows are lines. Cells outside a
level's text (a level smaller than the env's grid) are walls, as beyond the grid's edge.

Host-side checks here (`parse_level`, `check_level`) use a plain breadth-first search in
numpy, so validating a spec compiles nothing; `metarl.envs.maze_paths` is the JAX version that
runs on batches of levels inside `jit`.
"""

from __future__ import annotations

import difflib
from collections import deque

import jax
import jax.numpy as jnp
import numpy as np
from flax import struct
from jaxued.environments.maze.level import prefabs as JAXUED_PREFABS

from metarl.envs.registry import EnvParamError

# jaxued's direction order; the character drawn for the agent facing each direction
DIRECTION_CHARS = ">v<^"
MAZE_CHARS = "#.G" + DIRECTION_CHARS
MOVES = ((1, 0), (0, 1), (-1, 0), (0, -1))  # (dx, dy) of directions 0..3


class MazeLevelError(EnvParamError):
    """A maze given by name or text that cannot be used; the message names where it came from
    and what is allowed."""


@struct.dataclass
class MazeLevel:
    """One maze level. `wall_map` (size, size) bool; `goal_pos` and `agent_pos` (2,) int32
    as `(x, y)`; `agent_dir` () int32 in 0..3 (right, down, left, up)."""

    wall_map: jax.Array
    goal_pos: jax.Array
    agent_pos: jax.Array
    agent_dir: jax.Array


def make_level(wall_map: np.ndarray, goal_pos: tuple[int, int], agent_pos: tuple[int, int],
               agent_dir: int) -> MazeLevel:
    """A `MazeLevel` with the canonical dtypes (bool walls, int32 everything else)."""
    return MazeLevel(jnp.asarray(wall_map, bool), jnp.asarray(goal_pos, jnp.int32),
                     jnp.asarray(agent_pos, jnp.int32), jnp.asarray(agent_dir, jnp.int32))


# jaxued's 13x13 named mazes (`jaxued.environments.maze.level.prefabs`) that we expose; its
# TrivialMaze* are left out (a few moves, nothing to learn)
JAXUED_MAZE_NAMES = ("SixteenRooms", "SixteenRooms2", "Labyrinth", "LabyrinthFlipped",
                     "Labyrinth2", "StandardMaze", "StandardMaze2", "StandardMaze3")

# metarl's own held-out mazes, 9x9: small enough for an agent trained on a CPU, but every one
# needs real navigation (shortest paths of 12 to 48 moves, docs/mazes.md)
_METARL_MAZES = {
    "TwoRooms9": """
.........
.>.......
.........
.........
####.####
.........
.........
.......G.
.........
""",
    "FourRooms9": """
....#....
.>..#....
.........
....#....
##.###.##
....#....
....#....
....#..G.
....#....
""",
    "Corridor9": """
>........
########.
.........
.########
.........
########.
.........
.########
........G
""",
    "Zigzag9": """
>........
#######..
.........
..#######
.........
#######..
.........
..#######
.......G.
""",
    "Spiral9": """
.........
.#######.
.#.....#.
.#.###.#.
.#.#G#.#.
.#.#.#.#.
.#...#.#.
.#####.#.
>......#.
""",
    "Labyrinth9": """
.........
.#######.
.#.....#.
.#.###.#.
.#.#G..#.
.#.#####.
.#.......
.#######.
>........
""",
}

NAMED_MAZES: dict[str, str] = {
    **{name: JAXUED_PREFABS[name].strip("\n") for name in JAXUED_MAZE_NAMES},
    **{name: text.strip("\n") for name, text in _METARL_MAZES.items()},
}


def _fail(where: str, problem: str) -> MazeLevelError:
    return MazeLevelError(f"{where}: {problem}")


def _rows(text: str, where: str) -> list[str]:
    """The text's rows: blank lines around the maze and spaces around each row dropped."""
    rows = [row.strip() for row in text.strip().splitlines()]
    if not rows or not rows[0]:
        raise _fail(where, "the maze text is empty; give rows of '#' (wall), '.' (free), "
                           "one 'G' (goal) and one agent '>', 'v', '<' or '^'")
    return rows


def _check_characters(rows: list[str], where: str) -> None:
    for y, row in enumerate(rows):
        bad = sorted({c for c in row if c not in MAZE_CHARS})
        if bad:
            raise _fail(where, f"row {y + 1} has the character(s) {', '.join(map(repr, bad))}; "
                               f"allowed: '#' wall, '.' free, 'G' goal, '>' 'v' '<' '^' the "
                               f"agent facing right, down, left, up")
    lengths = [len(row) for row in rows]
    if len(set(lengths)) > 1:
        raise _fail(where, f"rows have different lengths ({', '.join(map(str, lengths))}); "
                           f"every row of a maze must have as many cells as the first")


def _find(rows: list[str], chars: str) -> list[tuple[int, int]]:
    return [(x, y) for y, row in enumerate(rows) for x, c in enumerate(row) if c in chars]


def _check_markers(rows: list[str], where: str) -> None:
    goals, agents = _find(rows, "G"), _find(rows, DIRECTION_CHARS)
    if len(goals) != 1:
        raise _fail(where, f"a maze needs exactly one goal 'G', found {len(goals)}")
    if len(agents) != 1:
        raise _fail(where, f"a maze needs exactly one agent ('>', 'v', '<' or '^': the agent "
                           f"facing right, down, left, up), found {len(agents)}")


def parse_level(text: str, size: int, where: str) -> MazeLevel:
    """The level drawn in `text`, padded with walls to `size` x `size`.

    Raises `MazeLevelError` (a `UserError`) naming `where` for bad characters, ragged rows,
    no or several goals or agents, a maze larger than `size`, or one whose goal cannot be
    reached from the agent's cell.
    """
    rows = _rows(text, where)
    _check_characters(rows, where)
    _check_markers(rows, where)
    height, width = len(rows), len(rows[0])
    if height > size or width > size:
        raise _fail(where, f"the maze is {width} wide and {height} high, larger than the "
                           f"env's size {size}; raise env_kwargs.size or draw a smaller maze")
    walls = np.ones((size, size), bool)
    walls[:height, :width] = np.array([[c == "#" for c in row] for row in rows])
    (gx, gy), (ax, ay) = _find(rows, "G")[0], _find(rows, DIRECTION_CHARS)[0]
    if path_length_np(walls, (ax, ay), (gx, gy)) < 0:
        raise _fail(where, "the goal cannot be reached from the agent's cell (no path of "
                           "free cells); open a wall between them")
    return make_level(walls, (gx, gy), (ax, ay), DIRECTION_CHARS.index(rows[ay][ax]))


def level_from_name_or_text(value: str, size: int, where: str) -> MazeLevel:
    """A named maze (`NAMED_MAZES`) or maze text, as a level of the given `size`."""
    if not isinstance(value, str):
        raise _fail(where, f"expected a named maze or maze text, got {value!r}")
    if value.strip() in NAMED_MAZES:
        return parse_level(NAMED_MAZES[value.strip()], size, where)
    looks_like_text = "\n" in value.strip() or set(value.strip()) <= set(MAZE_CHARS)
    if looks_like_text:
        return parse_level(value, size, where)
    close = difflib.get_close_matches(value.strip(), list(NAMED_MAZES), n=2, cutoff=0.5)
    hint = f" Did you mean {' or '.join(close)}?" if close else ""
    raise _fail(where, f"unknown named maze {value.strip()!r}.{hint} Allowed: maze text (rows "
                       f"of '#', '.', 'G' and one of '>v<^') or one of "
                       f"{', '.join(NAMED_MAZES)}")


def level_to_text(level: MazeLevel) -> str:
    """The maze text of one level (the inverse of `parse_level` at the level's size)."""
    walls = np.asarray(level.wall_map)
    grid = [["#" if w else "." for w in row] for row in walls]
    gx, gy = map(int, np.asarray(level.goal_pos))
    ax, ay = map(int, np.asarray(level.agent_pos))
    grid[gy][gx] = "G"
    grid[ay][ax] = DIRECTION_CHARS[int(level.agent_dir) % 4]
    return "\n".join("".join(row) for row in grid)


def path_length_np(walls: np.ndarray, start: tuple[int, int], goal: tuple[int, int]) -> int:
    """Moves from `start` to `goal` (both `(x, y)`) through free cells by 4-neighbour steps,
    -1 if there is no path; plain breadth-first search on the host."""
    height, width = walls.shape
    dist = {tuple(start): 0}
    queue = deque([tuple(start)])
    while queue:
        x, y = queue.popleft()
        if (x, y) == tuple(goal):
            return dist[(x, y)]
        for dx, dy in MOVES:
            nx, ny = x + dx, y + dy
            if 0 <= nx < width and 0 <= ny < height and not walls[ny, nx] \
                    and (nx, ny) not in dist:
                dist[(nx, ny)] = dist[(x, y)] + 1
                queue.append((nx, ny))
    return -1


def host_level(size: int, n_walls: int, seed: int = 0) -> MazeLevel:
    """A solvable level drawn on the host with numpy, from the same distribution as jaxued's
    generator (`n_walls` wall cells with replacement, then agent, direction and goal uniform
    on free cells), redrawn until solvable: a fixed default level that compiles nothing."""
    rng = np.random.default_rng(seed)
    while True:
        walls = np.zeros(size * size, bool)
        walls[rng.integers(0, size * size, n_walls)] = True
        agent, goal = rng.choice(np.flatnonzero(~walls), 2, replace=False)
        walls = walls.reshape(size, size)
        a, g = (int(agent % size), int(agent // size)), (int(goal % size), int(goal // size))
        if path_length_np(walls, a, g) >= 0:
            return make_level(walls, g, a, int(rng.integers(0, 4)))


def _inside(pos: np.ndarray, shape: tuple[int, ...]) -> bool:
    return bool(0 <= pos[0] < shape[1] and 0 <= pos[1] < shape[0])


def check_level(level: MazeLevel) -> str | None:
    """Why one (unbatched) level is malformed or unsolvable, or None if it is fine.

    Checks shapes and dtypes, that agent and goal lie inside the grid on free cells and
    differ, that the direction is 0..3, and that a path leads from the agent to the goal.
    """
    walls = np.asarray(level.wall_map)
    goal, agent = np.asarray(level.goal_pos), np.asarray(level.agent_pos)
    direction = np.asarray(level.agent_dir)
    if walls.ndim != 2 or walls.shape[0] != walls.shape[1] or walls.dtype != bool:
        return f"wall_map must be a square bool array, got {walls.dtype} {walls.shape}"
    if goal.shape != (2,) or agent.shape != (2,) or direction.shape != ():
        return (f"goal_pos and agent_pos must have shape (2,) and agent_dir shape (), got "
                f"{goal.shape}, {agent.shape}, {direction.shape}")
    for label, pos in (("agent", agent), ("goal", goal)):
        if not _inside(pos, walls.shape):
            return f"the {label} at (x, y) = {tuple(pos.tolist())} is outside the grid"
        if walls[pos[1], pos[0]]:
            return f"the {label} at (x, y) = {tuple(pos.tolist())} is inside a wall"
    if np.array_equal(agent, goal):
        return f"the agent starts on the goal at (x, y) = {tuple(goal.tolist())}"
    if not 0 <= int(direction) < 4:
        return f"agent_dir must be 0..3 (right, down, left, up), got {int(direction)}"
    if path_length_np(walls, tuple(agent.tolist()), tuple(goal.tolist())) < 0:
        return "the goal cannot be reached from the agent's cell"
    return None


def is_well_formed(level: MazeLevel) -> jax.Array:
    """Whether a level's agent and goal are distinct free cells inside the grid and its
    direction is 0..3 (jit- and vmap-able; solvability is `maze_paths.shortest_path`'s).
    jaxued's `Level.is_well_formatted` accepts direction 4; this does not."""
    size_y, size_x = level.wall_map.shape[-2:]

    def free_inside(pos: jax.Array) -> jax.Array:
        inside = (pos[0] >= 0) & (pos[0] < size_x) & (pos[1] >= 0) & (pos[1] < size_y)
        x, y = jnp.clip(pos[0], 0, size_x - 1), jnp.clip(pos[1], 0, size_y - 1)
        return inside & ~level.wall_map[y, x]

    distinct = jnp.any(level.agent_pos != level.goal_pos)
    direction_ok = (level.agent_dir >= 0) & (level.agent_dir < 4)
    return free_inside(level.agent_pos) & free_inside(level.goal_pos) & distinct & direction_ok
