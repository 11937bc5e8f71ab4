"""Running mean/variance of observations, updated from whole batches (pure functions)."""

from __future__ import annotations

from typing import NamedTuple

import jax
import jax.numpy as jnp


class RunningStats(NamedTuple):
    mean: jax.Array
    var: jax.Array
    count: jax.Array


def init_stats(shape: tuple[int, ...]) -> RunningStats:
    return RunningStats(jnp.zeros(shape), jnp.ones(shape), jnp.asarray(1e-4))


def update_stats(stats: RunningStats, batch: jax.Array) -> RunningStats:
    """Merge a batch `(..., *shape)` into the statistics (Chan et al. parallel variance)."""
    batch = batch.reshape((-1,) + stats.mean.shape)
    n = batch.shape[0]
    b_mean, b_var = batch.mean(0), batch.var(0)
    delta = b_mean - stats.mean
    total = stats.count + n
    mean = stats.mean + delta * n / total
    m2 = stats.var * stats.count + b_var * n + delta**2 * stats.count * n / total
    return RunningStats(mean, m2 / total, total)


def normalize(stats: RunningStats, obs: jax.Array, clip: float = 10.0) -> jax.Array:
    return jnp.clip((obs - stats.mean) / jnp.sqrt(stats.var + 1e-8), -clip, clip)
