"""PPO as one pure function: `make_train(config, env)(key, meta_params, hparams)`.

The structure follows PureJaxRL (Lu et al. 2022): the whole run is a `lax.scan` over updates,
each a scanned rollout, GAE and scanned minibatch epochs, so a run can be `jit`-ed and `vmap`-ed
over seeds, hyperparameters and meta-parameters. Differences that make it faster: all epochs'
minibatch permutations are drawn and gathered in one go and run as a single flat scan, per-step
random keys are split once per rollout, scans are partly unrolled, and only per-update scalars
leave the loop.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, NamedTuple

import jax
import jax.numpy as jnp
import optax

from metarl.envs.env import Env
from metarl.envs.normalize import RunningStats, init_stats, normalize, update_stats
from metarl.ppo.config import HParams, PPOConfig
from metarl.ppo.networks import ActorCritic, make_actor_critic
from metarl.ppo.objectives import Objective, ObjectiveInputs, ppo_clip

PyTree = Any
OptimizerArg = (optax.GradientTransformation
                | Callable[[HParams, PyTree], optax.GradientTransformation] | None)


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


class Transition(NamedTuple):
    obs: jax.Array
    action: jax.Array
    log_prob: jax.Array
    value: jax.Array
    reward: jax.Array
    terminated: jax.Array
    truncated: jax.Array
    final_obs: jax.Array


class Batch(NamedTuple):
    obs: jax.Array
    action: jax.Array
    log_prob: jax.Array
    value: jax.Array
    advantage: jax.Array
    target: jax.Array


METRIC_NAMES = ("episode_return", "episodes", "loss", "policy_objective", "value_loss",
                "entropy", "approx_kl", "clip_fraction")


def gae(value: jax.Array, reward: jax.Array, done: jax.Array, last_value: jax.Array,
        gamma: jax.Array, lam: jax.Array, unroll: int = 16) -> jax.Array:
    """Generalised advantage estimates (Schulman et al. 2016) over a `(time, env)` batch."""
    next_value = jnp.concatenate([value[1:], last_value[None]], 0)
    not_done = 1.0 - done.astype(jnp.float32)
    delta = reward + gamma * next_value * not_done - value

    def backward(carry: jax.Array, x: tuple[jax.Array, jax.Array]) -> tuple[jax.Array, ...]:
        d, nd = x
        carry = d + gamma * lam * nd * carry
        return carry, carry

    _, adv = jax.lax.scan(backward, jnp.zeros_like(last_value), (delta, not_done),
                          reverse=True, unroll=unroll)
    return adv


def default_optimizer(config: PPOConfig, hparams: HParams) -> optax.GradientTransformation:
    """Adam with PureJaxRL's linear learning-rate annealing to zero."""
    steps_per_update = config.update_epochs * config.num_minibatches

    def schedule(count: jax.Array) -> jax.Array:
        frac = 1.0 - (count // steps_per_update) / config.num_updates
        return hparams.lr * frac

    return optax.adam(schedule if config.anneal_lr else hparams.lr, eps=1e-5)


def make_train(config: PPOConfig, env: Env, env_params: PyTree = None,
               objective: Objective = ppo_clip,
               optimizer: OptimizerArg = None) -> Callable[..., tuple[TrainState, dict]]:
    """Build `train(key, meta_params=None, hparams=None, env_params=None)`.

    `objective(inputs, meta_params)` is the per-sample policy objective to maximise (PPO-clip
    by default). `optimizer` is an `optax.GradientTransformation`, or a function
    `(hparams, meta_params) -> GradientTransformation` for optimizers whose settings are traced
    (learned optimizers, searched learning rates); gradients are clipped to
    `hparams.max_grad_norm` before it either way. Default: Adam with LR annealing.

    `train` returns the final `TrainState` and a dict of per-update metric arrays
    (`METRIC_NAMES`, each of shape `(config.num_updates,)`).
    """
    default_env_params = env.default_params if env_params is None else env_params
    net = make_actor_critic(env.observation_space(default_env_params),
                            env.action_space(default_env_params), config.hidden_sizes,
                            config.activation)
    obs_shape = env.observation_space(default_env_params).shape

    def build_optimizer(hp: HParams, meta_params: PyTree) -> optax.GradientTransformation:
        if optimizer is None:
            inner = default_optimizer(config, hp)
        elif isinstance(optimizer, optax.GradientTransformation):
            inner = optimizer
        else:
            inner = optimizer(hp, meta_params)
        return optax.chain(optax.clip_by_global_norm(hp.max_grad_norm), inner)

    def train(key: jax.Array, meta_params: PyTree = None, hparams: HParams | None = None,
              env_params: PyTree = None) -> tuple[TrainState, dict]:
        hp = (HParams() if hparams is None else hparams).as_arrays()
        ep = default_env_params if env_params is None else env_params
        tx = build_optimizer(hp, meta_params)
        key, k_net, k_env = jax.random.split(key, 3)
        params = net.init(k_net)
        obs, env_state = jax.vmap(env.reset, in_axes=(0, None))(
            jax.random.split(k_env, config.num_envs), ep)
        zeros = jnp.zeros((config.num_envs,), jnp.float32)
        state = TrainState(params, tx.init(params), env_state, obs, init_stats(obs_shape),
                           zeros, zeros, key, jnp.zeros((), jnp.int32))
        update = _make_update(config, env, net, objective, tx, hp, ep, meta_params)
        return jax.lax.scan(update, state, None, length=config.num_updates)

    return train


def _make_update(config: PPOConfig, env: Env, net: ActorCritic, objective: Objective,
                 tx: optax.GradientTransformation, hp: HParams, env_params: PyTree,
                 meta_params: PyTree) -> Callable:
    n_envs, n_mb = config.num_envs, config.num_minibatches
    step_env = jax.vmap(env.step, in_axes=(0, 0, 0, None))

    def prep(stats: RunningStats, obs: jax.Array) -> jax.Array:
        return normalize(stats, obs) if config.normalize_obs else obs

    def rollout(state: TrainState, key: jax.Array) -> tuple[tuple, Transition]:
        keys = jax.random.split(key, (config.num_steps, n_envs + 1))

        def step(carry: tuple, step_keys: jax.Array) -> tuple[tuple, Transition]:
            env_state, obs, ep_ret, last_ret, ret_sum, n_done = carry
            dist, value = net.apply(state.params, prep(state.obs_stats, obs))
            action = net.sample(step_keys[0], dist)
            res = step_env(step_keys[1:], env_state, net.env_action(action), env_params)
            done = res.done
            ep_ret = ep_ret + res.reward
            ret_sum = ret_sum + jnp.sum(jnp.where(done, ep_ret, 0.0))
            n_done = n_done + jnp.sum(done)
            last_ret = jnp.where(done, ep_ret, last_ret)
            ep_ret = jnp.where(done, 0.0, ep_ret)
            tr = Transition(obs, action, net.log_prob(dist, action), value, res.reward,
                            res.terminated, res.truncated, res.final_obs)
            return (res.state, res.obs, ep_ret, last_ret, ret_sum, n_done), tr

        carry = (state.env_state, state.obs, state.episode_return, state.last_return,
                 jnp.zeros(()), jnp.zeros((), jnp.int32))
        return jax.lax.scan(step, carry, keys, unroll=config.rollout_unroll)

    def loss_fn(params: PyTree, mb: Batch, stats: RunningStats,
                progress: jax.Array) -> tuple[jax.Array, tuple]:
        dist, value = net.apply(params, prep(stats, mb.obs))
        log_ratio = net.log_prob(dist, mb.action) - mb.log_prob
        ratio = jnp.exp(log_ratio)
        adv = (mb.advantage - mb.advantage.mean()) / (mb.advantage.std() + 1e-8)
        v_clipped = mb.value + jnp.clip(value - mb.value, -hp.clip_eps, hp.clip_eps)
        value_loss = 0.5 * jnp.maximum((value - mb.target) ** 2,
                                       (v_clipped - mb.target) ** 2).mean()
        entropy = net.entropy(dist)
        inputs = ObjectiveInputs(ratio, log_ratio, adv, jax.lax.stop_gradient(value - mb.target),
                                 entropy, progress, hp.clip_eps)
        policy_objective = objective(inputs, meta_params).mean()
        loss = -policy_objective + hp.vf_coef * value_loss - hp.ent_coef * entropy.mean()
        approx_kl = ((ratio - 1.0) - log_ratio).mean()
        clip_fraction = (jnp.abs(ratio - 1.0) > hp.clip_eps).mean()
        return loss, (loss, policy_objective, value_loss, entropy.mean(), approx_kl,
                      clip_fraction)

    grad_fn = jax.grad(loss_fn, has_aux=True)

    def update(state: TrainState, _: None) -> tuple[TrainState, dict]:
        key, k_roll, k_perm = jax.random.split(state.key, 3)
        (env_state, obs, ep_ret, last_ret, ret_sum, n_done), traj = rollout(state, k_roll)
        stats = state.obs_stats
        last_value = net.value(state.params, prep(stats, obs))
        reward = traj.reward
        if config.bootstrap_truncated:
            final_value = net.value(state.params, prep(stats, traj.final_obs))
            reward = reward + hp.gamma * final_value * traj.truncated
        adv = gae(traj.value, reward, traj.terminated | traj.truncated, last_value, hp.gamma,
                  hp.gae_lambda)
        batch = Batch(traj.obs, traj.action, traj.log_prob, traj.value, adv, adv + traj.value)
        flat = jax.tree.map(lambda x: x.reshape((config.batch_size,) + x.shape[2:]), batch)
        # one gather for all epochs: (epochs * minibatches, minibatch_size, ...)
        perms = jax.vmap(lambda k: jax.random.permutation(k, config.batch_size))(
            jax.random.split(k_perm, config.update_epochs))
        minibatches = jax.tree.map(
            lambda x: x[perms].reshape((config.update_epochs * n_mb, config.minibatch_size)
                                       + x.shape[1:]), flat)
        progress = state.update / config.num_updates

        def sgd_step(carry: tuple, mb: Batch) -> tuple[tuple, tuple]:
            params, opt_state = carry
            grads, aux = grad_fn(params, mb, stats, progress)
            updates, opt_state = tx.update(grads, opt_state, params)
            return (optax.apply_updates(params, updates), opt_state), aux

        (params, opt_state), aux = jax.lax.scan(
            sgd_step, (state.params, state.opt_state), minibatches,
            unroll=config.minibatch_unroll)
        if config.normalize_obs:
            stats = update_stats(stats, traj.obs)
        episode_return = jnp.where(n_done > 0, ret_sum / jnp.maximum(n_done, 1),
                                   last_ret.mean())
        metrics = dict(zip(METRIC_NAMES, (episode_return, n_done, *(a.mean() for a in aux)),
                           strict=True))
        new_state = TrainState(params, opt_state, env_state, obs, stats, ep_ret, last_ret, key,
                               state.update + 1)
        return new_state, metrics

    return update
