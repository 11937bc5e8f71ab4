"""Actor-critic MLPs as plain pytrees of weights (easy to vmap, inspect and export)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np
from jax.custom_batching import custom_vmap

from metarl.envs.spaces import Box, Discrete, Space
from metarl.ppo import distributions as D

Params = dict[str, Any]

ACTIVATIONS = {"tanh": jnp.tanh, "relu": jax.nn.relu}


def orthogonal(key: jax.Array, shape: tuple[int, int], scale: float) -> jax.Array:
    """`jax.nn.initializers.orthogonal(scale)`, safe to `vmap` on the CPU.

    Under `vmap` (over seeds, population members) the initializer's QR decomposition becomes one
    batched LAPACK call, and concurrent batched LAPACK calls can deadlock XLA's CPU thread pool
    (seen with jaxlib 0.10 on 2 cores: the run hangs in `block_until_ready`). Batched keys are
    therefore mapped one at a time with `lax.map`; the values are the same either way.
    """
    init = jax.nn.initializers.orthogonal(scale)

    @custom_vmap
    def one(k: jax.Array) -> jax.Array:
        return init(k, shape, jnp.float32)

    @one.def_vmap
    def _batched(axis_size: int, in_batched: list[bool], k: jax.Array) -> tuple[jax.Array, bool]:
        del axis_size, in_batched
        return jax.lax.map(one, k), True

    return one(key)


def _dense(key: jax.Array, n_in: int, n_out: int, scale: float) -> dict[str, jax.Array]:
    return {"w": orthogonal(key, (n_in, n_out), scale), "b": jnp.zeros((n_out,), jnp.float32)}


def mlp_init(key: jax.Array, sizes: tuple[int, ...], head_scale: float) -> list[dict]:
    keys = jax.random.split(key, len(sizes) - 1)
    layers = []
    for i, (k, n_in, n_out) in enumerate(zip(keys, sizes[:-1], sizes[1:], strict=True)):
        last = i == len(sizes) - 2
        layers.append(_dense(k, n_in, n_out, head_scale if last else float(np.sqrt(2))))
    return layers


def mlp_apply(layers: list[dict], x: jax.Array, activation: str) -> jax.Array:
    act = ACTIVATIONS[activation]
    for layer in layers[:-1]:
        x = act(x @ layer["w"] + layer["b"])
    return x @ layers[-1]["w"] + layers[-1]["b"]


@dataclass(frozen=True)
class ActorCritic:
    """Separate actor and critic MLPs (PureJaxRL's layout: orthogonal init, a 0.01-scaled
    policy head); a categorical policy for `Discrete` actions, a diagonal Gaussian with
    state-independent log-std for `Box` actions."""

    obs_size: int
    action_space: Space
    hidden_sizes: tuple[int, ...] = (64, 64)
    activation: str = "tanh"
    obs_ndim: int = 1  # trailing axes of one observation, flattened for the MLP

    @property
    def discrete(self) -> bool:
        return isinstance(self.action_space, Discrete)

    @property
    def action_dim(self) -> int:
        if isinstance(self.action_space, Discrete):
            return self.action_space.n
        assert isinstance(self.action_space, Box)
        return self.action_space.size

    def init(self, key: jax.Array) -> Params:
        k_actor, k_critic = jax.random.split(key)
        params: Params = {
            "actor": mlp_init(k_actor, (self.obs_size, *self.hidden_sizes, self.action_dim),
                              0.01),
            "critic": mlp_init(k_critic, (self.obs_size, *self.hidden_sizes, 1), 1.0),
        }
        if not self.discrete:
            params["log_std"] = jnp.zeros((self.action_dim,), jnp.float32)
        return params

    def apply(self, params: Params, obs: jax.Array) -> tuple[Any, jax.Array]:
        """(distribution parameters, value) for a batch of observations."""
        x = obs.reshape(obs.shape[: obs.ndim - self.obs_ndim] + (self.obs_size,))
        x = x.astype(jnp.float32)
        head = mlp_apply(params["actor"], x, self.activation)
        value = mlp_apply(params["critic"], x, self.activation)[..., 0]
        dist = head if self.discrete else (head, params["log_std"])
        return dist, value

    def policy(self, params: Params, obs: jax.Array) -> Any:
        """The action distribution's parameters alone (the actor's forward pass)."""
        x = obs.reshape(obs.shape[: obs.ndim - self.obs_ndim] + (self.obs_size,))
        head = mlp_apply(params["actor"], x.astype(jnp.float32), self.activation)
        return head if self.discrete else (head, params["log_std"])

    def value(self, params: Params, obs: jax.Array) -> jax.Array:
        x = obs.reshape(obs.shape[: obs.ndim - self.obs_ndim] + (self.obs_size,))
        return mlp_apply(params["critic"], x.astype(jnp.float32), self.activation)[..., 0]

    def sample(self, key: jax.Array, dist: Any) -> jax.Array:
        if self.discrete:
            return D.categorical_sample(key, dist)
        return D.gaussian_sample(key, *dist)

    @property
    def noise_words(self) -> int:
        """Random 32-bit words `noise_from_bits` needs per sample."""
        return self.action_dim

    def noise_from_bits(self, bits: jax.Array) -> jax.Array:
        """Noise for `sample_with_noise` from uint32 words `(..., noise_words)`, so that a whole
        rollout's noise comes out of one bulk random-number call, and its transcendental
        functions run as one vectorised operation, instead of once per step: a standard
        Gumbel per category, a standard normal per Gaussian dimension."""
        u = ((bits >> 8).astype(jnp.float32) + 0.5) * (2.0**-24)  # open interval (0, 1)
        if self.discrete:
            return -jnp.log(-jnp.log(u))
        return jnp.sqrt(2.0).astype(jnp.float32) * jax.lax.erf_inv(2.0 * u - 1.0)

    def sample_with_noise(self, dist: Any, noise: jax.Array) -> jax.Array:
        """A sample of `dist` given `noise_from_bits`: Gumbel-max for categoricals (one fused
        add-and-argmax per step, no softmax), reparameterised Gaussians."""
        if self.discrete:
            return jnp.argmax(dist + noise, -1).astype(jnp.int32)
        mean, log_std = dist
        return mean + jnp.exp(log_std) * noise

    def log_prob(self, dist: Any, action: jax.Array) -> jax.Array:
        if self.discrete:
            return D.categorical_log_prob(dist, action)
        return D.gaussian_log_prob(*dist, action)

    def entropy(self, dist: Any) -> jax.Array:
        if self.discrete:
            return D.categorical_entropy(dist)
        return D.gaussian_entropy(*dist)

    def env_action(self, action: jax.Array) -> jax.Array:
        """The action as the environment takes it: Gaussian samples are clipped to the box."""
        if self.discrete:
            return action
        assert isinstance(self.action_space, Box)
        return jnp.clip(action, jnp.asarray(self.action_space.low),
                        jnp.asarray(self.action_space.high))


def make_actor_critic(obs_space: Space, action_space: Space, hidden_sizes: tuple[int, ...],
                      activation: str) -> ActorCritic:
    shape = obs_space.shape
    return ActorCritic(int(np.prod(shape)) if shape else 1, action_space, tuple(hidden_sizes),
                       activation, obs_ndim=len(shape))
