"""The small tanh MLP inside the learned objectives, as plain functions over a dict of arrays.

Parameters are a flat dict `{"w0": (in, h0), "b0": (h0,), ..., "wK": (hK-1, 1), "bK": (1,)}`:
flat string keys keep checkpoints, logging and exported literals readable, and the dict is an
ordinary pytree for evosax. `mlp` is copied verbatim into exported modules (see
`metarl.export`), so it may use nothing but `jnp`.
"""

from __future__ import annotations

import jax
import jax.numpy as jnp


def init_mlp(key: jax.Array, sizes: tuple[int, ...], output_scale: float = 0.0
             ) -> dict[str, jax.Array]:
    """Weights for an MLP with layer widths `sizes` (inputs first, outputs last).

    Hidden layers use LeCun-normal weights so tanh units start in their linear range; the
    output layer is scaled by `output_scale` (default 0: the MLP starts as the zero function,
    which makes every learned objective start from a known rule rather than from noise).
    """
    shapes = list(zip(sizes[:-1], sizes[1:], strict=True))
    # one draw for all layers: on the CPU each distinct random-number shape is a separate
    # (slow) compile, so per-layer draws would multiply the cost of a first `init`
    noise = jax.random.normal(key, (sum(i * o for i, o in shapes),), jnp.float32)
    params, start = {}, 0
    for i, (fan_in, fan_out) in enumerate(shapes):
        scale = output_scale if i == len(shapes) - 1 else 1.0
        w = noise[start:start + fan_in * fan_out].reshape(fan_in, fan_out)
        params[f"w{i}"] = (scale / fan_in ** 0.5) * w
        params[f"b{i}"] = jnp.zeros((fan_out,), jnp.float32)
        start += fan_in * fan_out
    return params


def mlp(params: dict, x: jnp.ndarray) -> jnp.ndarray:
    """A tanh MLP with one output: features `(..., in)` to values `(...)`.

    Annotations say `jnp.ndarray` (an alias of `jax.Array`): this source is copied into
    exported modules, which import only `jax.numpy`.
    """
    n_layers = len(params) // 2
    for i in range(n_layers - 1):
        x = jnp.tanh(x @ params[f"w{i}"] + params[f"b{i}"])
    return (x @ params[f"w{n_layers - 1}"] + params[f"b{n_layers - 1}"])[..., 0]
