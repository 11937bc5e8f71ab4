"""Recurrent PPO's loss on one minibatch of whole sequences: the GRU re-run over each
sequence from its stored initial state (truncated backpropagation through time over the
rollout), then PPO's terms (Schulman et al. 2017): the pluggable policy objective, a clipped
value loss and an entropy bonus."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import jax

from metarl.envs.normalize import RunningStats
from metarl.ppo.config import HParams
from metarl.ppo.loss import LOSS_METRICS, ppo_terms
from metarl.ppo.objectives import Objective
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
        value, old_value, target = (x.reshape(-1) for x in (value, mb.value, mb.target))
        return ppo_terms(log_ratio, mb.advantage.reshape(-1), value, old_value, target,
                         entropy.reshape(-1), progress, hp, objective, meta_params)

    return loss
