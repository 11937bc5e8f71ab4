"""The SGD steps of one recurrent PPO update: one scan over every epoch's minibatches of
sequences."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import jax
import jax.numpy as jnp
import optax
from jax.flatten_util import ravel_pytree

from metarl.rppo.loss import Loss
from metarl.rppo.minibatches import Sequences

PyTree = Any
Epochs = Callable[..., tuple[PyTree, PyTree, jax.Array]]


def make_epochs(loss: Loss, flat: bool) -> Epochs:
    """`epochs(params, opt_state, tx, minibatches, hiddens, *loss_args) -> (params,
    opt_state, aux)`. With `flat` the optimizer sees the weights as one vector (for the
    default, elementwise-after-global-norm Adam that is a few operations per step instead of a
    few per weight array, as in `metarl.ppo.sgd`); otherwise the usual pytree, with OPEN's
    `batch_proportion` passed for learned optimizers that use it."""
    grad = jax.grad(loss, has_aux=True)

    def epochs(params: PyTree, opt_state: PyTree, tx: optax.GradientTransformation,
               minibatches: Sequences, hiddens: jax.Array, *args: Any
               ) -> tuple[PyTree, PyTree, jax.Array]:
        steps = hiddens.shape[0]
        vec, unravel = ravel_pytree(params)

        def sgd_step(carry: tuple, x: tuple) -> tuple[tuple, jax.Array]:
            p, state = carry
            mb, h, i = x
            if flat:
                grads, aux = jax.grad(lambda v: loss(unravel(v), mb, h, *args),
                                      has_aux=True)(p)
                updates, state = tx.update(grads, state, p)
                return (p + updates, state), aux
            grads, aux = grad(p, mb, h, *args)
            updates, state = tx.update(grads, state, p, batch_proportion=i / steps)
            return (optax.apply_updates(p, updates), state), aux

        start = vec if flat else params
        (out, opt_state), aux = jax.lax.scan(sgd_step, (start, opt_state),
                                             (minibatches, hiddens, jnp.arange(steps)))
        return (unravel(out) if flat else out), opt_state, aux

    return epochs
