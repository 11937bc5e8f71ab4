"""A plain PPO in the PureJaxRL style, used as the yardstick for `ppo_throughput.py`.

Everything lives inside one `make_train(config)` closure with the nested helpers the community
knows (`_env_step`, `_calculate_gae`, `_update_epoch`, `_update_minbatch`); the network is a
flax linen module with separate actor and critic MLPs; the optimizer is
`chain(clip_by_global_norm, adam)` with linear learning-rate annealing; minibatches come from a
fresh `jax.random.permutation` each epoch; the environment is gymnax CartPole-v1 used directly,
wrapped to record episode returns; every rollout step's info leaves the jitted function, as in
PureJaxRL. Nothing here is tuned for speed: that is the point of a reference.

Usage: `train = jax.jit(make_train(CONFIG)); out = train(key)`;
`out["metrics"]["returned_episode_returns"]` has shape `(num_updates, num_steps, num_envs)`.
"""

from __future__ import annotations

from typing import Any, NamedTuple

import flax.linen as nn
import gymnax
import jax
import jax.numpy as jnp
import numpy as np
import optax
from flax import struct
from flax.linen.initializers import constant
from flax.training.train_state import TrainState
from jax.custom_batching import custom_vmap

CONFIG: dict[str, Any] = {
    "LR": 2.5e-4,
    "NUM_ENVS": 4,
    "NUM_STEPS": 128,
    "TOTAL_TIMESTEPS": 500_000,
    "UPDATE_EPOCHS": 4,
    "NUM_MINIBATCHES": 4,
    "GAMMA": 0.99,
    "GAE_LAMBDA": 0.95,
    "CLIP_EPS": 0.2,
    "ENT_COEF": 0.01,
    "VF_COEF": 0.5,
    "MAX_GRAD_NORM": 0.5,
    "ACTIVATION": "tanh",
    "ENV_NAME": "CartPole-v1",
    "ANNEAL_LR": True,
}


# --- episode-return bookkeeping (what PureJaxRL's LogWrapper does) -------------------------

@struct.dataclass
class EpisodeLog:
    env_state: Any
    episode_returns: jax.Array
    episode_lengths: jax.Array
    returned_episode_returns: jax.Array  # return of the last finished episode
    returned_episode_lengths: jax.Array
    timestep: jax.Array


class EpisodeLogWrapper:
    """Wraps a gymnax env so that `step` reports finished-episode returns in `info`."""

    def __init__(self, env: Any):
        self._env = env

    def __getattr__(self, name: str) -> Any:
        return getattr(self._env, name)

    def reset(self, key: jax.Array, params: Any) -> tuple[jax.Array, EpisodeLog]:
        obs, env_state = self._env.reset(key, params)
        zero_f, zero_i = jnp.zeros((), jnp.float32), jnp.zeros((), jnp.int32)
        return obs, EpisodeLog(env_state, zero_f, zero_i, zero_f, zero_i, zero_i)

    def step(self, key: jax.Array, state: EpisodeLog, action: jax.Array,
             params: Any) -> tuple[jax.Array, EpisodeLog, jax.Array, jax.Array, dict]:
        obs, env_state, reward, terminated, truncated, info = self._env.step(
            key, state.env_state, action, params)
        done = jnp.logical_or(terminated, truncated)
        ret = state.episode_returns + reward
        length = state.episode_lengths + 1
        new_state = EpisodeLog(
            env_state=env_state,
            episode_returns=ret * (1 - done),
            episode_lengths=length * (1 - done),
            returned_episode_returns=jnp.where(done, ret, state.returned_episode_returns),
            returned_episode_lengths=jnp.where(done, length, state.returned_episode_lengths),
            timestep=state.timestep + 1,
        )
        info = {
            "returned_episode_returns": new_state.returned_episode_returns,
            "returned_episode_lengths": new_state.returned_episode_lengths,
            "timestep": new_state.timestep,
            "returned_episode": done,
        }
        return obs, new_state, reward, done, info


# --- network ---------------------------------------------------------------------------

def orthogonal(scale: float) -> Any:
    """flax's orthogonal initializer, mapped one matrix at a time when vmapped over seeds.

    Batched QR decompositions (what `vmap` makes of the initializer) can deadlock XLA's CPU
    thread pool with jaxlib 0.10 on this 2-core machine; the values are unchanged.
    """
    base = nn.initializers.orthogonal(scale)

    def init(key: jax.Array, shape: tuple[int, ...], dtype: Any = jnp.float32) -> jax.Array:
        @custom_vmap
        def one(k: jax.Array) -> jax.Array:
            return base(k, shape, dtype)

        @one.def_vmap
        def _batched(axis_size: int, in_batched: list[bool], k: jax.Array) -> tuple:
            return jax.lax.map(one, k), True

        return one(key)

    return init


class ActorCritic(nn.Module):
    action_dim: int
    activation: str = "tanh"

    @nn.compact
    def __call__(self, x: jax.Array) -> tuple[jax.Array, jax.Array]:
        act = nn.relu if self.activation == "relu" else nn.tanh
        hidden_init = orthogonal(np.sqrt(2))
        a = act(nn.Dense(64, kernel_init=hidden_init, bias_init=constant(0.0))(x))
        a = act(nn.Dense(64, kernel_init=hidden_init, bias_init=constant(0.0))(a))
        logits = nn.Dense(self.action_dim, kernel_init=orthogonal(0.01),
                          bias_init=constant(0.0))(a)
        c = act(nn.Dense(64, kernel_init=hidden_init, bias_init=constant(0.0))(x))
        c = act(nn.Dense(64, kernel_init=hidden_init, bias_init=constant(0.0))(c))
        value = nn.Dense(1, kernel_init=orthogonal(1.0), bias_init=constant(0.0))(c)
        return logits, jnp.squeeze(value, -1)


def categorical_log_prob(logits: jax.Array, action: jax.Array) -> jax.Array:
    log_p = jax.nn.log_softmax(logits)
    return jnp.take_along_axis(log_p, action[..., None], axis=-1)[..., 0]


def categorical_entropy(logits: jax.Array) -> jax.Array:
    log_p = jax.nn.log_softmax(logits)
    return -jnp.sum(jnp.exp(log_p) * log_p, axis=-1)


class Transition(NamedTuple):
    done: jax.Array
    action: jax.Array
    value: jax.Array
    reward: jax.Array
    log_prob: jax.Array
    obs: jax.Array
    info: dict


# --- training --------------------------------------------------------------------------

def make_train(config: dict[str, Any]) -> Any:
    config = dict(config)
    config["NUM_UPDATES"] = config["TOTAL_TIMESTEPS"] // config["NUM_STEPS"] // config["NUM_ENVS"]
    config["MINIBATCH_SIZE"] = config["NUM_ENVS"] * config["NUM_STEPS"] // config["NUM_MINIBATCHES"]
    env, env_params = gymnax.make(config["ENV_NAME"])
    env = EpisodeLogWrapper(env)

    def linear_schedule(count: jax.Array) -> jax.Array:
        done_updates = count // (config["NUM_MINIBATCHES"] * config["UPDATE_EPOCHS"])
        return config["LR"] * (1.0 - done_updates / config["NUM_UPDATES"])

    def train(rng: jax.Array) -> dict:
        network = ActorCritic(env.action_space(env_params).n, activation=config["ACTIVATION"])
        rng, init_rng = jax.random.split(rng)
        network_params = network.init(init_rng, jnp.zeros(env.observation_space(env_params).shape))
        lr = linear_schedule if config["ANNEAL_LR"] else config["LR"]
        tx = optax.chain(optax.clip_by_global_norm(config["MAX_GRAD_NORM"]),
                         optax.adam(learning_rate=lr, eps=1e-5))
        train_state = TrainState.create(apply_fn=network.apply, params=network_params, tx=tx)

        rng, reset_rng = jax.random.split(rng)
        obsv, env_state = jax.vmap(env.reset, in_axes=(0, None))(
            jax.random.split(reset_rng, config["NUM_ENVS"]), env_params)

        def _update_step(runner_state: tuple, _: None) -> tuple[tuple, dict]:
            # collect a rollout of NUM_STEPS steps in each of NUM_ENVS envs
            def _env_step(runner_state: tuple, _: None) -> tuple[tuple, Transition]:
                train_state, env_state, last_obs, rng = runner_state
                rng, act_rng = jax.random.split(rng)
                logits, value = network.apply(train_state.params, last_obs)
                action = jax.random.categorical(act_rng, logits)
                log_prob = categorical_log_prob(logits, action)
                rng, step_rng = jax.random.split(rng)
                step_rngs = jax.random.split(step_rng, config["NUM_ENVS"])
                obsv, env_state, reward, done, info = jax.vmap(
                    env.step, in_axes=(0, 0, 0, None))(step_rngs, env_state, action, env_params)
                transition = Transition(done, action, value, reward, log_prob, last_obs, info)
                return (train_state, env_state, obsv, rng), transition

            runner_state, traj_batch = jax.lax.scan(_env_step, runner_state, None,
                                                    config["NUM_STEPS"])

            # advantages, computed backwards in time
            train_state, env_state, last_obs, rng = runner_state
            _, last_val = network.apply(train_state.params, last_obs)

            def _calculate_gae(traj_batch: Transition,
                               last_val: jax.Array) -> tuple[jax.Array, jax.Array]:
                def _get_advantages(carry: tuple,
                                    transition: Transition) -> tuple[tuple, jax.Array]:
                    gae, next_value = carry
                    not_done = 1.0 - transition.done
                    delta = (transition.reward + config["GAMMA"] * next_value * not_done
                             - transition.value)
                    gae = delta + config["GAMMA"] * config["GAE_LAMBDA"] * not_done * gae
                    return (gae, transition.value), gae

                _, advantages = jax.lax.scan(_get_advantages,
                                             (jnp.zeros_like(last_val), last_val),
                                             traj_batch, reverse=True, unroll=16)
                return advantages, advantages + traj_batch.value

            advantages, targets = _calculate_gae(traj_batch, last_val)

            def _update_epoch(update_state: tuple, _: None) -> tuple[tuple, Any]:
                def _update_minbatch(train_state: TrainState,
                                     batch_info: tuple) -> tuple[TrainState, Any]:
                    traj_batch, advantages, targets = batch_info

                    def _loss_fn(params: Any, traj_batch: Transition, gae: jax.Array,
                                 targets: jax.Array) -> tuple[jax.Array, tuple]:
                        logits, value = network.apply(params, traj_batch.obs)
                        log_prob = categorical_log_prob(logits, traj_batch.action)

                        # clipped value loss
                        value_pred_clipped = traj_batch.value + jnp.clip(
                            value - traj_batch.value, -config["CLIP_EPS"], config["CLIP_EPS"])
                        value_losses = jnp.square(value - targets)
                        value_losses_clipped = jnp.square(value_pred_clipped - targets)
                        value_loss = 0.5 * jnp.maximum(value_losses,
                                                       value_losses_clipped).mean()

                        # clipped surrogate on per-minibatch normalised advantages
                        ratio = jnp.exp(log_prob - traj_batch.log_prob)
                        gae = (gae - gae.mean()) / (gae.std() + 1e-8)
                        surrogate = ratio * gae
                        surrogate_clipped = jnp.clip(ratio, 1.0 - config["CLIP_EPS"],
                                                     1.0 + config["CLIP_EPS"]) * gae
                        loss_actor = -jnp.minimum(surrogate, surrogate_clipped).mean()
                        entropy = categorical_entropy(logits).mean()

                        total_loss = (loss_actor + config["VF_COEF"] * value_loss
                                      - config["ENT_COEF"] * entropy)
                        return total_loss, (value_loss, loss_actor, entropy)

                    grad_fn = jax.value_and_grad(_loss_fn, has_aux=True)
                    total_loss, grads = grad_fn(train_state.params, traj_batch, advantages,
                                                targets)
                    train_state = train_state.apply_gradients(grads=grads)
                    return train_state, total_loss

                train_state, traj_batch, advantages, targets, rng = update_state
                rng, perm_rng = jax.random.split(rng)
                batch_size = config["MINIBATCH_SIZE"] * config["NUM_MINIBATCHES"]
                permutation = jax.random.permutation(perm_rng, batch_size)
                batch = (traj_batch, advantages, targets)
                batch = jax.tree.map(lambda x: x.reshape((batch_size,) + x.shape[2:]), batch)
                shuffled = jax.tree.map(lambda x: jnp.take(x, permutation, axis=0), batch)
                minibatches = jax.tree.map(
                    lambda x: x.reshape([config["NUM_MINIBATCHES"], -1] + list(x.shape[1:])),
                    shuffled)
                train_state, total_loss = jax.lax.scan(_update_minbatch, train_state,
                                                       minibatches)
                return (train_state, traj_batch, advantages, targets, rng), total_loss

            update_state = (train_state, traj_batch, advantages, targets, rng)
            update_state, loss_info = jax.lax.scan(_update_epoch, update_state, None,
                                                   config["UPDATE_EPOCHS"])
            train_state, rng = update_state[0], update_state[-1]
            runner_state = (train_state, env_state, last_obs, rng)
            return runner_state, traj_batch.info

        rng, loop_rng = jax.random.split(rng)
        runner_state = (train_state, env_state, obsv, loop_rng)
        runner_state, metric = jax.lax.scan(_update_step, runner_state, None,
                                            config["NUM_UPDATES"])
        return {"runner_state": runner_state, "metrics": metric}

    return train


def episode_return_per_update(metrics: dict) -> np.ndarray:
    """Mean return of the episodes that finished in each update, `(..., num_updates)`; NaN for
    an update in which none finished (computed on the host from the per-step info)."""
    ret = np.asarray(metrics["returned_episode_returns"], np.float64)
    done = np.asarray(metrics["returned_episode"], np.float64)
    n = done.sum((-2, -1))
    with np.errstate(invalid="ignore", divide="ignore"):
        return (ret * done).sum((-2, -1)) / n


def final_return(metrics: dict, last_fraction: float = 0.1) -> float:
    """Mean per-update episode return over the last `last_fraction` of updates (and seeds)."""
    per_update = episode_return_per_update(metrics)
    n_updates = per_update.shape[-1]
    return float(np.nanmean(per_update[..., n_updates - max(1, int(n_updates * last_fraction)):]))


if __name__ == "__main__":
    import time

    t0 = time.perf_counter()
    out = jax.block_until_ready(jax.jit(make_train(CONFIG))(jax.random.key(0)))
    print(f"final return {final_return(out['metrics']):.1f} "
          f"({time.perf_counter() - t0:.1f} s including compilation)")
