"""The SGD steps of one PPO update: one scan over every epoch's minibatches."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import jax
import jax.numpy as jnp
import optax
from jax.flatten_util import ravel_pytree

from metarl.ppo.loss import Loss

PyTree = Any
Epochs = Callable[..., tuple[PyTree, PyTree, jax.Array]]


def make_epochs(loss: Loss, unroll: int, flat: bool,
                extra_args: Callable[..., dict[str, Any]] | None = None) -> Epochs:
    """`epochs(params, opt_state, tx, minibatches, *loss_args) -> (params, opt_state, aux)`,
    `aux` the loss's per-step aux stacked. With `flat`, the weights are one vector for the
    optimizer: for an elementwise optimizer (Adam after a global-norm clip) that is a handful
    of operations per SGD step instead of a handful per weight array. `extra_args(params,
    minibatch, *loss_args)` gives further keyword arguments of the optimizer's `update` (e.g.
    OPEN's dormancy), for the pytree path."""
    grad = jax.grad(loss, has_aux=True)

    def flat_loss(flat_params: jax.Array, unravel: Callable, *args: Any) -> tuple:
        return loss(unravel(flat_params), *args)

    flat_grad = jax.grad(flat_loss, has_aux=True)

    def flat_epochs(params: PyTree, opt_state: PyTree, tx: optax.GradientTransformation,
                    minibatches: jax.Array, *args: Any) -> tuple[PyTree, PyTree, jax.Array]:
        flat_params, unravel = ravel_pytree(params)

        def sgd_step(carry: tuple, mb: jax.Array) -> tuple[tuple, jax.Array]:
            vec, state = carry
            grads, aux = flat_grad(vec, unravel, mb, *args)
            updates, state = tx.update(grads, state, vec)
            return (vec + updates, state), aux

        (flat_params, opt_state), aux = jax.lax.scan(sgd_step, (flat_params, opt_state),
                                                     minibatches, unroll=unroll)
        return unravel(flat_params), opt_state, aux

    def tree_epochs(params: PyTree, opt_state: PyTree, tx: optax.GradientTransformation,
                    minibatches: jax.Array, *args: Any) -> tuple[PyTree, PyTree, jax.Array]:
        steps = minibatches.shape[0]

        def sgd_step(carry: tuple, step: tuple[jax.Array, jax.Array]
                     ) -> tuple[tuple, jax.Array]:
            p, state = carry
            mb, i = step
            grads, aux = grad(p, mb, *args)
            # how far through this update's SGD steps: OPEN's batch proportion (an optimizer
            # that takes no extra arguments ignores it)
            extra = extra_args(p, mb, *args) if extra_args is not None else {}
            updates, state = tx.update(grads, state, p, batch_proportion=i / steps, **extra)
            return (optax.apply_updates(p, updates), state), aux

        (params, opt_state), aux = jax.lax.scan(
            sgd_step, (params, opt_state), (minibatches, jnp.arange(steps)), unroll=unroll)
        return params, opt_state, aux

    return flat_epochs if flat else tree_epochs
