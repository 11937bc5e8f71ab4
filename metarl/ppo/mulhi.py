"""A lowering of `lax.mulhi` (the high half of a 32x32-bit product) from 16-bit halves.

The Philox PRNG that `metarl.ppo.train` uses for speed is built on `mulhi`, and jaxlib 0.10
cannot lower that primitive inside a partitioned program (`shard_map` over population members,
or sharding annotations): compilation fails with "failed to legalize operation 'mhlo.unknown'".
Computed from 16-bit halves with plain uint32 multiplies and shifts, the result is bit-for-bit
the same, lowers everywhere, and XLA fuses the dozen integer ops into the surrounding kernel.
"""

from __future__ import annotations

import jax
import jax.numpy as jnp
from jax.interpreters import mlir

_LOW16 = 0xFFFF


def mulhi_from_halves(x: jax.Array, y: jax.Array) -> jax.Array:
    """`(x * y) >> 32` for uint32 `x`, `y`, without 64-bit arithmetic."""
    m = jnp.uint32(_LOW16)
    xl, xh = x & m, x >> 16
    yl, yh = y & m, y >> 16
    ll, lh, hl, hh = xl * yl, xl * yh, xh * yl, xh * yh
    carry = ((ll >> 16) + (lh & m) + (hl & m)) >> 16
    return hh + (lh >> 16) + (hl >> 16) + carry


def register_portable_mulhi() -> None:
    """Make every later compilation lower `mulhi` through `mulhi_from_halves`."""
    from jax._src.lax.lax import mulhi_p

    mlir.register_lowering(mulhi_p, mlir.lower_fun(mulhi_from_halves, multiple_results=False))
