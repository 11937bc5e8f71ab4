"""Classic policies for a batch of random tabular MDP tasks over RL² trials of several
episodes, the reference points of RL²'s MDP experiments (Duan et al. 2016, Table 2).

Every policy is a pure, jitted `(key, params, num_episodes, episode_length) -> returns` with
`params` an `MDPParams` whose arrays have a leading task axis, and `returns` of shape
`(tasks, num_episodes)`: the undiscounted return of each episode of one trial per task. What
a learner knows carries over from episode to episode of its trial, never between tasks.

As for the bandits, the env's randomness is a tape drawn from `key` (one uniform for the next
state and one normal for the reward noise per task, episode and step), pushed through the
env's own `transition`, so policies run on the same key share their luck.
"""

from __future__ import annotations

from collections.abc import Callable
from functools import partial
from typing import Any, NamedTuple

import jax
import jax.numpy as jnp

from metarl.envs.tabular_mdp import (
    DIRICHLET_ALPHA,
    REWARD_MEAN_LOC,
    REWARD_MEAN_SCALE,
    REWARD_NOISE_STD,
    START_STATE,
    MDPParams,
    transition,
)

PyTree = Any


def value_iteration(P: jax.Array, R: jax.Array, horizon: int) -> tuple[jax.Array, jax.Array]:
    """Finite-horizon, undiscounted value iteration (Bellman 1957) by backward induction.

    `P[s, a, s']` transition probabilities, `R[s, a]` expected rewards. Returns `Q` of shape
    `(horizon, S, A)` and `V` of shape `(horizon, S)`, indexed by the step `t` of the episode
    (`horizon - t` steps to go): `Q[t, s, a]` is the expected return of `a` in `s` at step `t`
    followed by optimal play, `V[t] = max_a Q[t]`. `V[0, s]` is the optimal episode return
    from `s`. `horizon` must be static under `jit`.
    """
    def back(v_next: jax.Array, _: None) -> tuple[jax.Array, tuple[jax.Array, jax.Array]]:
        q = R + jnp.einsum("sap,p->sa", P, v_next)
        v = jnp.max(q, axis=-1)
        return v, (q, v)

    _, (Q, V) = jax.lax.scan(back, jnp.zeros(P.shape[0], R.dtype), None, length=horizon,
                             reverse=True)
    return Q, V


class _Agent(NamedTuple):
    """A learner as pure functions over its own `stats` pytree: `init(S, A)`, a `plan` made at
    the start of each episode, an action per step, and a learning update per transition."""

    init: Callable[[int, int], PyTree]
    plan: Callable[[jax.Array, PyTree, MDPParams, int], PyTree]
    act: Callable[[jax.Array, PyTree, PyTree, jax.Array, jax.Array], jax.Array]
    learn: Callable[[PyTree, jax.Array, jax.Array, jax.Array, jax.Array], PyTree]


def _no_learning(stats: PyTree, s: jax.Array, a: jax.Array, r: jax.Array,
                 s_next: jax.Array) -> PyTree:
    return stats


def _play(agent: _Agent, key: jax.Array, params: MDPParams, num_episodes: int,
          episode_length: int) -> jax.Array:
    tasks, num_states, num_actions = params.reward_means.shape
    k_u, k_n, k_plan, k_act = jax.random.split(key, 4)
    shape = (tasks, num_episodes, episode_length)
    uniforms = jax.random.uniform(k_u, shape)
    noises = jax.random.normal(k_n, shape)
    # every key the agent will use, drawn in one go: with classic keys a split inside the loops
    # compiles to a Threefry loop per call site; drawing them here (and one draw per step, no
    # `randint`) halved compile times (Q-learning: 8.4 s to 3.2 s)
    plan_keys = jax.random.split(k_plan, shape[:2])
    act_keys = jax.random.split(k_act, shape)

    def one_task(task: MDPParams, plan_keys: jax.Array, act_keys: jax.Array,
                 uniforms: jax.Array, noises: jax.Array) -> jax.Array:
        def episode(stats, xs):
            k_plan, k_act, us, ns = xs
            plan = agent.plan(k_plan, stats, task, episode_length)

            def step(carry, xs):
                stats, s = carry
                k, u, noise, t = xs
                a = agent.act(k, stats, plan, s, t)
                s_next, r = transition(task, s, a, u, noise)
                return (agent.learn(stats, s, a, r, s_next), s_next), r

            start = jnp.asarray(START_STATE, jnp.int32)
            xs = (k_act, us, ns, jnp.arange(episode_length))
            (stats, _), rewards = jax.lax.scan(step, (stats, start), xs)
            return stats, jnp.sum(rewards)

        xs = (plan_keys, act_keys, uniforms, noises)
        _, returns = jax.lax.scan(episode, agent.init(num_states, num_actions), xs)
        return returns

    return jax.vmap(one_task)(params, plan_keys, act_keys, uniforms, noises)


def _uniform_action(u: jax.Array, num_actions: int) -> jax.Array:
    """An action from one U[0, 1) draw: cheaper to compile than `randint`, which draws twice
    as many bits to stay unbiased for any range."""
    return jnp.minimum((u * num_actions).astype(jnp.int32), num_actions - 1)


_STATIC = ("num_episodes", "episode_length")


@partial(jax.jit, static_argnames=_STATIC)
def random_policy(key: jax.Array, params: MDPParams, num_episodes: int,
                  episode_length: int) -> jax.Array:
    """Uniformly random actions."""
    agent = _Agent(
        init=lambda S, A: jnp.zeros((A,)),  # only its shape is used: the number of actions
        plan=lambda k, stats, task, h: None,
        act=lambda k, stats, plan, s, t: _uniform_action(jax.random.uniform(k),
                                                         stats.shape[0]),
        learn=_no_learning)
    return _play(agent, key, params, num_episodes, episode_length)


@partial(jax.jit, static_argnames=_STATIC)
def oracle(key: jax.Array, params: MDPParams, num_episodes: int,
           episode_length: int) -> jax.Array:
    """Optimal play with the true MDP known: greedy on finite-horizon value iteration of the
    task itself (`value_iteration`), so its expected episode return is `V[0, START_STATE]`."""
    agent = _Agent(
        init=lambda S, A: None,
        plan=lambda k, stats, task, h: value_iteration(task.transitions, task.reward_means,
                                                       h)[0],
        act=lambda k, stats, q, s, t: jnp.argmax(q[t, s]),
        learn=_no_learning)
    return _play(agent, key, params, num_episodes, episode_length)


class _Posterior(NamedTuple):
    counts: jax.Array  # (S, A, S) observed transitions
    reward_sum: jax.Array  # (S, A)
    visits: jax.Array  # (S, A)


@partial(jax.jit, static_argnames=_STATIC)
def psrl(key: jax.Array, params: MDPParams, num_episodes: int, episode_length: int,
         dirichlet_alpha: float = DIRICHLET_ALPHA, reward_mean_loc: float = REWARD_MEAN_LOC,
         reward_mean_scale: float = REWARD_MEAN_SCALE,
         reward_noise_std: float = REWARD_NOISE_STD) -> jax.Array:
    """Posterior sampling for RL (Osband, Russo & Van Roy 2013, "(More) Efficient Reinforcement
    Learning via Posterior Sampling"). At the start of each episode, sample an MDP from the
    posterior — transitions from Dirichlet(alpha + counts) per (s, a), mean rewards from the
    conjugate Normal posterior of a N(loc, scale²) prior under N(mean, noise_std²) rewards —
    and follow the sample's optimal finite-horizon policy for the episode. The defaults are the
    task distribution's own prior (`metarl.envs.tabular_mdp`), the setting most favourable to
    a Bayesian method, as Duan et al. note."""
    prior_precision = 1.0 / reward_mean_scale**2
    noise_precision = 1.0 / reward_noise_std**2

    def init(S: int, A: int) -> _Posterior:
        return _Posterior(jnp.zeros((S, A, S)), jnp.zeros((S, A)), jnp.zeros((S, A)))

    def plan(k: jax.Array, post: _Posterior, task: MDPParams, h: int) -> jax.Array:
        k_p, k_r = jax.random.split(k)
        P = jax.random.dirichlet(k_p, dirichlet_alpha + post.counts)
        precision = prior_precision + noise_precision * post.visits
        mean = (prior_precision * reward_mean_loc + noise_precision * post.reward_sum) / precision
        R = mean + jax.random.normal(k_r, mean.shape) / jnp.sqrt(precision)
        return value_iteration(P, R, h)[0]

    def learn(post: _Posterior, s, a, r, s_next) -> _Posterior:
        return _Posterior(post.counts.at[s, a, s_next].add(1.0),
                          post.reward_sum.at[s, a].add(r), post.visits.at[s, a].add(1.0))

    agent = _Agent(init=init, plan=plan, act=lambda k, post, q, s, t: jnp.argmax(q[t, s]),
                   learn=learn)
    return _play(agent, key, params, num_episodes, episode_length)


@partial(jax.jit, static_argnames=_STATIC)
def q_learning(key: jax.Array, params: MDPParams, num_episodes: int, episode_length: int,
               epsilon: float = 0.1, learning_rate: float = 0.1,
               discount: float = 0.9) -> jax.Array:
    """Tabular Q-learning (Watkins 1989; Watkins & Dayan 1992) with ε-greedy actions, one
    stationary table `Q[s, a]` initialised to 0 and kept across the trial's episodes.

    Episode ends are time limits, not terminal states, so every update bootstraps:
    `Q[s, a] += lr * (r + discount * max Q[s'] - Q[s, a])`. `discount` 0.9 gives an effective
    horizon of about 10 steps, the episode length of Duan et al.'s MDPs; `epsilon` 0.1 and
    `learning_rate` 0.1 are common defaults, not tuned.
    """
    def act(k: jax.Array, q: jax.Array, plan: None, s: jax.Array, t: jax.Array) -> jax.Array:
        num_actions = q.shape[1]
        u = jax.random.uniform(k, (num_actions + 2,))  # one draw: explore?, which, tie-break
        best = q[s] >= jnp.max(q[s])
        greedy = jnp.argmax(jnp.where(best, u[2:], -1.0))
        return jnp.where(u[0] < epsilon, _uniform_action(u[1], num_actions), greedy)

    def learn(q: jax.Array, s, a, r, s_next) -> jax.Array:
        target = r + discount * jnp.max(q[s_next])
        return q.at[s, a].add(learning_rate * (target - q[s, a]))

    agent = _Agent(init=lambda S, A: jnp.zeros((S, A)), plan=lambda k, q, task, h: None,
                   act=act, learn=learn)
    return _play(agent, key, params, num_episodes, episode_length)


BASELINES: dict[str, Callable[..., jax.Array]] = {
    "random": random_policy, "q_learning": q_learning, "psrl": psrl, "oracle": oracle,
}
