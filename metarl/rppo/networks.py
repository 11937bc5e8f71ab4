"""A GRU actor-critic as a plain pytree of weights: a dense embedding of the observation, a
GRU cell (Cho et al. 2014, "Learning Phrase Representations using RNN Encoder-Decoder for
Statistical Machine Translation") and separate actor and critic heads on its state. The
layout follows PureJaxRL's recurrent PPO (Lu et al. 2022)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np

from metarl.envs.spaces import Space
from metarl.ppo.networks import ACTIVATIONS, ActorCritic, mlp_apply

Params = dict[str, Any]



def variance_scaling(key: jax.Array, shape: tuple[int, int], gain: float) -> jax.Array:
    """Normal weights of variance `gain**2 / fan_in`. Not orthogonal: under `vmap` the
    orthogonal initialiser's batched QR can deadlock XLA's CPU thread pool (see
    `metarl.ppo.networks.orthogonal`); a scaled normal keeps the same gains, needs no
    decomposition, and the GRU's recurrent matrix trains fine from it."""
    return jax.nn.initializers.variance_scaling(gain**2, "fan_in", "normal")(
        key, shape, jnp.float32)


def _dense(key: jax.Array, n_in: int, n_out: int, gain: float) -> dict[str, jax.Array]:
    return {"w": variance_scaling(key, (n_in, n_out), gain),
            "b": jnp.zeros((n_out,), jnp.float32)}


def _layers(key: jax.Array, sizes: tuple[int, ...], last_gain: float) -> list[dict]:
    keys = jax.random.split(key, max(len(sizes) - 1, 1))
    n = len(sizes) - 1
    return [_dense(k, a, b, last_gain if i == n - 1 else float(np.sqrt(2)))
            for i, (k, a, b) in enumerate(zip(keys, sizes[:-1], sizes[1:], strict=False))]


def gru_init(key: jax.Array, n_in: int, hidden: int) -> dict[str, jax.Array]:
    """Weights of `gru_cell`, the three gates (reset r, update z, candidate n) side by side
    so that each step is two matrix products."""
    k_in, k_h = jax.random.split(key)
    return {"wi": variance_scaling(k_in, (n_in, 3 * hidden), 1.0),
            "wh": variance_scaling(k_h, (hidden, 3 * hidden), 1.0),
            "b": jnp.zeros((3 * hidden,), jnp.float32),
            "bhn": jnp.zeros((hidden,), jnp.float32)}


def gru_cell(params: dict[str, jax.Array], hidden: jax.Array, x_proj: jax.Array) -> jax.Array:
    """One GRU step (Cho et al. 2014) given `x_proj = x @ wi + b`, the input's share of all
    three gates (computed for a whole sequence at once outside the time loop):

        r = sigmoid(x W_r + h U_r),  z = sigmoid(x W_z + h U_z)
        n = tanh(x W_n + r * (h U_n + b_hn)),  h' = (1 - z) * n + z * h

    The reset gate multiplies `h U_n` rather than `h` (the cuDNN / flax form) so that the
    three recurrent products are one matrix product."""
    size = hidden.shape[-1]
    hp = hidden @ params["wh"]
    r = jax.nn.sigmoid(x_proj[..., :size] + hp[..., :size])
    z = jax.nn.sigmoid(x_proj[..., size:2 * size] + hp[..., size:2 * size])
    n = jnp.tanh(x_proj[..., 2 * size:] + r * (hp[..., 2 * size:] + params["bhn"]))
    return (1.0 - z) * n + z * hidden


@dataclass(frozen=True)
class RecurrentActorCritic:
    """obs -> dense embedding -> GRU -> (actor head, critic head). A categorical policy for
    `Discrete` actions, a diagonal Gaussian with state-independent log-std for `Box` actions
    (the action distributions are `metarl.ppo.networks.ActorCritic`'s)."""

    obs_size: int
    action_space: Space
    hidden_size: int = 64
    embed_sizes: tuple[int, ...] = (64,)
    head_sizes: tuple[int, ...] = (64,)
    activation: str = "tanh"
    obs_ndim: int = 1  # trailing axes of one observation, flattened

    @property
    def dists(self) -> ActorCritic:
        """The feed-forward net of the same action space, for its distribution functions."""
        return ActorCritic(self.obs_size, self.action_space)

    @property
    def discrete(self) -> bool:
        return self.dists.discrete

    @property
    def action_dim(self) -> int:
        return self.dists.action_dim

    def init(self, key: jax.Array) -> Params:
        k_embed, k_gru, k_actor, k_critic = jax.random.split(key, 4)
        embed = (self.obs_size, *self.embed_sizes)
        params: Params = {
            # the embedding's last layer is a hidden layer too (activation after it)
            "embed": _layers(k_embed, embed, float(np.sqrt(2))) if self.embed_sizes else [],
            "gru": gru_init(k_gru, embed[-1], self.hidden_size),
            "actor": _layers(k_actor, (self.hidden_size, *self.head_sizes, self.action_dim),
                             0.01),
            "critic": _layers(k_critic, (self.hidden_size, *self.head_sizes, 1), 1.0),
        }
        if not self.discrete:
            params["log_std"] = jnp.zeros((self.action_dim,), jnp.float32)
        return params

    def initial_hidden(self, batch: int) -> jax.Array:
        """`(batch, hidden_size)` zeros: the state of a fresh episode."""
        return jnp.zeros((batch, self.hidden_size), jnp.float32)

    def gru_inputs(self, params: Params, obs: jax.Array) -> jax.Array:
        """The embedding and the GRU's input projection, for any leading axes."""
        x = obs.reshape(obs.shape[: obs.ndim - self.obs_ndim] + (self.obs_size,))
        x = x.astype(jnp.float32)
        act = ACTIVATIONS[self.activation]
        for layer in params["embed"]:
            x = act(x @ layer["w"] + layer["b"])
        return x @ params["gru"]["wi"] + params["gru"]["b"]

    def heads(self, params: Params, hidden: jax.Array) -> tuple[Any, jax.Array]:
        """(distribution parameters, value) from GRU states, for any leading axes."""
        head = mlp_apply(params["actor"], hidden, self.activation)
        value = mlp_apply(params["critic"], hidden, self.activation)[..., 0]
        return (head if self.discrete else (head, params["log_std"])), value

    def apply(self, params: Params, hidden: jax.Array, obs: jax.Array, reset: jax.Array
              ) -> tuple[jax.Array, Any, jax.Array]:
        """One step for a batch: `(hidden', dist_params, value)`. The state restarts from
        zeros where `reset` (`hidden.shape[:-1]`, bool) is true: the previous step ended an
        episode, so what came before must not leak into this one."""
        hidden = jnp.where(reset[..., None], 0.0, hidden)
        hidden = gru_cell(params["gru"], hidden, self.gru_inputs(params, obs))
        dist, value = self.heads(params, hidden)
        return hidden, dist, value

    def hiddens(self, params: Params, hidden: jax.Array, obs: jax.Array, reset: jax.Array
                ) -> jax.Array:
        """The GRU state after every step of a `(T, B, ...)` sequence started from `hidden`
        `(B, hidden_size)`, restarting from zeros before step t where `reset[t]`: `(T, B,
        hidden_size)`. Only the cell runs in the time loop; the embedding runs for all steps
        at once before it."""
        x_proj = self.gru_inputs(params, obs)

        def step(h: jax.Array, x: tuple[jax.Array, jax.Array]) -> tuple[jax.Array, jax.Array]:
            xp, r = x
            h = gru_cell(params["gru"], jnp.where(r[..., None], 0.0, h), xp)
            return h, h

        return jax.lax.scan(step, hidden, (x_proj, reset))[1]

    def unroll(self, params: Params, hidden: jax.Array, obs: jax.Array, reset: jax.Array
               ) -> tuple[jax.Array, Any, jax.Array]:
        """`apply` scanned over time: `(T, B, ...)` observations and `(T, B)` resets ->
        `(last hidden, dist_params (T, B, ...), value (T, B))`. The heads run on all steps at
        once after the loop."""
        hs = self.hiddens(params, hidden, obs, reset)
        dist, value = self.heads(params, hs)
        return hs[-1], dist, value

    # -- action distributions (the feed-forward net's) ---------------------------------------
    @property
    def noise_words(self) -> int:
        return self.dists.noise_words

    def noise_from_bits(self, bits: jax.Array) -> jax.Array:
        return self.dists.noise_from_bits(bits)

    def sample_with_noise(self, dist: Any, noise: jax.Array) -> jax.Array:
        return self.dists.sample_with_noise(dist, noise)

    def log_prob(self, dist: Any, action: jax.Array) -> jax.Array:
        return self.dists.log_prob(dist, action)

    def entropy(self, dist: Any) -> jax.Array:
        return self.dists.entropy(dist)

    def env_action(self, action: jax.Array) -> jax.Array:
        return self.dists.env_action(action)


def make_recurrent_actor_critic(obs_space: Space, action_space: Space, hidden_size: int,
                                embed_sizes: tuple[int, ...], head_sizes: tuple[int, ...],
                                activation: str) -> RecurrentActorCritic:
    shape = obs_space.shape
    return RecurrentActorCritic(int(np.prod(shape)) if shape else 1, action_space,
                                int(hidden_size), tuple(embed_sizes), tuple(head_sizes),
                                activation, obs_ndim=len(shape))
