"""PPO's loss on one minibatch: the policy objective (pluggable), a clipped value loss and an
entropy bonus (Schulman et al. 2017)."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import jax
import jax.numpy as jnp

from metarl.envs.normalize import RunningStats
from metarl.ppo.config import HParams, PPOConfig
from metarl.ppo.minibatches import Columns
from metarl.ppo.networks import ActorCritic
from metarl.ppo.objectives import Objective, ObjectiveInputs
from metarl.ppo.rollout import observe

PyTree = Any
Loss = Callable[..., tuple[jax.Array, jax.Array]]

LOSS_METRICS = ("loss", "policy_objective", "value_loss", "entropy", "approx_kl",
                "clip_fraction")


def make_loss(config: PPOConfig, net: ActorCritic, objective: Objective, cols: Columns,
              obs_shape: tuple[int, ...]) -> Loss:
    """`loss(params, minibatch, stats, progress, hparams, meta_params) -> (loss, aux)`, `aux`
    the `LOSS_METRICS` stacked; `progress` is the fraction of training done (for temporally
    aware objectives)."""

    def loss(params: PyTree, mb: jax.Array, stats: RunningStats, progress: jax.Array,
             hp: HParams, meta_params: PyTree) -> tuple[jax.Array, jax.Array]:
        obs = mb[:, cols.obs].reshape((mb.shape[0],) + obs_shape)
        action = cols.action(mb, net.discrete)
        old_log_prob, old_value = mb[:, cols.log_prob], mb[:, cols.value]
        adv, target = mb[:, cols.advantage], mb[:, cols.target]  # adv: normalised already
        dist, value = net.apply(params, observe(config, stats, obs))
        log_ratio = net.log_prob(dist, action) - old_log_prob
        return ppo_terms(log_ratio, adv, value, old_value, target, net.entropy(dist), progress,
                         hp, objective, meta_params)

    return loss


def ppo_terms(log_ratio: jax.Array, adv: jax.Array, value: jax.Array, old_value: jax.Array,
              target: jax.Array, entropy: jax.Array, progress: jax.Array, hp: HParams,
              objective: Objective, meta_params: PyTree) -> tuple[jax.Array, jax.Array]:
    """PPO's loss from per-sample quantities (flat): the policy objective, the clipped value
    loss and the entropy bonus, and the `LOSS_METRICS` stacked. Shared by every PPO variant."""
    ratio = jnp.exp(log_ratio)
    v_clipped = old_value + jnp.clip(value - old_value, -hp.clip_eps, hp.clip_eps)
    value_loss = 0.5 * jnp.maximum((value - target) ** 2, (v_clipped - target) ** 2).mean()
    inputs = ObjectiveInputs(ratio, log_ratio, adv, jax.lax.stop_gradient(value - target),
                             entropy, progress, hp.clip_eps)
    policy_objective = objective(inputs, meta_params).mean()
    total = -policy_objective + hp.vf_coef * value_loss - hp.ent_coef * entropy.mean()
    approx_kl = ((ratio - 1.0) - log_ratio).mean()
    clip_fraction = (jnp.abs(ratio - 1.0) > hp.clip_eps).mean()
    return total, jnp.stack([total, policy_objective, value_loss, entropy.mean(), approx_kl,
                             clip_fraction])
