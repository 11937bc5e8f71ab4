"""PPO's training rows: one packed array per rollout, shuffled into the minibatches of every
epoch at once and scanned as one flat sequence of SGD steps."""

from __future__ import annotations

import jax
import jax.numpy as jnp

from metarl.ppo.config import PPOConfig


class Columns:
    """Column layout of the packed training rows: obs | action | log-prob, value, advantage,
    target (one array, so that one gather shuffles every field)."""

    def __init__(self, obs_size: int, act_width: int):
        self.obs = slice(0, obs_size)
        self._action = slice(obs_size, obs_size + act_width)
        c = obs_size + act_width
        self.log_prob, self.value, self.advantage, self.target = c, c + 1, c + 2, c + 3

    def action(self, rows: jax.Array, discrete: bool) -> jax.Array:
        a = rows[..., self._action]
        return a[..., 0].astype(jnp.int32) if discrete else a


def shuffle_words(n: int, size: int) -> tuple[int, ...]:
    """Shape of the uint32 words `shuffles` needs for `n` permutations of `range(size)`."""
    index_bits = max(1, (size - 1).bit_length())
    if size & (size - 1) == 0:
        return (n, 3, 2)
    return (n, size) if index_bits <= 12 else (2,)


def shuffles(bits: jax.Array, n: int, size: int) -> jax.Array:
    """`n` independent random permutations of `range(size)`, shape `(n, size)`, from uint32
    words of shape `shuffle_words(n, size)`.

    A sort-based shuffle costs ~0.5 ms per update on the CPU (XLA's sort calls a comparator per
    comparison), a tenth of a whole PPO update here. For power-of-two sizes (the usual batch
    shapes) the permutation is instead a keyed bijection of the indices: three rounds of
    (odd multiply + add) mod size and an xor-shift, each invertible. It is not uniform over all
    size! permutations, but the statistics minibatching relies on are: every index is used
    exactly once per epoch, and the chance that two indices share a minibatch is the uniform
    one whatever their distance in time or env (checked empirically). Other sizes get a sort
    of one packed int32 per index (random high bits, index low bits: ~3x cheaper than sorting
    keys and values), and large ones `jax.random.permutation`.
    """
    index_bits = max(1, (size - 1).bit_length())
    if size & (size - 1) == 0:
        mask = jnp.uint32(size - 1)
        x = jnp.broadcast_to(jnp.arange(size, dtype=jnp.uint32), (n, size))
        for r in range(3):
            x = (x * (bits[:, r, 0:1] | 1) + bits[:, r, 1:2]) & mask
            x = x ^ (x >> ((index_bits + 1) // 2))
        return x.astype(jnp.int32)
    if index_bits > 12:
        key = jax.random.wrap_key_data(bits, impl="threefry2x32")
        return jax.vmap(lambda k: jax.random.permutation(k, size))(jax.random.split(key, n))
    high = (bits >> (index_bits + 1)).astype(jnp.int32)
    packed = (high << index_bits) | jnp.arange(size, dtype=jnp.int32)
    return jax.lax.sort(packed, dimension=1) & ((1 << index_bits) - 1)


def training_rows(obs: jax.Array, action: jax.Array, log_prob: jax.Array, value: jax.Array,
                  advantage: jax.Array, act_width: int) -> jax.Array:
    """`(batch, columns)` rows of a `(time, env)` rollout, laid out as `Columns` says; `obs`
    is already flat per step."""
    n_steps, n_envs = value.shape
    rows = jnp.concatenate([
        obs, action.reshape(n_steps, n_envs, act_width).astype(jnp.float32),
        jnp.stack([log_prob, value, advantage, advantage + value], -1)], -1)
    return rows.reshape(n_steps * n_envs, -1)


def epoch_minibatches(rows: jax.Array, perm_bits: jax.Array, config: PPOConfig,
                      cols: Columns) -> jax.Array:
    """`(epochs * minibatches, minibatch_size, columns)`: every epoch's shuffle gathered at
    once, with advantages normalised per minibatch (PPO's usual) here rather than inside each
    SGD step, since they do not depend on the weights."""
    perms = shuffles(perm_bits, config.update_epochs, config.batch_size)
    minibatches = rows[perms.reshape(-1)].reshape(
        config.update_epochs * config.num_minibatches, config.minibatch_size, -1)
    adv = minibatches[..., cols.advantage]
    adv = (adv - adv.mean(1, keepdims=True)) / (adv.std(1, keepdims=True) + 1e-8)
    return minibatches.at[..., cols.advantage].set(adv)
