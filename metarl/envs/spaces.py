"""Observation and action space descriptions shared by every environment adapter."""

from __future__ import annotations

from dataclasses import dataclass

import jax
import jax.numpy as jnp
import numpy as np


@dataclass(frozen=True)
class Discrete:
    """`n` actions, numbered 0..n-1."""

    n: int
    shape: tuple[int, ...] = ()
    dtype: str = "int32"

    def sample(self, key: jax.Array) -> jax.Array:
        return jax.random.randint(key, self.shape, 0, self.n)


@dataclass(frozen=True)
class Box:
    """A box of reals; `low`/`high` are broadcastable to `shape` (they may be infinite)."""

    low: float | tuple
    high: float | tuple
    shape: tuple[int, ...]
    dtype: str = "float32"

    def sample(self, key: jax.Array) -> jax.Array:
        low = jnp.broadcast_to(jnp.asarray(self.low, jnp.float32), self.shape)
        high = jnp.broadcast_to(jnp.asarray(self.high, jnp.float32), self.shape)
        finite = jnp.isfinite(low) & jnp.isfinite(high)
        u = jax.random.uniform(key, self.shape, minval=jnp.where(finite, low, -1.0),
                               maxval=jnp.where(finite, high, 1.0))
        return u

    @property
    def size(self) -> int:
        return int(np.prod(self.shape))


Space = Discrete | Box
