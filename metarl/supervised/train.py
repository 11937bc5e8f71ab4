"""The supervised inner loop in pieces, with the protocol of `metarl.ppo.PPO`: `init`,
`update` (one optimizer step on one minibatch), `step` (K updates, scanned), `train` (init +
every update), `score` and `meta_objective`.

Following `learned_optimization`'s `TruncatedStep` (Metz et al. 2022), the run is a pure
function of a state pytree: the datasets are compile-time constants, minibatches are drawn with
`jax.random` inside the program, and the learning rate and the optimizer's meta-parameters are
traced, so a run can be `jit`-ed, `vmap`-ed over seeds and meta-parameters, paused and resumed,
and differentiated through (meta-gradients).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, NamedTuple

import jax
import jax.numpy as jnp
import optax

from metarl.errors import UserError
from metarl.supervised import data as datasets
from metarl.supervised import models
from metarl.supervised.config import SupervisedHParams
from metarl.supervised.families import TaskConfig

PyTree = Any
OptimizerArg = (optax.GradientTransformation
                | Callable[[SupervisedHParams, PyTree], optax.GradientTransformation] | None)
INITIAL_LOSS_EXAMPLES = 2048
# a run whose loss passes this multiple of its initial loss (or is NaN) scores as if it stopped
# there: divergence ranks badly without putting an inf or NaN into a search's fitness
DIVERGED = 10.0


class SupervisedState(NamedTuple):
    params: PyTree
    opt_state: PyTree
    key: jax.Array
    update: jax.Array
    hparams: SupervisedHParams  # traced: may change between updates
    initial_loss: jax.Array  # of the initial params, on the first 2048 training examples


@dataclass(frozen=True)
class SupervisedConfig:
    num_updates: int
    batch_size: int


def log_improvement(loss: jax.Array, initial_loss: jax.Array) -> jax.Array:
    """`log(initial_loss) - log(loss)`, with the loss capped at `DIVERGED * initial_loss` and a
    NaN taken as that cap, so the score is finite whatever the run did."""
    cap = DIVERGED * initial_loss
    loss = jnp.where(jnp.isnan(loss), cap, jnp.minimum(loss, cap))
    # floor: a loss of exactly 0 (a memorised minibatch) must not score +inf
    return jnp.log(initial_loss) - jnp.log(jnp.maximum(loss, 1e-30))


class Supervised:
    """Trains the network of `task` with `optimizer` for `num_updates` minibatch steps.

    `optimizer`: `None` (`optax.adam(hparams.lr)`), an `optax.GradientTransformation`, or a
    function `(hparams, meta_params) -> GradientTransformation` rebuilt in every `init` and
    `update` from the state's traced hyperparameters (a learned optimizer, e.g.
    `make_learned_optimizer(name, meta, learning_rate=hp.lr, total_steps=num_updates)`). It is
    called as `tx.update(grads, opt_state, params)`, so optimizers that read the parameters
    work. Classification minimises softmax cross-entropy, regression the mean squared error,
    the quadratic family its quadratic.
    """

    default_env_params = None

    def __init__(self, task: TaskConfig, num_updates: int, optimizer: OptimizerArg = None):
        if isinstance(num_updates, bool) or not isinstance(num_updates, int) or num_updates < 1:
            raise UserError(f"num_updates = {num_updates!r} must be an integer >= 1")
        self.task = task
        self.config = SupervisedConfig(num_updates, task.batch_size)
        self._optimizer = optimizer
        self.a: jax.Array | None = None
        if task.dataset == "quadratic":
            problem = datasets.quadratic(task.dim, task.condition, task.noise, task.data_seed)
            self.a, data = jnp.asarray(problem.a), problem.data
        else:
            data = datasets.load(task.dataset, task.data_seed)
        if task.batch_size > len(data.x_train):
            raise UserError(f"batch_size = {task.batch_size} is larger than the "
                            f"{len(data.x_train)} training examples of {task.dataset!r}")
        self.x_train, self.y_train, self.x_test, self.y_test = (jnp.asarray(a) for a in data)
        self.model = self._model(task, data)

    @staticmethod
    def _model(task: TaskConfig, data: datasets.Dataset) -> models.Model:
        if task.model == "quadratic":
            return models.quadratic_point(task.dim)
        shape = data.x_train.shape[1:]
        outputs = datasets.NUM_CLASSES.get(task.dataset, data.y_train.shape[-1])
        if task.model == "cnn":
            return models.cnn(shape, task.channels, task.hidden_sizes, outputs, task.activation)
        return models.mlp(shape, task.hidden_sizes, outputs, task.activation)

    # -- the pieces -------------------------------------------------------------------------
    def loss(self, params: PyTree, x: jax.Array, y: jax.Array) -> jax.Array:
        """The task's mean loss on the examples `(x, y)`."""
        if self.a is not None:  # x holds noisy targets of the quadratic
            d = self.model.apply(params, None) - x
            return 0.5 * jnp.mean(jnp.sum((d @ self.a) * d, axis=-1))
        out = self.model.apply(params, x)
        if self.task.dataset in datasets.NUM_CLASSES:
            return jnp.mean(optax.softmax_cross_entropy_with_integer_labels(out, y))
        return jnp.mean((out - y) ** 2)

    def optimizer(self, hp: SupervisedHParams, meta_params: PyTree
                  ) -> optax.GradientTransformation:
        """The transformation for these traced hyperparameters and meta-parameters."""
        if self._optimizer is None:
            return optax.adam(hp.lr)
        if isinstance(self._optimizer, optax.GradientTransformation):
            return self._optimizer
        return self._optimizer(hp, meta_params)

    def init(self, key: jax.Array, meta_params: PyTree = None,
             hparams: SupervisedHParams | None = None, env_params: PyTree = None
             ) -> SupervisedState:
        """Fresh weights and optimizer state; `env_params` is accepted for the protocol and
        unused (a supervised task has no env)."""
        del env_params
        hp = (SupervisedHParams() if hparams is None else hparams).as_arrays()
        key, k_init = jax.random.split(key)
        params = self.model.init(k_init)
        n = INITIAL_LOSS_EXAMPLES
        initial = self.loss(params, self.x_train[:n], self.y_train[:n])
        return SupervisedState(params, self.optimizer(hp, meta_params).init(params), key,
                               jnp.zeros((), jnp.int32), hp, initial)

    def _minibatch(self, key: jax.Array, x: jax.Array, y: jax.Array
                   ) -> tuple[jax.Array, jax.Array]:
        # with replacement: a permutation of the whole set per step costs more than the step
        idx = jax.random.randint(key, (self.config.batch_size,), 0, x.shape[0])
        return x[idx], y[idx]

    def update(self, state: SupervisedState, meta_params: PyTree = None
               ) -> tuple[SupervisedState, dict[str, jax.Array]]:
        """One optimizer step on one training minibatch; metrics are that minibatch's loss
        before the step and its score (`log_improvement` over the initial loss)."""
        tx = self.optimizer(state.hparams, meta_params)
        key, k_batch = jax.random.split(state.key)
        x, y = self._minibatch(k_batch, self.x_train, self.y_train)
        loss, grads = jax.value_and_grad(self.loss)(state.params, x, y)
        updates, opt_state = tx.update(grads, state.opt_state, state.params)
        params = optax.apply_updates(state.params, updates)
        metrics = {"loss": loss, "score": log_improvement(loss, state.initial_loss)}
        return state._replace(params=params, opt_state=opt_state, key=key,
                              update=state.update + 1), metrics

    def step(self, state: SupervisedState, meta_params: PyTree = None, num_updates: int = 1
             ) -> tuple[SupervisedState, dict[str, jax.Array]]:
        """`num_updates` (static) updates; metrics stacked, `(num_updates,)` each."""
        return jax.lax.scan(lambda s, _: self.update(s, meta_params), state, None,
                            length=num_updates)

    def score(self, metrics: dict[str, jax.Array]) -> jax.Array:
        """The per-update score a search ranks by: log improvement of the minibatch loss."""
        return metrics["score"]

    def meta_objective(self, state: SupervisedState) -> jax.Array:
        """`-log` of the loss of `state.params` on a test minibatch drawn from `state.key`
        (the meta-loss of learned-optimizer training, Metz et al. 2019, "Understanding and
        correcting pathologies in the training of learned optimizers"), to maximise. Its
        gradient w.r.t. meta-parameters flows back through the updates that produced
        `state.params`; the state is not advanced."""
        x, y = self._minibatch(jax.random.fold_in(state.key, 1), self.x_test, self.y_test)
        return -jnp.log(self.loss(state.params, x, y))

    def test_loss(self, state: SupervisedState) -> jax.Array:
        """The loss of `state.params` on the whole test set."""
        return self.loss(state.params, self.x_test, self.y_test)

    def train(self, key: jax.Array, meta_params: PyTree = None,
              hparams: SupervisedHParams | None = None, env_params: PyTree = None
              ) -> tuple[SupervisedState, dict[str, jax.Array]]:
        """A whole run: `init` then `config.num_updates` updates."""
        state = self.init(key, meta_params, hparams, env_params)
        return self.step(state, meta_params, self.config.num_updates)
