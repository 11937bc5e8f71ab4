"""RL²: trials of sampled tasks (the trial env), and the recurrent agent trained over them."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from metarl.envs import make
from metarl.rl2 import TrialEnv


def _run(env: TrialEnv, steps: int, seed: int = 1):
    obs, state = env.reset(jax.random.PRNGKey(seed), env.default_params)
    step = jax.jit(env.step)

    def body(carry, key):
        state = carry
        out = step(key, state, jnp.asarray(0), env.default_params)
        return out.state, (out.obs, out.reward, out.terminated, out.truncated,
                           out.state.episode, out.state.task)

    keys = jax.random.split(jax.random.PRNGKey(seed + 1), steps)
    return obs, jax.lax.scan(body, state, keys)[1]


def test_a_trial_is_n_episodes_of_one_task_then_a_new_task():
    env = TrialEnv(make("metarl/TabularMDP", episode_length=10), episodes_per_trial=3)
    _, (obs, reward, terminated, truncated, episode, task) = _run(env, 90)
    ends = np.flatnonzero(np.asarray(terminated))
    np.testing.assert_array_equal(ends, [29, 59, 89])  # 3 episodes x 10 steps per trial
    assert not np.asarray(truncated).any()  # nothing is bootstrapped across tasks
    means = np.asarray(task.reward_means)
    assert np.all(means[:29] == means[0]) and not np.allclose(means[30], means[0])
    # the episode-end flag in the observation marks the episode boundaries inside a trial
    flags = np.flatnonzero(np.asarray(obs)[:, -1])
    np.testing.assert_array_equal(flags, [9, 19, 39, 49, 69, 79])


def test_the_agent_sees_its_previous_action_and_reward():
    env = TrialEnv(make("metarl/BernoulliBandit", num_arms=3, trial_length=5), 1)
    first, (obs, reward, *_rest) = _run(env, 4)
    assert first.shape == (1 + 3 + 2,) and not np.asarray(first).any()
    np.testing.assert_array_equal(np.asarray(obs)[:, 1:4], np.tile([1.0, 0.0, 0.0], (4, 1)))
    np.testing.assert_array_equal(np.asarray(obs)[:, 4], np.asarray(reward))


def test_an_env_without_a_task_distribution_is_refused():
    with pytest.raises(ValueError, match="no task distribution"):
        TrialEnv(make("gymnax/CartPole-v1"), 2)
