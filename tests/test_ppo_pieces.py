"""The PPO inner loop in pieces: `make_train` computes bit for bit what the sealed loop it
replaced computed (tests/data/ppo_golden.json, recorded from that code), a run can be paused
and resumed, its hyperparameters changed between steps, and every env can carry its own
params."""

import hashlib
import json
from pathlib import Path

import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest

from metarl.envs import make
from metarl.ppo import PPO, HParams, PPOConfig, make_train

GOLDEN = json.loads((Path(__file__).parent / "data" / "ppo_golden.json").read_text())
CFG = PPOConfig(total_timesteps=6 * 64, num_envs=4, num_steps=16, update_epochs=2,
                num_minibatches=2, hidden_sizes=(16, 16))
HP = HParams(lr=3e-3, ent_coef=0.02)
CASES = {
    "cartpole_default": ("gymnax/CartPole-v1", {}, None),
    "pendulum_default": ("gymnax/Pendulum-v1", {}, None),
    "acrobot_traced_opt": ("gymnax/Acrobot-v1",
                           {"optimizer": lambda hp, m: optax.adam(hp.lr)}, None),
    "cartpole_env_params": ("gymnax/CartPole-v1", {}, {"gravity": 12.0}),
}


def digest(tree) -> str:
    h = hashlib.sha256()
    for leaf in jax.tree.leaves(tree):
        a = np.asarray(leaf)
        h.update(str(a.dtype).encode())
        h.update(str(a.shape).encode())
        h.update(a.tobytes())
    return h.hexdigest()


@pytest.mark.parametrize("case", list(CASES))
def test_make_train_is_bit_identical_to_the_sealed_loop(case):
    env_name, kwargs, params = CASES[case]
    env = make(env_name)
    ep = env.default_params.replace(**params) if params else None
    state, metrics = jax.jit(make_train(CFG, env, **kwargs))(jax.random.PRNGKey(7), None, HP, ep)
    # the first nine fields are the state the old loop had; hparams and env_params are new
    assert digest(tuple(state)[:9]) == GOLDEN[case]["state"]
    assert digest(metrics) == GOLDEN[case]["metrics"]


@pytest.fixture(scope="module")
def cartpole_ppo():
    return PPO(CFG, make("gymnax/CartPole-v1"))


def test_paused_and_resumed_run_equals_one_run(cartpole_ppo):
    ppo = cartpole_ppo
    key = jax.random.PRNGKey(3)
    whole, whole_metrics = jax.jit(ppo.train)(key, None, HP)
    step3 = jax.jit(lambda s: ppo.step(s, None, 3))
    state = jax.jit(ppo.init)(key, None, HP)
    state, first = step3(state)
    state, second = step3(state)
    assert digest(state) == digest(whole)
    joined = jax.tree.map(lambda a, b: jnp.concatenate([a, b]), first, second)
    assert digest(joined) == digest(whole_metrics)


def test_hyperparameters_change_between_steps_without_recompiling(cartpole_ppo):
    ppo = cartpole_ppo
    step = jax.jit(lambda s: ppo.step(s, None, 2))
    state = jax.jit(ppo.init)(jax.random.PRNGKey(0), None, HP)
    frozen, _ = step(state._replace(hparams=state.hparams._replace(lr=jnp.float32(0.0))))
    moved, _ = step(state)
    assert digest(frozen.params) == digest(state.params)  # lr 0: Adam moves nothing
    assert digest(moved.params) != digest(state.params)
    assert step._cache_size() == 1
    assert int(frozen.update) == 2


def test_per_env_params_give_each_env_its_own_task():
    env = make("gymnax/CartPole-v1")
    n = CFG.num_envs
    shared = env.default_params.replace(gravity=jnp.float32(12.0))
    per_env = jax.tree.map(lambda x: jnp.broadcast_to(jnp.asarray(x), (n,)), shared)
    key = jax.random.PRNGKey(1)
    _, m_shared = jax.jit(make_train(CFG, env))(key, None, HP, shared)
    _, m_per_env = jax.jit(make_train(CFG, env, per_env_params=True))(key, None, HP, per_env)
    # the same task in every env: the same run as with shared params
    np.testing.assert_allclose(m_per_env["episode_return"], m_shared["episode_return"],
                               rtol=1e-5)
    # different tasks per env: pole lengths from very short to very long change episodes
    lengths = per_env.replace(length=jnp.array([0.05, 0.5, 2.0, 5.0], jnp.float32))
    ppo = PPO(CFG, env, per_env_params=True)
    state = jax.jit(ppo.init)(key, None, HP, lengths)
    assert state.env_params.length.shape == (n,)
    # move env 0 alone to another level
    levels = lengths.replace(length=jnp.full((n,), 9.0, jnp.float32))
    which = jnp.array([True, False, False, False])
    moved = jax.jit(ppo.reset_envs)(state, jax.random.PRNGKey(5), levels, which)
    np.testing.assert_array_equal(moved.env_params.length, [9.0, 0.5, 2.0, 5.0])
    assert not np.array_equal(moved.obs[0], state.obs[0])
    np.testing.assert_array_equal(moved.obs[1:], state.obs[1:])
