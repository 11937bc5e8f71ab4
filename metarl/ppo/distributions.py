"""The two action distributions PPO needs, as plain functions of their parameters."""

from __future__ import annotations

import math

import jax
import jax.numpy as jnp


def categorical_sample(key: jax.Array, logits: jax.Array) -> jax.Array:
    return jax.random.categorical(key, logits)


def categorical_log_prob(logits: jax.Array, action: jax.Array) -> jax.Array:
    log_p = jax.nn.log_softmax(logits)
    return jnp.take_along_axis(log_p, action[..., None].astype(jnp.int32), -1)[..., 0]


def categorical_entropy(logits: jax.Array) -> jax.Array:
    log_p = jax.nn.log_softmax(logits)
    return -jnp.sum(jnp.exp(log_p) * log_p, -1)


_HALF_LOG_2PI = 0.5 * math.log(2 * math.pi)


def gaussian_sample(key: jax.Array, mean: jax.Array, log_std: jax.Array) -> jax.Array:
    return mean + jnp.exp(log_std) * jax.random.normal(key, mean.shape)


def gaussian_log_prob(mean: jax.Array, log_std: jax.Array, action: jax.Array) -> jax.Array:
    z = (action - mean) * jnp.exp(-log_std)
    return jnp.sum(-0.5 * z**2 - log_std - _HALF_LOG_2PI, -1)


def gaussian_entropy(mean: jax.Array, log_std: jax.Array) -> jax.Array:
    return jnp.sum(jnp.broadcast_to(log_std + 0.5 + _HALF_LOG_2PI, mean.shape), -1)
