"""The PPO inner loop in pieces: `PPO.init`, `PPO.update` (one rollout and its SGD epochs),
`PPO.step` (K updates, scanned) and `make_train` = init + every update.

The structure follows PureJaxRL (Lu et al. 2022): everything is a pure function of a state
pytree, so a run can be `jit`-ed, `vmap`-ed over seeds, hyperparameters and meta-parameters,
paused after any update and resumed, or differentiated through. The hyperparameters and env
params travel in the state (traced), so they may change between steps (PBT) without a new
compilation. What makes it faster than the reference: every random number of an update is
drawn in one bulk call, all epochs' minibatches are gathered at once and run as one flat scan,
small env states travel through the rollout packed in one or two arrays, and only per-update
scalars leave the loop.
"""

from __future__ import annotations

import functools
from collections.abc import Callable
from typing import Any, NamedTuple

import jax
import jax.numpy as jnp
from jax.flatten_util import ravel_pytree

from metarl.envs.env import Env, ResetAheadEnv
from metarl.envs.normalize import RunningStats, init_stats, update_stats
from metarl.ppo.advantages import episode_stats, gae
from metarl.ppo.config import HParams, PPOConfig
from metarl.ppo.dormancy import dormancy
from metarl.ppo.loss import LOSS_METRICS, make_loss
from metarl.ppo.minibatches import Columns, epoch_minibatches, training_rows
from metarl.ppo.networks import ActorCritic, make_actor_critic
from metarl.ppo.objectives import Objective, ppo_clip
from metarl.ppo.optimizer import OptimizerArg, optimizer_factory
from metarl.ppo.rollout import Transition, UpdateRandomness, make_rollout, observe
from metarl.ppo.sgd import make_epochs

PyTree = Any


class TrainState(NamedTuple):
    params: PyTree
    opt_state: PyTree
    env_state: PyTree
    obs: jax.Array
    obs_stats: RunningStats
    episode_return: jax.Array  # running return of each env's current episode
    last_return: jax.Array  # return of each env's last finished episode
    key: jax.Array
    update: jax.Array
    hparams: HParams  # traced: may change between updates
    # shared, or one pytree per env (a leading axis of num_envs); None: the defaults, as
    # compile-time constants
    env_params: PyTree


METRIC_NAMES = ("episode_return", "episodes", *LOSS_METRICS)


class PPO:
    """PPO (Schulman et al. 2017) on a batch of `config.num_envs` envs, as an inner loop.

    `objective(inputs, meta_params)` is the per-sample policy objective to maximise (PPO-clip
    by default). `optimizer` is an `optax.GradientTransformation`, or a function
    `(hparams, meta_params) -> GradientTransformation` for optimizers whose settings are traced
    (learned optimizers, searched learning rates); gradients are clipped to
    `hparams.max_grad_norm` before it either way. Default: Adam with LR annealing. With
    `per_env_params`, the `env_params` given to `init` have a leading axis of `num_envs`: one
    level or task per env, kept by its automatic resets (the constructor's `env_params`, one
    pytree, set the observation and action spaces and the default task).
    """

    def __init__(self, config: PPOConfig, env: Env, env_params: PyTree = None,
                 objective: Objective = ppo_clip, optimizer: OptimizerArg = None,
                 per_env_params: bool = False):
        self.config, self.env, self.objective = config, env, objective
        self.per_env_params = per_env_params
        self.default_env_params = env.default_params if env_params is None else env_params
        self.net: ActorCritic = make_actor_critic(
            env.observation_space(self.default_env_params),
            env.action_space(self.default_env_params), config.hidden_sizes, config.activation)
        self.obs_shape = env.observation_space(self.default_env_params).shape
        self.optimizer = optimizer_factory(config, optimizer)
        # the default optimizer is elementwise apart from the global norm, so it runs on all
        # weights as one flat vector; a user's optimizer sees the usual pytree
        self.flat = optimizer is None
        self.random = UpdateRandomness(config, self.net, isinstance(env, ResetAheadEnv))
        self.rollout = make_rollout(config, env, self.net, self.random.key_size, per_env_params)
        self.act_width = 1 if self.net.discrete else self.net.action_dim
        self.cols = Columns(self.net.obs_size, self.act_width)
        loss = make_loss(config, self.net, objective, self.cols, self.obs_shape)
        # an optimizer that reads dormancy (OPEN) says so; computing it costs a forward pass
        extra = self._dormancy if getattr(optimizer, "reads_dormancy", False) else None
        self.epochs = make_epochs(loss, config.minibatch_unroll, self.flat, extra)

    # -- the pieces -------------------------------------------------------------------------
    def init(self, key: jax.Array, meta_params: PyTree = None, hparams: HParams | None = None,
             env_params: PyTree = None) -> TrainState:
        """Fresh weights, optimizer state and envs; nothing trained yet."""
        return fresh_state(self, key, meta_params, hparams, env_params)

    def update(self, state: TrainState, meta_params: PyTree = None
               ) -> tuple[TrainState, dict[str, jax.Array]]:
        """One PPO update: a rollout, its advantages, then the SGD epochs."""
        config, hp = self.config, state.hparams
        tx = self.optimizer(hp, meta_params)
        key, k_update = jax.random.split(state.key)
        key_bits, noise_bits, perm_bits = self.random.draw(k_update)
        stats = state.obs_stats
        # acting is data collection: meta-gradients flow through the SGD steps, never through
        # sampled actions or env dynamics (Xu et al. 2018)
        (obs, env_state), traj = self.rollout(jax.lax.stop_gradient(state.params), stats,
                                              (state.obs, state.env_state), key_bits,
                                              noise_bits, self._env_params(state))
        done = (traj.terminated | traj.truncated).astype(jnp.float32)
        value, reward, last_value = self._values(state.params, stats, traj, obs, hp)
        adv = gae(value, reward, done, last_value, hp.gamma, hp.gae_lambda)
        episodes = episode_stats(traj.reward, done, state.episode_return, state.last_return)
        rows = training_rows(self._flat_obs(traj.obs), traj.action, traj.log_prob, value, adv,
                             self.act_width)
        minibatches = epoch_minibatches(rows, perm_bits, config, self.cols)
        progress = state.update / config.num_updates
        params, opt_state, aux = self.epochs(state.params, state.opt_state, tx, minibatches,
                                             stats, progress, hp, meta_params)
        if config.normalize_obs:
            stats = update_stats(stats, traj.obs)
        metrics = dict(zip(METRIC_NAMES, (episodes.mean_return, episodes.finished,
                                          *aux.mean(0)), strict=True))
        return state._replace(params=params, opt_state=opt_state, env_state=env_state, obs=obs,
                              obs_stats=stats, episode_return=episodes.running,
                              last_return=episodes.last, key=key,
                              update=state.update + 1), metrics

    def step(self, state: TrainState, meta_params: PyTree = None, num_updates: int = 1
             ) -> tuple[TrainState, dict[str, jax.Array]]:
        """`num_updates` (static) updates; metrics stacked, `(num_updates,)` each."""
        return jax.lax.scan(lambda s, _: self.update(s, meta_params), state, None,
                            length=num_updates)

    def meta_objective(self, state: TrainState) -> jax.Array:
        """The validation objective of meta-gradient RL (Xu et al. 2018, "Meta-Gradient
        Reinforcement Learning"): the policy-gradient surrogate `mean(log pi(a|s) * A)` of a
        fresh rollout with the run's current policy, whose gradient with respect to
        `state.params` is the policy gradient there. Everything but `state.params` is held
        fixed (the data, and the advantages under the current, undifferentiated gamma and
        lambda), so its gradient with respect to meta-parameters is the policy gradient carried
        back through the updates that produced `state.params`. The rollout is one the run
        never takes: the state is not advanced."""
        config = self.config
        hp = jax.lax.stop_gradient(state.hparams)
        key_bits, noise_bits, _ = self.random.draw(jax.random.fold_in(state.key, 1))
        data_params = jax.lax.stop_gradient(state.params)
        stats = state.obs_stats
        (obs, _), traj = self.rollout(data_params, stats, (state.obs, state.env_state),
                                      key_bits, noise_bits, self._env_params(state))
        done = (traj.terminated | traj.truncated).astype(jnp.float32)
        value, reward, last_value = self._values(data_params, stats, traj, obs, hp)
        adv = gae(value, reward, done, last_value, hp.gamma, hp.gae_lambda)
        adv = jax.lax.stop_gradient((adv - adv.mean()) / (adv.std() + 1e-8))
        dist = self.net.policy(state.params, observe(config, stats, traj.obs))
        return jnp.mean(self.net.log_prob(dist, traj.action) * adv)

    def score(self, metrics: dict[str, jax.Array]) -> jax.Array:
        """The per-update score a search ranks by: the mean return of finished episodes."""
        return metrics["episode_return"]

    def reset_envs(self, state: TrainState, key: jax.Array, env_params: PyTree,
                   which: jax.Array) -> TrainState:
        """The envs where `which` (`(num_envs,)` bool) is true restart, on their row of
        `env_params` (per-env params): a curriculum moving env `i` to a new level. The others
        keep their episode, params and running return."""
        return restart_envs(self, state, key, env_params, which)

    def train(self, key: jax.Array, meta_params: PyTree = None, hparams: HParams | None = None,
              env_params: PyTree = None) -> tuple[TrainState, dict[str, jax.Array]]:
        """A whole run: `init` then `config.num_updates` updates."""
        state = self.init(key, meta_params, hparams, env_params)
        return self.step(state, meta_params, self.config.num_updates)

    # -- helpers ----------------------------------------------------------------------------
    def _dormancy(self, params: PyTree, mb: jax.Array, stats: RunningStats, *_: Any
                  ) -> dict[str, PyTree]:
        """OPEN's dormancy input on this minibatch's observations (`metarl.ppo.dormancy`)."""
        obs = mb[:, self.cols.obs].reshape((mb.shape[0],) + self.obs_shape)
        x = self._flat_obs(observe(self.config, stats, obs))
        return {"dormancy": dormancy(params, x, self.config.activation)}

    def _env_params(self, state: TrainState) -> PyTree:
        # None: the env's defaults, compiled in as constants (XLA folds them, which is faster
        # and is what a run without env params always computed)
        return self.default_env_params if state.env_params is None else state.env_params

    def _flat_obs(self, obs: jax.Array) -> jax.Array:
        net = self.net
        return obs.reshape(obs.shape[: obs.ndim - net.obs_ndim] + (net.obs_size,)).astype(
            jnp.float32)

    def _values(self, params: PyTree, stats: RunningStats, traj: Transition, last_obs: jax.Array,
                hp: HParams) -> tuple[jax.Array, jax.Array, jax.Array]:
        """`(value, reward, last_value)`: the critic on the rollout, on the last observation
        and (for time-limit truncations) on the true final observations of truncated episodes,
        in one batched forward pass; truncated rewards get the bootstrap added."""
        config = self.config
        n_steps, n_envs = config.num_steps, config.num_envs
        rows = [traj.obs.reshape((-1,) + self.obs_shape), last_obs]
        if config.bootstrap_truncated:
            rows.append(traj.final_obs.reshape((-1,) + self.obs_shape))
        values = self.net.value(params, observe(config, stats, jnp.concatenate(rows, 0)))
        value = values[: config.batch_size].reshape(n_steps, n_envs)
        last_value = values[config.batch_size: config.batch_size + n_envs]
        reward = traj.reward
        if config.bootstrap_truncated:
            final_value = values[config.batch_size + n_envs:].reshape(n_steps, n_envs)
            reward = reward + hp.gamma * final_value * traj.truncated.astype(jnp.float32)
        return value, reward, last_value


def restart_envs(loop: Any, state: Any, key: jax.Array, env_params: PyTree,
                 which: jax.Array) -> Any:
    """`state` with the envs where `which` is true reset on their row of `env_params` (a
    PPO-family loop with per-env params); the others keep their episode, params and return."""
    if not loop.per_env_params:
        raise ValueError(f"reset_envs needs {type(loop).__name__}(..., per_env_params=True)")
    obs, env_state = jax.vmap(loop.env.reset)(
        jax.random.split(key, loop.config.num_envs), env_params)
    pick = functools.partial(where_rows, which)
    return state._replace(
        obs=pick(obs, state.obs), env_state=jax.tree.map(pick, env_state, state.env_state),
        env_params=jax.tree.map(pick, env_params, state.env_params),
        episode_return=jnp.where(which, 0.0, state.episode_return))


def where_rows(which: jax.Array, new: jax.Array, old: jax.Array) -> jax.Array:
    """Rows of `new` where `which` (one bool per leading row) is true, of `old` elsewhere."""
    return jnp.where(which.reshape(which.shape + (1,) * (new.ndim - 1)), new, old)


def fresh_state(loop: Any, key: jax.Array, meta_params: PyTree, hparams: HParams | None,
                env_params: PyTree) -> TrainState:
    """A PPO-family loop's fresh run: weights from `loop.net`, the optimizer state of
    `loop.optimizer`, `loop.config.num_envs` reset envs, zero statistics."""
    hp = (HParams() if hparams is None else hparams).as_arrays()
    tx = loop.optimizer(hp, meta_params)
    key, k_net, k_env = jax.random.split(key, 3)
    params = loop.net.init(k_net)
    opt_params = ravel_pytree(params)[0] if loop.flat else params
    n_envs = loop.config.num_envs
    obs, env_state, env_params = reset_batch(loop.env, loop.default_env_params,
                                             loop.per_env_params, k_env, n_envs, env_params)
    zeros = jnp.zeros((n_envs,), jnp.float32)
    return TrainState(params, tx.init(opt_params), env_state, obs, init_stats(loop.obs_shape),
                      zeros, zeros, key, jnp.zeros((), jnp.int32), hp, env_params)


def reset_batch(env: Env, default_params: PyTree, per_env_params: bool, key: jax.Array,
                num_envs: int, env_params: PyTree = None) -> tuple[jax.Array, PyTree, PyTree]:
    """The `num_envs` envs of a fresh run: `(obs, env_state, env_params)`. With
    `per_env_params`, `env_params` has one row per env (None: every env on the default task);
    otherwise it is shared (None: the defaults, compiled in as constants)."""
    if env_params is None and per_env_params:
        env_params = jax.tree.map(lambda x: jnp.broadcast_to(x, (num_envs, *jnp.shape(x))),
                                  default_params)
    obs, env_state = jax.vmap(env.reset, in_axes=(0, 0 if per_env_params else None))(
        jax.random.split(key, num_envs), default_params if env_params is None else env_params)
    return obs, env_state, env_params


def make_train(config: PPOConfig, env: Env, env_params: PyTree = None,
               objective: Objective = ppo_clip, optimizer: OptimizerArg = None,
               per_env_params: bool = False) -> Callable[..., tuple[TrainState, dict]]:
    """`train(key, meta_params=None, hparams=None, env_params=None)`: a whole PPO run (see
    `PPO`), returning the final `TrainState` and per-update metric arrays (`METRIC_NAMES`,
    each of shape `(config.num_updates,)`)."""
    return PPO(config, env, env_params, objective, optimizer, per_env_params).train
