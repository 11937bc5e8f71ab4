"""A spec `Range` as numbers: the one map from a quantile in [0, 1] to a value of the range,
used to sample env params, to decode searched hyperparameters and to log them."""

from __future__ import annotations

from typing import Any

import jax
import jax.numpy as jnp
import numpy as np

from metarl.spec.schema import Range


def range_value(u: Any, r: Range, xp: Any = jnp) -> Any:
    """The value at quantile `u` of `r` (log-uniform when `r.log`), in float32; `xp` is
    `jnp` inside programs and `np` on the host, where a JAX call would queue behind the
    generation already running."""
    if r.log:
        lo, hi = xp.log(xp.float32(r.low)), xp.log(xp.float32(r.high))
        return xp.exp(lo + u * (hi - lo))
    return xp.float32(r.low) + u * xp.float32(r.high - r.low)


def sample_range(key: jax.Array, r: Range) -> jax.Array:
    """One draw from `r`."""
    return range_value(jax.random.uniform(key), r)


def unit_to_range(z: Any, r: Range, xp: Any = jnp) -> Any:
    """An unconstrained real `z` mapped onto `r` through a sigmoid: ES moves freely in `z`."""
    if xp is np:
        z = np.asarray(z, np.float32)
        u = (np.float32(1) / (np.float32(1) + np.exp(-z))).astype(np.float32)
        return np.asarray(range_value(u, r, np), np.float32)
    return range_value(jax.nn.sigmoid(z), r)
