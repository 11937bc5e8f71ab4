"""Random tabular MDPs as a task distribution, the MDP setting of RL² (Duan et al. 2016,
"RL²: Fast Reinforcement Learning via Slow Reinforcement Learning", §4.2).

A task is a whole MDP held in the env's params: transition probabilities `P[s, a, s']`, each
row drawn from a flat Dirichlet(1), and mean rewards `R[s, a]` drawn i.i.d. from N(1, 1).
The reward of a step is its mean plus unit-variance Gaussian noise (`REWARD_NOISE_STD`), as in
the paper ("normal distribution with unit variance"). Every episode starts in state 0: we
found no start state in the paper, and state 0 is what public rllab-era random-MDP code does.
Episodes last `episode_length` steps (truncation, never termination); an RL² trial is `n`
such episodes of one task, the agent's memory kept across them by the agent, not here.
Observations are the one-hot current state.
"""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np
from flax import struct

from metarl.envs.env import StepResult
from metarl.envs.spaces import Box, Discrete, Space

# The task prior, shared with the Bayesian baselines (PSRL) so their prior is the true one.
REWARD_MEAN_LOC = 1.0
REWARD_MEAN_SCALE = 1.0
REWARD_NOISE_STD = 1.0
DIRICHLET_ALPHA = 1.0  # flat: `sample_params` relies on it (normalised exponentials)
START_STATE = 0


@struct.dataclass
class MDPParams:
    """One MDP: `transitions[s, a]` is the distribution of the next state, `reward_means[s, a]`
    the expected reward of taking `a` in `s`."""

    transitions: jax.Array  # (num_states, num_actions, num_states)
    reward_means: jax.Array  # (num_states, num_actions)


@struct.dataclass
class MDPState:
    state: jax.Array  # the current state, an int
    time: jax.Array  # steps taken in this episode


def transition(params: MDPParams, state: jax.Array, action: jax.Array, uniform: jax.Array,
               noise: jax.Array) -> tuple[jax.Array, jax.Array]:
    """`(next_state, reward)` of taking `action` in `state`, driven by one U[0, 1) draw and one
    standard normal draw. Taking the randomness as arguments lets the baselines replay the same
    draws for every policy (common random numbers) with the env's own dynamics."""
    cdf = jnp.cumsum(params.transitions[state, action])
    # clipping guards against a cumulative sum that rounds to just below 1
    next_state = jnp.minimum(jnp.sum(cdf <= uniform), cdf.shape[0] - 1).astype(jnp.int32)
    reward = params.reward_means[state, action] + REWARD_NOISE_STD * noise
    return next_state, reward.astype(jnp.float32)


class TabularMDP:
    """Duan et al.'s random MDPs: `num_states` states, `num_actions` actions, episodes of
    `episode_length` steps from state 0, observation the one-hot state.

    `sample_params(key)` draws a task; `default_params` is one fixed task from the same
    distribution (numpy seed 0).
    """

    def __init__(self, num_states: int = 10, num_actions: int = 5, episode_length: int = 10):
        if min(num_states, num_actions, episode_length) < 1:
            raise ValueError("num_states, num_actions and episode_length must be at least 1")
        self.num_states = int(num_states)
        self.num_actions = int(num_actions)
        self.episode_length = int(episode_length)
        self.name = "metarl/TabularMDP"

    @property
    def episode_steps(self) -> int:
        """Every episode's length (fixed)."""
        return self.episode_length

    @property
    def default_params(self) -> MDPParams:
        # drawn with numpy: jax's Dirichlet sampler takes seconds to compile, too slow for
        # code that only wants shapes (spaces, smoke tests)
        rng = np.random.default_rng(0)
        shape = (self.num_states, self.num_actions)
        transitions = rng.dirichlet(np.full(self.num_states, DIRICHLET_ALPHA), shape)
        means = REWARD_MEAN_LOC + REWARD_MEAN_SCALE * rng.standard_normal(shape)
        return MDPParams(jnp.asarray(transitions, jnp.float32), jnp.asarray(means, jnp.float32))

    def sample_params(self, key: jax.Array) -> MDPParams:
        """A task: rows of `transitions` ~ Dirichlet(1), `reward_means` ~ N(1, 1)."""
        k_p, k_r = jax.random.split(key)
        shape = (self.num_states, self.num_actions)
        # a flat Dirichlet is normalised i.i.d. Exp(1) draws: exact, and it compiles in a
        # fraction of the time of jax's general (Gamma rejection-sampling) Dirichlet
        draws = jax.random.exponential(k_p, shape + (self.num_states,))
        transitions = draws / jnp.sum(draws, axis=-1, keepdims=True)
        means = REWARD_MEAN_LOC + REWARD_MEAN_SCALE * jax.random.normal(k_r, shape)
        return MDPParams(transitions.astype(jnp.float32), means.astype(jnp.float32))

    def _obs(self, state: jax.Array) -> jax.Array:
        return jax.nn.one_hot(state, self.num_states, dtype=jnp.float32)

    def reset(self, key: jax.Array, params: MDPParams) -> tuple[jax.Array, MDPState]:
        del key, params  # every episode of every task starts in START_STATE
        state = jnp.asarray(START_STATE, jnp.int32)
        return self._obs(state), MDPState(state, jnp.zeros((), jnp.int32))

    def step(self, key: jax.Array, state: MDPState, action: jax.Array,
             params: MDPParams) -> StepResult:
        return self.step_with_reset(key, state, action, params, self.reset(key, params))

    def step_with_reset(self, key: jax.Array, state: MDPState, action: jax.Array,
                        params: MDPParams, reset: tuple[jax.Array, MDPState]) -> StepResult:
        """`step`, continuing from `reset` when the episode ends (see `ResetAheadEnv`)."""
        k_u, k_n = jax.random.split(key)
        nxt, reward = transition(params, state.state, jnp.asarray(action, jnp.int32),
                                 jax.random.uniform(k_u, ()), jax.random.normal(k_n, ()))
        time = state.time + 1
        truncated = time >= self.episode_length
        final_obs = self._obs(nxt)
        obs, new_state = jax.tree.map(lambda r, s: jnp.where(truncated, r, s), reset,
                                      (final_obs, MDPState(nxt, time)))
        return StepResult(obs, new_state, reward, jnp.zeros((), bool), truncated, final_obs)

    def observation_space(self, params: MDPParams) -> Space:
        return Box(0.0, 1.0, (self.num_states,))

    def action_space(self, params: MDPParams) -> Space:
        return Discrete(self.num_actions)

    def __repr__(self) -> str:
        return (f"TabularMDP(num_states={self.num_states}, num_actions={self.num_actions}, "
                f"episode_length={self.episode_length})")
