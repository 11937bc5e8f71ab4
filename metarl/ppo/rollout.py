"""Acting in a batch of envs for one PPO update: a scanned rollout that only runs the actor and
the env per step, with every random number of the update drawn in bulk beforehand."""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import Any, NamedTuple

import jax
import jax.numpy as jnp
import numpy as np

from metarl.envs.env import Env, ResetAheadEnv, StepResult
from metarl.envs.normalize import RunningStats, normalize
from metarl.ppo.config import PPOConfig
from metarl.ppo.minibatches import shuffle_words
from metarl.ppo.networks import ActorCritic
from metarl.ppo.packing import Packer, Unpacked

PyTree = Any


class Transition(NamedTuple):
    """One rollout step of every env (stacked over steps by the scan)."""

    obs: jax.Array
    action: jax.Array
    log_prob: jax.Array
    final_obs: jax.Array  # the true last observation of an episode that ended at this step
    reward: jax.Array
    terminated: jax.Array
    truncated: jax.Array


def _fast_impl() -> str:
    """The PRNG for the keys handed to `env.step` inside the rollout loop.

    jax lowers Threefry (the default PRNG) on the CPU as a rolled 5-iteration loop to save
    compile time, so every `split`/`uniform` an environment makes inside a scanned step runs a
    small while loop of ~16 operations per iteration: profiled, these random numbers cost more
    than the policy network and the environment dynamics together. Philox (jax >= 0.10) lowers
    to straight-line code that fuses into one kernel and, being counter-based, gives the same
    numbers batched or not. Its lowering is large (Philox4x32: ~1,300 operations per call
    site, +2.5 s of compilation for the two sites in a gymnax step), so it is used only where it
    pays, in its 2x32 form (half the size, compiles as fast as Threefry here): everything else
    draws from the caller's key in bulk, once per update. Philox2x32 keys are 32-bit, so among
    the ~10^6 step keys of a run a few dozen coincide (two steps drawing the same env
    randomness): statistically irrelevant for training. Inside a sharded search, Philox needs
    `metarl.mulhi.use_portable_mulhi()`, which the sharding code calls.
    """
    try:
        jax.random.key(0, impl="philox2x32")
    except ValueError:  # older jax
        return "threefry2x32"
    return "philox2x32"


STEP_KEY_IMPL = _fast_impl()


class UpdateRandomness:
    """Every random number of one update from one bulk draw of uint32 words: the env keys of
    all steps (and their resets' keys), the action noise of all steps and the epochs'
    shuffles."""

    def __init__(self, config: PPOConfig, net: ActorCritic, reset_ahead: bool):
        self.key_size = jax.random.key_data(jax.random.key(0, impl=STEP_KEY_IMPL)).shape[-1]
        n_steps, n_envs = config.num_steps, config.num_envs
        self.shapes = ((n_steps, n_envs, (1 + reset_ahead) * self.key_size),
                       (n_steps, n_envs, net.noise_words),
                       shuffle_words(config.update_epochs, config.batch_size))
        self.sizes = [math.prod(s) for s in self.shapes]

    def draw(self, key: jax.Array) -> tuple[jax.Array, jax.Array, jax.Array]:
        """`(key_bits, noise_bits, perm_bits)`."""
        words = jax.random.bits(key, (sum(self.sizes),), jnp.uint32)
        key_bits, noise_bits, perm_bits = (
            w.reshape(shape) for w, shape in zip(
                jnp.split(words, np.cumsum(self.sizes)[:-1]), self.shapes, strict=True))
        return key_bits, noise_bits, perm_bits


def observe(config: PPOConfig, stats: RunningStats, obs: jax.Array) -> jax.Array:
    """What the networks see: the observation, normalised if the config says so."""
    return normalize(stats, obs) if config.normalize_obs else obs


Rollout = Callable[..., tuple[tuple, Transition]]


def make_rollout(config: PPOConfig, env: Env, net: ActorCritic, key_size: int,
                 per_env_params: bool = False) -> Rollout:
    """`rollout(params, stats, (obs, env_state), key_bits, noise_bits, env_params)` ->
    `((obs, env_state), Transition)` over `config.num_steps` steps of `config.num_envs` envs.
    With `per_env_params` every env has its own params (a leading axis of `num_envs`): a level
    or task per env, kept across automatic resets."""
    params_axis = 0 if per_env_params else None
    reset_ahead = isinstance(env, ResetAheadEnv)
    if reset_ahead:
        step_env = jax.vmap(env.step_with_reset, in_axes=(0, 0, 0, params_axis, 0))
        reset_envs = jax.vmap(jax.vmap(env.reset, in_axes=(0, params_axis)), in_axes=(0, None))
    else:
        vmapped_step = jax.vmap(env.step, in_axes=(0, 0, 0, params_axis))

        def step_env(keys: jax.Array, state: PyTree, action: jax.Array, params: PyTree,
                     reset: None) -> StepResult:
            return vmapped_step(keys, state, action, params)

    def rollout(params: PyTree, stats: RunningStats, carry: tuple, key_bits: jax.Array,
                noise_bits: jax.Array, env_params: PyTree) -> tuple[tuple, Transition]:
        keys = jax.random.wrap_key_data(key_bits[..., :key_size], impl=STEP_KEY_IMPL)
        # for gymnax's small states, the carry (obs, env state), the resets and the
        # transitions travel packed (see `Packer`): a few arrays per step instead of one per
        # pytree leaf
        packing = Packer if reset_ahead else Unpacked
        packer = packing(carry, batch_ndim=1)
        # the state every env would restart from at every step, drawn in one batched call
        resets = (packer.pack(reset_envs(jax.random.wrap_key_data(
            key_bits[..., key_size:], impl=STEP_KEY_IMPL), env_params))
            if reset_ahead else None)
        xs = (keys, net.noise_from_bits(noise_bits), resets)
        out_packer = []  # the transition's layout, known once the step is traced

        def step(packed: tuple, x: tuple) -> tuple[tuple, tuple]:
            obs, env_state = packer.unpack(packed)
            step_keys, noise, reset = x
            # only what acting needs happens per step: the actor's forward pass (whose
            # log-probability is a few operations on logits at hand) and the env. Values and
            # episode returns are computed afterwards for the whole rollout at once (same
            # weights, so the same numbers): one batched operation instead of `num_steps`.
            dist = net.policy(params, observe(config, stats, obs))
            action = net.sample_with_noise(dist, noise)
            res = step_env(step_keys, env_state, net.env_action(action), env_params,
                           None if reset is None else packer.unpack(reset))
            tr = Transition(obs, action, net.log_prob(dist, action), res.final_obs, res.reward,
                            res.terminated, res.truncated)
            if not out_packer:
                out_packer.append(packing(tr, batch_ndim=1))
            return packer.pack((res.obs, res.state)), out_packer[0].pack(tr)

        packed, traj = jax.lax.scan(step, packer.pack(carry), xs, unroll=config.rollout_unroll)
        return packer.unpack(packed), out_packer[0].unpack(traj)

    return rollout
