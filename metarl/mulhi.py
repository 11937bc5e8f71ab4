"""A lowering of `lax.mulhi` (the high half of a 32x32-bit product) from 16-bit halves.

The Philox PRNG that `metarl.ppo.rollout` uses for the env-step keys is built on `mulhi`, and
jax/jaxlib 0.10.2 still cannot compile that primitive inside a partitioned program (`shard_map`
over population members, or sharding annotations): jax lowers it to `chlo.mulhi`, which the
partitioner does not legalize, and compilation fails with "failed to legalize operation
'mhlo.unknown'" / "Unable to convert MHLO to StableHLO" (re-checked 2026-12 with a jitted
2-device `shard_map` drawing from a `philox2x32` key: fails as is, compiles and matches the
unsharded draw bit for bit with this lowering; tests/test_philox_sharded.py keeps checking).
Computed from 16-bit halves with plain uint32 multiplies and shifts, the result is bit-for-bit
the same, lowers everywhere, and XLA fuses the dozen integer ops into the surrounding kernel.

A lowering rule is process-wide state, so nothing here runs at import: the sharding code
(`metarl.outer.sharding.shard_over_population`) calls `use_portable_mulhi()` just before it
builds a sharded program, and a program that builds its own sharded computations over Philox
keys calls it itself. Unsharded programs compiled before that keep jax's own lowering, which
gives the same numbers at the same speed (`benchmarks/mulhi_lowering.py`: 0.98-0.99x).
"""

from __future__ import annotations

import jax
import jax.numpy as jnp
from jax.interpreters import mlir

_LOW16 = 0xFFFF

_registered = False


def mulhi_from_halves(x: jax.Array, y: jax.Array) -> jax.Array:
    """`(x * y) >> 32` for uint32 `x`, `y`, without 64-bit arithmetic."""
    m = jnp.uint32(_LOW16)
    xl, xh = x & m, x >> 16
    yl, yh = y & m, y >> 16
    ll, lh, hl, hh = xl * yl, xl * yh, xh * yl, xh * yh
    carry = ((ll >> 16) + (lh & m) + (hl & m)) >> 16
    return hh + (lh >> 16) + (hl >> 16) + carry


def use_portable_mulhi() -> None:
    """Lower `lax.mulhi` through `mulhi_from_halves` in every compilation from now on.

    Needed before compiling a sharded program that draws from Philox keys (see the module
    docstring); harmless elsewhere, since the numbers are the same. Idempotent. Programs
    compiled before the call keep jax's own lowering (jit caches what it compiled)."""
    global _registered
    if _registered:
        return
    # `jax.lax.mulhi_p` and `jax.interpreters.mlir.register_lowering` are the public names
    # jax documents for primitives and their lowerings (no `jax._src`). Registered for every
    # platform: the failure is measured on the CPU only, and elsewhere the rule costs nothing
    mlir.register_lowering(jax.lax.mulhi_p,
                           mlir.lower_fun(mulhi_from_halves, multiple_results=False))
    _registered = True
