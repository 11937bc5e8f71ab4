"""The optimizer slot of PPO: Adam with annealing by default, any optax transformation, or one
built from traced hyperparameters and meta-parameters (a learned optimizer)."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import jax
import optax

from metarl.ppo.config import HParams, PPOConfig

PyTree = Any
OptimizerArg = (optax.GradientTransformation
                | Callable[[HParams, PyTree], optax.GradientTransformation] | None)
OptimizerFactory = Callable[[HParams, PyTree], optax.GradientTransformation]


def default_optimizer(config: PPOConfig, hparams: HParams) -> optax.GradientTransformation:
    """Adam with PureJaxRL's linear learning-rate annealing to zero."""
    steps_per_update = config.update_epochs * config.num_minibatches

    def schedule(count: jax.Array) -> jax.Array:
        frac = 1.0 - (count // steps_per_update) / config.num_updates
        return hparams.lr * frac

    return optax.adam(schedule if config.anneal_lr else hparams.lr, eps=1e-5)


def optimizer_factory(config: PPOConfig, optimizer: OptimizerArg) -> OptimizerFactory:
    """`(hparams, meta_params) -> transformation`, rebuilt from the hyperparameters a state
    carries, so they may change between updates; gradients are clipped to
    `hparams.max_grad_norm` first whatever the optimizer."""

    def build(hp: HParams, meta_params: PyTree) -> optax.GradientTransformation:
        if optimizer is None:
            inner = default_optimizer(config, hp)
        elif isinstance(optimizer, optax.GradientTransformation):
            inner = optimizer
        else:
            inner = optimizer(hp, meta_params)
        return optax.chain(optax.clip_by_global_norm(hp.max_grad_norm), inner)

    return build
