"""The per-parameter inputs shared by the learned optimizers: momenta, Adam's direction and
features normalised per tensor.

Both optimizers keep the same statistics Adam keeps (plus momenta at further decay rates), so
Adam's own step is available to them as a skip connection: with the learned parts at zero they
are Adam (see `docs/learned-optimizers.md`). Everything here is elementwise over one tensor and
applied to a whole pytree with `jax.tree.map`.
"""

from __future__ import annotations

from typing import Any, NamedTuple

import jax
import jax.numpy as jnp
import optax

PyTree = Any
NUM_SHAPE_FEATURES = 2  # see `shape_features`


class Moments(NamedTuple):
    """Momenta at each of `decays` (the first is Adam's b1) and Adam's second moment."""

    count: jax.Array
    momenta: tuple[PyTree, ...]
    nu: PyTree


def init_moments(params: PyTree, num_decays: int) -> Moments:
    zeros = lambda: jax.tree.map(jnp.zeros_like, params)  # noqa: E731
    return Moments(jnp.zeros([], jnp.int32), tuple(zeros() for _ in range(num_decays)), zeros())


def update_moments(grads: PyTree, moments: Moments, decays: tuple[float, ...], b2: float
                   ) -> Moments:
    """One step of every moving average, written as optax writes Adam's so that the skip
    connection reproduces `optax.adam` to rounding."""
    momenta = tuple(optax.tree.update_moment(grads, m, d, 1) for d, m in
                    zip(decays, moments.momenta, strict=True))
    nu = optax.tree.update_moment_per_elem_norm(grads, moments.nu, b2, 2)
    return Moments(optax.safe_int32_increment(moments.count), momenta, nu)


def adam_direction(moments: Moments, b1: float, b2: float, eps: float, eps_root: float
                   ) -> PyTree:
    """Adam's bias-corrected m_hat / (sqrt(v_hat + eps_root) + eps) (Kingma & Ba 2015);
    the update is this times -learning_rate. `eps_root > 0` keeps meta-gradients finite
    where a gradient is exactly zero for every step."""
    mu_hat = optax.tree.bias_correction(moments.momenta[0], b1, moments.count)
    nu_hat = optax.tree.bias_correction(moments.nu, b2, moments.count)
    return jax.tree.map(lambda m, v: m / (jnp.sqrt(v + eps_root) + eps), mu_hat, nu_hat)


def num_tensor_features(num_momenta: int) -> int:
    """How many features `tensor_features` gives for `num_momenta` momenta."""
    return 3 + 2 * num_momenta


def normalise(features: jax.Array) -> jax.Array:
    """Each feature (last axis) divided by its root mean square over the tensor, as in Metz et
    al. 2022, so one network serves tensors and tasks of any gradient scale."""
    axes = tuple(range(features.ndim - 1))
    return features * jax.lax.rsqrt(jnp.mean(features ** 2, axis=axes, keepdims=True) + 1e-12)


def tensor_features(grad: jax.Array, param: jax.Array, momenta: tuple[jax.Array, ...],
                    nu: jax.Array, eps: float) -> jax.Array:
    """Normalised per-parameter features `(*param.shape, num_tensor_features(k))` for k
    momenta: gradient, parameter value, momenta, second-moment RMS and each momentum over
    that RMS."""
    rms = jnp.sqrt(nu + 1e-30)  # the offset keeps the derivative finite where nu is 0
    ratios = [m / (rms + eps) for m in momenta]
    return normalise(jnp.stack([grad, param, *momenta, rms, *ratios], axis=-1))


def shape_features(param: jax.Array) -> list[jax.Array]:
    """The tensor's log size and rank, scaled to order one: the same rule may treat a bias
    and a weight matrix differently."""
    return [jnp.log(jnp.float32(max(param.size, 1))) / 10.0, jnp.float32(param.ndim) / 4.0]


def broadcast_features(per_param: jax.Array, scalars: list[jax.Array]) -> jax.Array:
    """Appends scalars (per tensor or per element of the same shape) to the feature axis."""
    shape = per_param.shape[:-1]
    extra = [jnp.broadcast_to(jnp.asarray(s, per_param.dtype), shape) for s in scalars]
    return jnp.concatenate([per_param, jnp.stack(extra, axis=-1)], axis=-1)


def leaf_indices(tree: PyTree) -> PyTree:
    """The position of each leaf in flattening order, as a tree of ints of the same shape."""
    leaves, treedef = jax.tree.flatten(tree)
    return jax.tree.unflatten(treedef, range(len(leaves)))


def progress(count: jax.Array, total_steps: int | None, extra_args: dict) -> jax.Array:
    """Training progress in [0, 1]: the caller's `progress` extra argument when passed (e.g. by
    an RL loop that knows its budget), else the step count over `total_steps`, else 0."""
    if "progress" in extra_args:
        return jnp.asarray(extra_args["progress"], jnp.float32)
    if total_steps is None:
        return jnp.zeros([], jnp.float32)
    return jnp.clip(count.astype(jnp.float32) / total_steps, 0.0, 1.0)


def dense_apply(params: dict, x: jax.Array, num_layers: int) -> jax.Array:
    """A tanh MLP in `metarl.learned.mlp`'s weight layout, keeping every output unit."""
    for i in range(num_layers - 1):
        x = jnp.tanh(x @ params[f"w{i}"] + params[f"b{i}"])
    return x @ params[f"w{num_layers - 1}"] + params[f"b{num_layers - 1}"]


def statistics(grads: PyTree, moments: Moments, decays: tuple[float, ...], b2: float,
               eps: float, eps_root: float, total_steps: int | None, extra_args: dict
               ) -> tuple[Moments, PyTree, jax.Array]:
    """What both optimizers compute first at every step: the updated moments, Adam's
    direction from them, and training progress."""
    moments = update_moments(grads, moments, decays, b2)
    adam = adam_direction(moments, decays[0], b2, eps, eps_root)
    return moments, adam, progress(moments.count, total_steps, extra_args)


def learned_step(adam: jax.Array, out: jax.Array, learning_rate: float | jax.Array,
                 magnitude_scale: float) -> jax.Array:
    """The output form both optimizers share (Metz et al. 2022's direction x exp(magnitude),
    with Adam's direction as a skip connection): `-lr * (adam + d) * exp(scale * m)` for
    `out[..., 0] = d`, `out[..., 1] = m`; Adam's step exactly when both are 0."""
    return -learning_rate * (adam + out[..., 0]) * jnp.exp(magnitude_scale * out[..., 1])
