"""Acting in a batch of envs with a recurrent policy for one update: a scan that carries the
GRU state next to the env state and records, per step, the reset flag the policy applied, so
that training can replay exactly the same sequence of states."""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import Any, NamedTuple

import jax
import jax.numpy as jnp
import numpy as np

from metarl.envs.env import Env
from metarl.envs.normalize import RunningStats
from metarl.ppo.minibatches import shuffle_words
from metarl.ppo.rollout import STEP_KEY_IMPL, observe
from metarl.rppo.config import RecurrentPPOConfig
from metarl.rppo.networks import RecurrentActorCritic

PyTree = Any
HiddenResets = Callable[[jax.Array, PyTree], jax.Array]


class RecurrentTransition(NamedTuple):
    """One rollout step of every env (stacked over steps by the scan: `(T, B, ...)`)."""

    obs: jax.Array
    reset: jax.Array  # the policy's state was zeroed before it saw `obs`
    hidden: jax.Array  # the GRU state after `obs` (for bootstrapping truncations)
    action: jax.Array
    log_prob: jax.Array
    value: jax.Array
    reward: jax.Array
    terminated: jax.Array
    truncated: jax.Array
    final_obs: jax.Array  # the true last observation of an episode that ended at this step


class RolloutCarry(NamedTuple):
    obs: jax.Array
    env_state: PyTree
    hidden: jax.Array  # the GRU state after the last step, before `reset` is applied
    reset: jax.Array  # `(B,)` bool: zero `hidden` before the next step


class UpdateBits:
    """Every random number of one update from one bulk draw of uint32 words: the env keys of
    every step, the action noise of every step and the epochs' shuffles of the envs."""

    def __init__(self, config: RecurrentPPOConfig, net: RecurrentActorCritic):
        self.key_size = jax.random.key_data(jax.random.key(0, impl=STEP_KEY_IMPL)).shape[-1]
        t, b = config.num_steps, config.num_envs
        self.shapes = ((t, b, self.key_size), (t, b, net.noise_words),
                       shuffle_words(config.update_epochs, b))
        self.sizes = [math.prod(s) for s in self.shapes]

    def draw(self, key: jax.Array) -> tuple[jax.Array, jax.Array, jax.Array]:
        """`(step_keys, noise_bits, perm_bits)`."""
        words = jax.random.bits(key, (sum(self.sizes),), jnp.uint32)
        key_bits, noise_bits, perm_bits = (
            w.reshape(s) for w, s in zip(jnp.split(words, np.cumsum(self.sizes)[:-1]),
                                         self.shapes, strict=True))
        return jax.random.wrap_key_data(key_bits, impl=STEP_KEY_IMPL), noise_bits, perm_bits


Rollout = Callable[..., tuple[RolloutCarry, RecurrentTransition]]


def make_rollout(config: RecurrentPPOConfig, env: Env, net: RecurrentActorCritic,
                 hidden_resets: HiddenResets, per_env_params: bool = False) -> Rollout:
    """`rollout(params, stats, carry, step_keys, noise_bits, env_params) -> (carry,
    RecurrentTransition)` over `config.num_steps` steps. After each env step,
    `hidden_resets(done, env_state)` (bools `(num_envs,)`, the new env states) decides
    where the GRU state restarts before the next step."""
    step_env = jax.vmap(env.step, in_axes=(0, 0, 0, 0 if per_env_params else None))

    def rollout(params: PyTree, stats: RunningStats, carry: RolloutCarry, step_keys: jax.Array,
                noise_bits: jax.Array, env_params: PyTree
                ) -> tuple[RolloutCarry, RecurrentTransition]:
        def step(c: RolloutCarry, x: tuple) -> tuple[RolloutCarry, RecurrentTransition]:
            keys, noise = x
            hidden, dist, value = net.apply(params, c.hidden, observe(config, stats, c.obs),
                                            c.reset)
            action = net.sample_with_noise(dist, noise)
            res = step_env(keys, c.env_state, net.env_action(action), env_params)
            tr = RecurrentTransition(c.obs, c.reset, hidden, action,
                                     net.log_prob(dist, action), value, res.reward,
                                     res.terminated, res.truncated, res.final_obs)
            done = res.terminated | res.truncated
            reset = jnp.asarray(hidden_resets(done, res.state), bool)
            return RolloutCarry(res.obs, res.state, hidden, reset), tr

        noise = net.noise_from_bits(noise_bits)
        return jax.lax.scan(step, carry, (step_keys, noise))

    return rollout
