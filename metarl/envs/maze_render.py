"""Pictures of maze levels: `level_image` (an RGB array) and `render_levels` (a matplotlib
figure, one panel per level), for curriculum logs (which levels PLR/ACCEL replays) and docs.

Walls are dark, free cells light, the goal green and the agent a red triangle pointing in its
direction (jaxued's and MiniGrid's picture of the agent). Drawn in numpy here: jaxued's
`MazeRenderer` runs on jax 0.10 but draws free cells black and walls grey, and highlights the
agent's view. Figures are `matplotlib.figure.Figure` objects (no pyplot state), so they can be
saved from any thread.
"""

from __future__ import annotations

from collections.abc import Sequence

import jax
import numpy as np
from matplotlib.figure import Figure

from metarl.envs.maze_levels import MazeLevel

WALL = (45, 45, 60)
FREE = (235, 235, 228)
GOAL = (60, 175, 75)
AGENT = (210, 40, 40)
GRID = (200, 200, 192)


def _agent_mask(tile: int, direction: int) -> np.ndarray:
    """A (tile, tile) bool mask of a triangle pointing right, rotated to `direction`
    (0 right, 1 down, 2 left, 3 up; image rows grow downwards)."""
    centre = (np.arange(tile) + 0.5) / tile
    y, x = np.meshgrid(centre, centre, indexing="ij")
    right = (x >= 0.15) & (x <= 0.85) & (np.abs(y - 0.5) <= 0.35 * (0.85 - x) / 0.7)
    return np.rot90(right, k=-direction)  # rot90 turns anticlockwise; down is clockwise


def level_image(level: MazeLevel, tile: int = 12) -> np.ndarray:
    """One (unbatched) level as an RGB image, `(size * tile, size * tile, 3)` uint8."""
    walls = np.asarray(jax.device_get(level.wall_map), bool)
    colours = np.where(walls[..., None], np.array(WALL, np.uint8), np.array(FREE, np.uint8))
    image = np.repeat(np.repeat(colours, tile, axis=0), tile, axis=1)
    image[::tile, :] = np.where(walls.repeat(tile, 1)[:, :, None], image[::tile, :], GRID)
    image[:, ::tile] = np.where(walls.repeat(tile, 0)[:, :, None], image[:, ::tile], GRID)
    gx, gy = (int(v) for v in np.asarray(level.goal_pos))
    image[gy * tile:(gy + 1) * tile, gx * tile:(gx + 1) * tile] = GOAL
    ax, ay = (int(v) for v in np.asarray(level.agent_pos))
    cell = image[ay * tile:(ay + 1) * tile, ax * tile:(ax + 1) * tile]
    cell[_agent_mask(tile, int(level.agent_dir) % 4)] = AGENT
    return image


def _unbatch(levels: MazeLevel | Sequence[MazeLevel]) -> list[MazeLevel]:
    if isinstance(levels, MazeLevel):
        if np.ndim(levels.wall_map) == 2:
            return [levels]
        return [jax.tree.map(lambda x, i=i: x[i], levels) for i in range(len(levels.wall_map))]
    return list(levels)


def render_levels(levels: MazeLevel | Sequence[MazeLevel], titles: Sequence[str] | None = None,
                  columns: int = 4, panel_inches: float = 2.2) -> Figure:
    """A figure of the levels (a batched `MazeLevel`, one level, or a list), `columns` panels
    per row, each titled by `titles` when given."""
    panels = _unbatch(levels)
    if titles is not None and len(titles) != len(panels):
        raise ValueError(f"{len(titles)} titles for {len(panels)} levels")
    columns = max(1, min(columns, len(panels)))
    rows = max(1, -(-len(panels) // columns))
    fig = Figure(figsize=(panel_inches * columns, panel_inches * rows + 0.3 * rows))
    for i, level in enumerate(panels):
        ax = fig.add_subplot(rows, columns, i + 1)
        ax.imshow(level_image(level), interpolation="nearest")
        ax.set_xticks([])
        ax.set_yticks([])
        if titles is not None:
            ax.set_title(titles[i], fontsize=9)
    fig.tight_layout()
    return fig
