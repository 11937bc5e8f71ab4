"""What a curriculum draws, edits and describes: a space of levels, where a level is an env's
params pytree.

Two sources: an env that generates its own levels (`sample_params`, optionally
`mutate_params` for ACCEL's edits and `level_stats` for complexity figures, e.g.
`metarl/Maze`), or a task whose `env_params` give ranges (CartPole-style physics): a level is
then one draw of those ranges, and an edit moves one ranged parameter by a tenth of its range
per edit, staying inside it.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING, Any, NamedTuple

import jax
import jax.numpy as jnp

if TYPE_CHECKING:  # the spec package imports this module's section
    from metarl.spec.schema import Range

PyTree = Any


class LevelSpace(NamedTuple):
    generate: Callable[[jax.Array], PyTree]  # key -> level (domain randomisation)
    mutate: Callable[[jax.Array, PyTree, jax.Array], PyTree]  # key, level, num_edits -> level
    stats: Callable[[PyTree], dict[str, jax.Array]]  # level -> complexity figures
    source: str  # what the levels are, for messages and docs


def has_generator(env: Any) -> bool:
    return callable(getattr(env, "sample_params", None))


def env_level_space(env: Any) -> LevelSpace:
    """Levels the env generates itself; without `mutate_params`, an edit draws a new level."""
    mutate = getattr(env, "mutate_params", None)
    if mutate is None:
        def mutate(key: jax.Array, level: PyTree, num_edits: jax.Array) -> PyTree:
            return env.sample_params(key)
    stats = getattr(env, "level_stats", None) or (lambda level: {})
    return LevelSpace(env.sample_params, mutate, stats, f"{env.name}'s level generator")


def range_level_space(default: PyTree, ranges: dict[str, Range],
                      fixed: dict[str, Any]) -> LevelSpace:
    """Levels as draws of `ranges` over the env's `default` params (with `fixed` values)."""
    from metarl.programs.ranges import sample_range

    names = sorted(ranges)
    base = default.replace(**fixed) if fixed else default

    def generate(key: jax.Array) -> PyTree:
        keys = jax.random.split(key, len(names))
        return base.replace(**{n: jnp.asarray(sample_range(k, ranges[n]), jnp.float32)
                               for k, n in zip(keys, names, strict=True)})

    def mutate(key: jax.Array, level: PyTree, num_edits: jax.Array) -> PyTree:
        k_which, k_step = jax.random.split(key)
        which = jax.random.randint(k_which, (), 0, len(names))
        step = jax.random.normal(k_step) * jnp.sqrt(jnp.maximum(num_edits, 0)) / 10
        moved = {}
        for i, n in enumerate(names):
            r = ranges[n]
            value = jnp.asarray(getattr(level, n), jnp.float32)
            new = jnp.clip(value + step * (r.high - r.low), r.low, r.high)
            moved[n] = jnp.where(which == i, new, value)
        return level.replace(**moved)

    def stats(level: PyTree) -> dict[str, jax.Array]:
        return {n: jnp.asarray(getattr(level, n), jnp.float32) for n in names}

    return LevelSpace(generate, mutate, stats, f"the task's env_params ranges ({', '.join(names)})")
