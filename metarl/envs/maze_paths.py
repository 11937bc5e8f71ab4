"""Shortest paths in maze levels, in pure JAX (jit- and vmap-able).

Breadth-first search as repeated min-plus relaxation: every free cell's distance becomes the
smallest of its own and its four neighbours' plus one, until nothing changes (at most one
sweep per cell of the grid). A whole batch of levels relaxes at once under `vmap`, which is
how PLR/ACCEL level statistics (Parker-Holder et al. 2022) are computed for every level of a
buffer inside `jit`. Coordinates are jaxued's `(x, y)` (`metarl/envs/maze_levels.py`).
"""

from __future__ import annotations

import jax
import jax.numpy as jnp
from jax import lax

from metarl.envs.maze_levels import MazeLevel

UNREACHED = jnp.iinfo(jnp.int32).max // 2  # larger than any path, safe to add one to


def _relax(dist: jax.Array, walls: jax.Array) -> jax.Array:
    """One sweep: each free cell takes min(own, 4-neighbours + 1); walls stay unreached."""
    padded = jnp.pad(dist, 1, constant_values=UNREACHED)
    neighbours = jnp.minimum(
        jnp.minimum(padded[:-2, 1:-1], padded[2:, 1:-1]),
        jnp.minimum(padded[1:-1, :-2], padded[1:-1, 2:]))
    return jnp.where(walls, UNREACHED, jnp.minimum(dist, neighbours + 1))


def distance_map(wall_map: jax.Array, source: jax.Array) -> jax.Array:
    """Moves from `source` (`(x, y)`) to every cell by 4-neighbour steps through free cells,
    as a `wall_map`-shaped int32 array; -1 where unreachable (walls included)."""
    walls = jnp.asarray(wall_map, bool)
    start = jnp.full(walls.shape, UNREACHED, jnp.int32).at[source[1], source[0]].set(0)
    start = jnp.where(walls, UNREACHED, start)

    def not_settled(carry: tuple[jax.Array, jax.Array, jax.Array]) -> jax.Array:
        _, changed, sweeps = carry
        return changed & (sweeps < walls.size)

    def sweep(carry: tuple[jax.Array, jax.Array, jax.Array]):
        dist, _, sweeps = carry
        new = _relax(dist, walls)
        return new, jnp.any(new != dist), sweeps + 1

    dist, _, _ = lax.while_loop(not_settled, sweep, (start, jnp.asarray(True), 0))
    return jnp.where(dist >= UNREACHED, -1, dist)


def shortest_path(wall_map: jax.Array, start: jax.Array, goal: jax.Array) -> jax.Array:
    """Moves from `start` to `goal` (both `(x, y)`) by 4-neighbour steps through free cells,
    int32; -1 if the goal cannot be reached (or either cell is a wall)."""
    return distance_map(wall_map, start)[goal[1], goal[0]]


def level_stats(level: MazeLevel) -> dict[str, jax.Array]:
    """`wall_count`, `shortest_path` (agent to goal, -1 if unreachable) and `solvable` of one
    `MazeLevel`; `vmap` it for a batch."""
    path = shortest_path(level.wall_map, level.agent_pos, level.goal_pos)
    return {"wall_count": jnp.sum(level.wall_map, dtype=jnp.int32), "shortest_path": path,
            "solvable": path >= 0}
