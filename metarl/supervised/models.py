"""The inner problems' networks as pure `init(key) -> params` / `apply(params, x) -> outputs`
pairs over flat dicts of arrays (`w0`, `b0`, ...; `c0`, `cb0`, ... for convolutions), so
parameters are ordinary pytrees for learned optimizers, `vmap` and meta-gradients.

Weights are variance-scaling normal (LeCun for tanh, He for relu/gelu), never orthogonal: a
batched QR under `vmap` can deadlock XLA's CPU thread pool (see `metarl.ppo.networks`).
"""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import Any, NamedTuple

import jax
import jax.numpy as jnp

Params = dict[str, jax.Array]
ACTIVATIONS: dict[str, Callable[[jax.Array], jax.Array]] = {
    "tanh": jnp.tanh, "relu": jax.nn.relu, "gelu": jax.nn.gelu}


class Model(NamedTuple):
    init: Callable[[jax.Array], Params]
    apply: Callable[[Params, jax.Array], jax.Array]


def _gain(activation: str) -> float:
    # He et al. 2015 for rectifiers (gelu is close enough), LeCun et al. 1998 for tanh
    return 1.0 if activation == "tanh" else 2.0


def _normal(key: jax.Array, shape: tuple[int, ...], fan_in: int, gain: float) -> jax.Array:
    return jnp.sqrt(gain / fan_in) * jax.random.normal(key, shape, jnp.float32)


def _dense_init(keys: jax.Array, sizes: tuple[int, ...], activation: str, start: int = 0
                ) -> Params:
    params = {}
    for i, (n_in, n_out) in enumerate(zip(sizes[:-1], sizes[1:], strict=True)):
        last = i == len(sizes) - 2
        # the output layer gets gain 1: logits of order one, whatever the activation
        gain = 1.0 if last else _gain(activation)
        params[f"w{i}"] = _normal(keys[start + i], (n_in, n_out), n_in, gain)
        params[f"b{i}"] = jnp.zeros((n_out,), jnp.float32)
    return params


def _dense_apply(params: Params, x: jax.Array, num_layers: int, activation: str) -> jax.Array:
    act = ACTIVATIONS[activation]
    for i in range(num_layers):
        x = x @ params[f"w{i}"] + params[f"b{i}"]
        if i < num_layers - 1:
            x = act(x)
    return x


def mlp(input_shape: tuple[int, ...], hidden_sizes: tuple[int, ...], num_outputs: int,
        activation: str = "relu") -> Model:
    """A multilayer perceptron on the flattened input."""
    sizes = (math.prod(input_shape), *hidden_sizes, num_outputs)
    num_layers = len(sizes) - 1

    def init(key: jax.Array) -> Params:
        return _dense_init(jax.random.split(key, num_layers), sizes, activation)

    def apply(params: Params, x: jax.Array) -> jax.Array:
        x = x.reshape(x.shape[: x.ndim - len(input_shape)] + (sizes[0],))
        return _dense_apply(params, x, num_layers, activation)

    return Model(init, apply)


def cnn(input_shape: tuple[int, ...], channels: tuple[int, ...], hidden_sizes: tuple[int, ...],
        num_outputs: int, activation: str = "relu") -> Model:
    """Convolutions with stride 2 and 'SAME' padding (3x3 kernels on images `(H, W, C)`, width
    5 on sequences `(L, C)`), each followed by the activation, then an MLP head on the
    flattened features. Inputs are `(batch, *input_shape)`."""
    spatial = input_shape[:-1]
    kernel = (3,) * len(spatial) if len(spatial) == 2 else (5,)
    dims = ("NHWC", "HWIO", "NHWC") if len(spatial) == 2 else ("NWC", "WIO", "NWC")
    chans = (input_shape[-1], *channels)
    out_spatial = spatial
    for _ in channels:
        out_spatial = tuple(-(-s // 2) for s in out_spatial)
    sizes = (math.prod(out_spatial) * chans[-1], *hidden_sizes, num_outputs)
    num_dense = len(sizes) - 1
    act = ACTIVATIONS[activation]

    def init(key: jax.Array) -> Params:
        keys = jax.random.split(key, len(channels) + num_dense)
        params = _dense_init(keys, sizes, activation, start=len(channels))
        for i, (c_in, c_out) in enumerate(zip(chans[:-1], chans[1:], strict=True)):
            fan_in = math.prod(kernel) * c_in
            params[f"c{i}"] = _normal(keys[i], (*kernel, c_in, c_out), fan_in, _gain(activation))
            params[f"cb{i}"] = jnp.zeros((c_out,), jnp.float32)
        return params

    def apply(params: Params, x: jax.Array) -> jax.Array:
        batch = x.shape[: x.ndim - len(input_shape)]
        x = x.reshape((-1, *input_shape))
        for i in range(len(channels)):
            x = jax.lax.conv_general_dilated(x, params[f"c{i}"], (2,) * len(spatial), "SAME",
                                             dimension_numbers=dims)
            x = act(x + params[f"cb{i}"])
        x = x.reshape(batch + (sizes[0],))
        return _dense_apply(params, x, num_dense, activation)

    return Model(init, apply)


def quadratic_point(dim: int) -> Model:
    """The quadratic family's "model": the point `x` itself, started at `N(0, I)`; `apply`
    returns it (the loss lives with the data, see `metarl.supervised.data.quadratic`)."""

    def init(key: jax.Array) -> Params:
        return {"x": jax.random.normal(key, (dim,), jnp.float32)}

    def apply(params: Params, x: Any = None) -> jax.Array:
        del x
        return params["x"]

    return Model(init, apply)
