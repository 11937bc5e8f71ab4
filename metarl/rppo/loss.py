"""Recurrent PPO's loss on one minibatch of whole sequences: the GRU re-run over each
sequence from its stored initial state (truncated backpropagation through time over the
rollout), then PPO's terms (Schulman et al. 2017): the pluggable policy objective, a clipped
value loss and an entropy bonus."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import jax
import jax.numpy as jnp

from metarl.envs.normalize import RunningStats
from metarl.ppo.config import HParams
from metarl.ppo.loss import LOSS_METRICS
from metarl.ppo.objectives import Objective, ObjectiveInputs
from metarl.ppo.rollout import observe
from metarl.rppo.config import RecurrentPPOConfig
from metarl.rppo.minibatches import Sequences
from metarl.rppo.networks import RecurrentActorCritic

PyTree = Any
Loss = Callable[..., tuple[jax.Array, jax.Array]]

__all__ = ["LOSS_METRICS", "make_loss"]


def make_loss(config: RecurrentPPOConfig, net: RecurrentActorCritic, objective: Objective
              ) -> Loss:
    """`loss(params, minibatch, hidden, stats, progress, hparams, meta_params) -> (loss,
    aux)`: `minibatch` a `Sequences` of `(T, M, ...)` fields, `hidden` the `(M, hidden_size)`
    states the sequences started from; `aux` the `LOSS_METRICS` stacked."""

    def loss(params: PyTree, mb: Sequences, hidden: jax.Array, stats: RunningStats,
             progress: jax.Array, hp: HParams, meta_params: PyTree
             ) -> tuple[jax.Array, jax.Array]:
        # the stored initial state is data: gradients stop at the rollout's start (truncated
        # BPTT), which keeps the cost of a step linear in num_steps
        _, dist, value = net.unroll(params, jax.lax.stop_gradient(hidden),
                                    observe(config, stats, mb.obs), mb.reset)
        log_prob = net.log_prob(dist, mb.action)
        entropy = net.entropy(dist)
        # objectives are written for a flat minibatch of samples (learned ones may stack
        # features on a new last axis), so they see one
        log_ratio = (log_prob - mb.log_prob).reshape(-1)
        ratio = jnp.exp(log_ratio)
        value, old_value, target = (x.reshape(-1) for x in (value, mb.value, mb.target))
        entropy = entropy.reshape(-1)
        v_clipped = old_value + jnp.clip(value - old_value, -hp.clip_eps, hp.clip_eps)
        value_loss = 0.5 * jnp.maximum((value - target) ** 2, (v_clipped - target) ** 2).mean()
        inputs = ObjectiveInputs(ratio, log_ratio, mb.advantage.reshape(-1),
                                 jax.lax.stop_gradient(value - target), entropy, progress,
                                 hp.clip_eps)
        policy_objective = objective(inputs, meta_params).mean()
        total = -policy_objective + hp.vf_coef * value_loss - hp.ent_coef * entropy.mean()
        approx_kl = ((ratio - 1.0) - log_ratio).mean()
        clip_fraction = (jnp.abs(ratio - 1.0) > hp.clip_eps).mean()
        return total, jnp.stack([total, policy_objective, value_loss, entropy.mean(),
                                 approx_kl, clip_fraction])

    return loss
