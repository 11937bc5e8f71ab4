"""RL² task distributions (Bernoulli bandits, random tabular MDPs) and their classic baselines
behave as the papers they come from say they should."""

import itertools

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from metarl import envs
from metarl.envs.bandit import BanditParams, BernoulliBandit
from metarl.envs.env import ResetAheadEnv
from metarl.envs.tabular_mdp import MDPParams, TabularMDP
from metarl.meta_rl import bandit_baselines as bb
from metarl.meta_rl import mdp_baselines as mb


def _key(seed):
    """Philox keys: on this CPU every Threefry call site under vmap costs seconds of compile
    time (a vmapped uniform draw: 2.7 s against 0.07 s), and these tests make many."""
    return jax.random.key(seed, impl="philox2x32")


def _sample_tasks(env, n, seed=0):
    return jax.vmap(env.sample_params)(jax.random.split(_key(seed), n))


def _se(x):
    x = np.asarray(x, np.float64)
    return x.std() / np.sqrt(len(x))


def test_made_by_name_with_the_protocol():
    names = envs.list_envs()
    assert {"metarl/BernoulliBandit", "metarl/TabularMDP"} <= set(names)
    bandit = envs.make("metarl/BernoulliBandit", num_arms=5, trial_length=100)
    mdp = envs.make("metarl/TabularMDP")
    assert (bandit.num_arms, bandit.trial_length) == (5, 100)
    assert (mdp.num_states, mdp.num_actions, mdp.episode_length) == (10, 5, 10)
    for env in (bandit, mdp):
        assert isinstance(env, ResetAheadEnv)
        params = env.default_params
        obs, state = env.reset(_key(0), params)
        assert obs.shape == env.observation_space(params).shape
        # the envs take classic uint32 keys as well as typed ones
        res = env.step(jax.random.PRNGKey(1), state, env.action_space(params).n - 1, params)
        assert res.obs.shape == obs.shape and res.final_obs.shape == obs.shape
        assert res.reward.shape == () and res.reward.dtype == jnp.float32
    probs = jnp.array([0.2, 0.4, 0.6, 0.8, 1.0])
    assert envs.with_params(bandit, {"probs": probs}).probs is probs
    with pytest.raises(envs.EnvParamError, match="probs"):
        envs.with_params(bandit, {"prob": probs})


def test_bandit_rewards_have_the_arms_means():
    env = BernoulliBandit(num_arms=3, trial_length=10)
    params = BanditParams(jnp.array([0.1, 0.5, 0.9]))
    _, state = env.reset(_key(0), params)
    n = 20_000
    keys = jax.random.split(_key(1), n)
    pulls = jax.vmap(lambda k, arm: env.step(k, state, arm, params).reward, in_axes=(0, None))
    rewards = np.asarray(jax.vmap(pulls, in_axes=(None, 0))(keys, jnp.arange(3)))  # (arm, n)
    assert set(np.unique(rewards).tolist()) == {0.0, 1.0}
    for arm, p in enumerate([0.1, 0.5, 0.9]):
        assert abs(rewards[arm].mean() - p) < 5 * np.sqrt(p * (1 - p) / n)


def test_bandit_episode_is_the_whole_trial():
    env = BernoulliBandit(num_arms=2, trial_length=7)
    params = env.default_params
    _, state = env.reset(_key(0), params)

    def pull(state, key):
        res = env.step(key, state, 1, params)
        return res.state, (res.truncated, res.terminated, res.state.time)

    _, (truncated, terminated, time) = jax.lax.scan(
        pull, state, jax.random.split(_key(1), 16))
    assert np.flatnonzero(np.asarray(truncated)).tolist() == [6, 13]
    assert not np.asarray(terminated).any()
    assert np.asarray(time)[:8].tolist() == [1, 2, 3, 4, 5, 6, 0, 1]


def test_tasks_differ_per_env_under_vmap():
    """Per-env params: every env of a batch plays its own task."""
    env = BernoulliBandit(num_arms=2, trial_length=1000)
    params = _sample_tasks(env, 64)
    assert len(np.unique(np.asarray(params.probs[:, 0]))) == 64
    _, state = env.reset(_key(0), env.default_params)  # the same for all tasks
    steps = 800
    keys = jax.random.split(_key(1), (64, steps))
    pulls = jax.vmap(lambda k, p: env.step(k, state, 0, p).reward, in_axes=(0, None))
    rewards = jax.vmap(pulls, in_axes=(0, 0))(keys, params)  # each env on its own task
    p = np.asarray(params.probs[:, 0])
    err = np.abs(np.asarray(rewards.mean(1)) - p)
    assert (err < 5 * np.sqrt(p * (1 - p) / steps) + 1e-3).all()

    mdp = TabularMDP()
    tasks = _sample_tasks(mdp, 512)
    _, state = jax.vmap(mdp.reset)(jax.random.split(_key(2), 512), tasks)
    res = jax.vmap(mdp.step, in_axes=(0, 0, None, 0))(
        jax.random.split(_key(3), 512), state, 2, tasks)
    noise = np.asarray(res.reward - tasks.reward_means[:, 0, 2])
    # each env's reward is centred on its own task's mean, with unit noise
    assert abs(noise.mean()) < 0.2 and abs(noise.std() - 1.0) < 0.1


def test_mdp_env_follows_its_task():
    env = TabularMDP(num_states=4, num_actions=3, episode_length=5)
    params = env.default_params
    np.testing.assert_allclose(params.transitions.sum(-1), 1.0, atol=1e-5)
    obs, state = env.reset(_key(0), params)
    assert obs.tolist() == [1.0, 0.0, 0.0, 0.0]
    n = 20_000
    keys = jax.random.split(_key(1), n)
    res = jax.vmap(lambda k: env.step(k, state, 1, params))(keys)
    nxt = np.asarray(res.state.state)
    np.testing.assert_allclose(np.bincount(nxt, minlength=4) / n, params.transitions[0, 1],
                               atol=0.015)
    assert abs(float(res.reward.mean()) - float(params.reward_means[0, 1])) < 5 / np.sqrt(n)
    np.testing.assert_array_equal(np.asarray(res.obs).argmax(-1), nxt)

    def step(state, key):
        res = env.step(key, state, 0, params)
        return res.state, (res.truncated, res.obs, res.final_obs)

    _, (truncated, obs, final) = jax.lax.scan(step, state,
                                              jax.random.split(_key(2), 10))
    assert np.flatnonzero(np.asarray(truncated)).tolist() == [4, 9]
    assert np.asarray(obs[4]).argmax() == 0  # the next episode starts in state 0 again
    assert np.allclose(np.asarray(final[3]), np.asarray(obs[3]))


@pytest.fixture(scope="module")
def two_armed():
    env = BernoulliBandit(num_arms=2, trial_length=100)
    return _sample_tasks(env, 3000, seed=5), _key(6)


def test_bandit_oracle_and_random_match_closed_forms(two_armed):
    params, key = two_armed
    for policy, closed in ((bb.oracle, bb.oracle_expected_total),
                           (bb.random_policy, bb.random_expected_total)):
        totals = np.asarray(policy(key, params, 100).sum(1))
        gap = totals - np.asarray(closed(params.probs, 100))
        assert abs(gap.mean()) < 4 * _se(gap), policy.__name__
    np.testing.assert_allclose(bb.oracle_expected_total(jnp.array([0.2, 0.7]), 100), 70.0)
    np.testing.assert_allclose(bb.random_expected_total(jnp.array([0.2, 0.7]), 100), 45.0)


def test_thompson_and_ucb_beat_random_and_stay_below_the_oracle(two_armed):
    params, key = two_armed
    total = {name: np.asarray(bb.BASELINES[name](key, params, 100).sum(1))
             for name in ("random", "ucb1", "thompson", "oracle")}
    for name in ("ucb1", "thompson"):
        assert total[name].mean() > total["random"].mean() + 5.0, name
        below = total["oracle"] - total[name]
        assert below.mean() > 4 * _se(below), name


def test_gittins_at_least_as_good_as_thompson(two_armed):
    """Gittins' index is Bayes-optimal for the discounted problem; on 100-pull trials with the
    true prior it should not lose to Thompson sampling (measured: +0.9 ± 0.06 reward)."""
    params, key = two_armed
    gap = np.asarray(bb.gittins(key, params, 100).sum(1)
                     - bb.thompson_sampling(key, params, 100).sum(1))
    assert gap.mean() > 2 * _se(gap), (gap.mean(), _se(gap))


def test_gittins_index_table():
    n = 60
    table = bb.gittins_index_table(n, 0.99)
    s, f = np.meshgrid(np.arange(n + 1), np.arange(n + 1), indexing="ij")
    inside = s + f <= n
    assert np.isnan(table[~inside]).all() and np.isfinite(table[inside]).all()
    mean = (s + 1) / (s + f + 2)
    assert (table[inside] >= mean[inside]).all() and (table[inside] <= 1.0).all()
    # more successes raise the index, more failures lower it
    assert (np.diff(table, axis=0)[inside[1:]] > 0).all()
    assert (np.diff(table, axis=1)[inside[:, 1:]] < 0).all()
    # the exploration bonus grows with the discount (further planning) and shrinks with data
    assert abs(table[0, 0] - 0.8699) < 1e-3
    assert bb.gittins_index_table(n, 0.9)[0, 0] < table[0, 0]
    assert table[10, 10] - 0.5 < table[0, 0] - 0.5


def _brute_force_values(P, R, horizon):
    """Best expected return from each start state over every deterministic time-dependent
    policy, each evaluated exactly by propagating the state distribution."""
    S, A = R.shape
    best = np.full(S, -np.inf)
    for choice in itertools.product(range(A), repeat=S * horizon):
        pi = np.array(choice).reshape(horizon, S)
        for start in range(S):
            dist, ret = np.eye(S)[start], 0.0
            for t in range(horizon):
                ret += dist @ R[np.arange(S), pi[t]]
                dist = dist @ P[np.arange(S), pi[t]]
            best[start] = max(best[start], ret)
    return best


def test_value_iteration_matches_brute_force():
    task = TabularMDP(num_states=2, num_actions=2).default_params
    P, R = np.asarray(task.transitions, np.float64), np.asarray(task.reward_means, np.float64)
    horizon = 4
    Q, V = mb.value_iteration(task.transitions, task.reward_means, horizon)
    assert Q.shape == (horizon, 2, 2) and V.shape == (horizon, 2)
    for t in range(horizon):
        np.testing.assert_allclose(V[t], _brute_force_values(P, R, horizon - t), rtol=1e-5)
    np.testing.assert_allclose(Q[-1], R, rtol=1e-6)


@pytest.fixture(scope="module")
def mdp_returns():
    env = TabularMDP()
    params = _sample_tasks(env, 400, seed=10)
    key = _key(11)
    returns = {name: np.asarray(f(key, params, 10, 10)) for name, f in mb.BASELINES.items()}
    return params, returns


def test_mdp_oracle_matches_value_iteration_and_beats_learners(mdp_returns):
    params, returns = mdp_returns
    v0 = jax.vmap(lambda p: mb.value_iteration(p.transitions, p.reward_means, 10)[1][0, 0])(
        params)
    per_task = returns["oracle"].mean(1) - np.asarray(v0)
    assert abs(per_task.mean()) < 4 * _se(per_task)
    mean = {k: r.mean(1) for k, r in returns.items()}
    for better, worse in (("oracle", "psrl"), ("psrl", "random"), ("oracle", "q_learning"),
                          ("q_learning", "random")):
        gap = mean[better] - mean[worse]
        assert gap.mean() > 4 * _se(gap), (better, worse)


def test_psrl_improves_across_the_episodes_of_a_trial(mdp_returns):
    _, returns = mdp_returns
    first, late = returns["psrl"][:, 0], returns["psrl"][:, 5:].mean(1)
    gain = late - first
    assert gain.mean() > 4 * _se(gain) and gain.mean() > 2.0
    # no learning, no trend: random play's episodes are alike
    drift = returns["random"][:, 5:].mean(1) - returns["random"][:, 0]
    assert abs(drift.mean()) < 4 * _se(drift)


def test_mdp_params_are_a_dataclass_pytree():
    params = TabularMDP(num_states=3, num_actions=2).default_params
    assert isinstance(params, MDPParams)
    leaves = jax.tree.leaves(params)
    assert [leaf.shape for leaf in leaves] == [(3, 2, 3), (3, 2)]
