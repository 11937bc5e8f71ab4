import subprocess
import sys

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from metarl import envs
from metarl.envs import Box, Discrete, EnvParamError, UnknownEnvError


def test_registry_lists_gymnax_and_brax_names():
    names = envs.list_envs()
    for name in ("gymnax/CartPole-v1", "gymnax/Acrobot-v1", "gymnax/Pendulum-v1",
                 "gymnax/MountainCarContinuous-v0", "gymnax/Breakout-MinAtar",
                 "gymnax/SpaceInvaders-MinAtar", "gymnax/BernoulliBandit-misc", "brax/ant",
                 "brax/inverted_pendulum"):
        assert name in names


def test_static_names_match_the_libraries():
    """metarl lists env names without importing gymnax or brax; they must stay in step."""
    import gymnax
    from brax import envs as brax_envs

    from metarl.envs.names import BRAX_NAMES, GYMNAX_IDS

    assert set(GYMNAX_IDS) <= set(gymnax.registered_envs)
    # brax has no public listing; its registry dict is what get_environment reads
    assert sorted(BRAX_NAMES) == sorted(brax_envs._envs)


def test_listing_names_imports_no_jax():
    code = ("import sys; from metarl.envs import list_envs, check_env_name; "
            "check_env_name('gymnax/CartPole-v1'); assert len(list_envs()) > 30; "
            "assert 'jax' not in sys.modules, 'jax imported'")
    subprocess.run([sys.executable, "-c", code], check=True)


def test_unknown_name_lists_closest():
    with pytest.raises(UnknownEnvError, match="gymnax/CartPole-v1"):
        envs.make("gymnax/cartpole-v1")
    with pytest.raises(UnknownEnvError, match="brax/ant"):
        envs.make("brax/antt")


def test_env_param_overrides_are_checked():
    env = envs.make("gymnax/CartPole-v1")
    assert envs.with_params(env, {"gravity": 3.0}).gravity == 3.0
    with pytest.raises(EnvParamError, match="gravity"):
        envs.with_params(env, {"gravty": 3.0})


@pytest.mark.parametrize("name,space", [
    ("gymnax/CartPole-v1", Discrete), ("gymnax/Pendulum-v1", Box),
    ("gymnax/Breakout-MinAtar", Discrete), ("gymnax/BernoulliBandit-misc", Discrete),
])
def test_reset_step_shapes(name, space):
    env = envs.make(name)
    params = env.default_params
    obs, state = env.reset(jax.random.PRNGKey(0), params)
    assert obs.shape == env.observation_space(params).shape
    action_space = env.action_space(params)
    assert isinstance(action_space, space)
    res = env.step(jax.random.PRNGKey(1), state, action_space.sample(jax.random.PRNGKey(2)),
                   params)
    assert res.obs.shape == obs.shape and res.final_obs.shape == obs.shape
    assert res.reward.shape == () and res.terminated.dtype == jnp.bool_


def test_automatic_reset_and_final_obs():
    env = envs.make("gymnax/CartPole-v1")
    params = envs.with_params(env, {"max_steps_in_episode": 5})
    obs, state = env.reset(jax.random.PRNGKey(0), params)

    def step(carry, key):
        state, _ = carry
        res = env.step(key, state, 0, params)
        return (res.state, res.obs), res

    _, res = jax.lax.scan(step, (state, obs), jax.random.split(jax.random.PRNGKey(1), 12))
    done = np.asarray(res.done)
    assert done.any()
    t = int(np.argmax(done))
    # after an episode ends, `obs` is a fresh start and `final_obs` the true last observation
    assert not np.allclose(res.obs[t], res.final_obs[t])
    assert np.allclose(res.obs[t - 1], res.final_obs[t - 1])
    assert bool(res.truncated[4]) and not bool(res.terminated[4])


def test_task_distribution_is_a_vmap_over_params():
    env = envs.make("gymnax/CartPole-v1")
    gravities = jnp.array([1.0, 9.8, 30.0])
    params = jax.vmap(lambda g: env.default_params.replace(gravity=g))(gravities)
    _, state = jax.vmap(env.reset, in_axes=(None, 0))(jax.random.PRNGKey(0), params)
    res = jax.vmap(env.step, in_axes=(None, 0, None, 0))(jax.random.PRNGKey(1), state, 1, params)
    theta_dot = np.asarray(res.state.theta_dot)
    assert len(set(np.round(theta_dot, 6))) == 3  # the dynamics differ per task


def test_running_observation_stats():
    from metarl.envs.normalize import init_stats, normalize, update_stats

    data = jax.random.normal(jax.random.PRNGKey(0), (4, 500, 3)) * 3.0 + 2.0
    stats = init_stats((3,))
    for chunk in data:
        stats = update_stats(stats, chunk)
    np.testing.assert_allclose(stats.mean, data.reshape(-1, 3).mean(0), atol=1e-3)
    np.testing.assert_allclose(stats.var, data.reshape(-1, 3).var(0), rtol=1e-3)
    z = normalize(stats, data.reshape(-1, 3))
    np.testing.assert_allclose(z.std(0), 1.0, atol=1e-2)
