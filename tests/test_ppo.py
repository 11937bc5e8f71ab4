"""PPO learns, vectorises exactly, and takes its objective and optimizer as arguments."""

import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest

from metarl.envs import make
from metarl.ppo import METRIC_NAMES, HParams, PPOConfig, make_train, ppo_clip
from metarl.ppo.packing import Packer

# 64 updates of 4 envs x 128 steps (~33k steps): enough for CartPole returns to rise far above
# random (~22) while compiling quickly (no scan unrolling).
SHORT = PPOConfig(total_timesteps=64 * 512, rollout_unroll=1, minibatch_unroll=1)
TINY = PPOConfig(total_timesteps=2 * 32, num_envs=2, num_steps=16, update_epochs=1,
                 num_minibatches=2, rollout_unroll=1, minibatch_unroll=1)


@pytest.fixture(scope="module")
def cartpole():
    return make("gymnax/CartPole-v1")


@pytest.fixture(scope="module")
def short_train(cartpole):
    return jax.jit(make_train(SHORT, cartpole))


@pytest.fixture(scope="module")
def four_seed_run(short_train):
    keys = jax.random.split(jax.random.PRNGKey(42), 4)
    return keys, jax.jit(jax.vmap(short_train))(keys)


def test_returns_rise_well_above_random(four_seed_run):
    _, (_, metrics) = four_seed_run
    ret = np.asarray(metrics["episode_return"])
    assert ret.shape == (4, SHORT.num_updates)
    assert ret[:, :4].mean() < 40  # random policy: ~22
    assert ret[:, -8:].mean() > 120
    assert set(METRIC_NAMES) <= set(metrics)
    loss = np.asarray(metrics["value_loss"])
    assert np.isfinite(loss).all()


def test_vmapped_seeds_equal_separate_runs(short_train, four_seed_run):
    keys, (_, batched) = four_seed_run
    for i in (0, 3):
        _, single = short_train(keys[i])
        np.testing.assert_allclose(single["episode_return"], batched["episode_return"][i],
                                   rtol=1e-4, atol=1e-3)


def test_vmap_over_hyperparameters(cartpole):
    train = make_train(TINY, cartpole)
    hps = HParams(lr=jnp.array([1e-4, 1e-3, 1e-2]), ent_coef=jnp.array([0.0, 0.01, 0.1]))
    hps = hps._replace(**{f: jnp.full(3, v) for f, v in HParams()._asdict().items()
                          if f not in ("lr", "ent_coef")})
    state, metrics = jax.jit(jax.vmap(train, in_axes=(None, None, 0)))(
        jax.random.PRNGKey(0), None, hps)
    assert metrics["loss"].shape == (3, TINY.num_updates)
    first = jax.tree.leaves(state.params)[0]
    assert not np.allclose(first[0], first[2])  # different learning rates, different weights


def test_objective_receives_meta_params(cartpole):
    def scaled_clip(inputs, meta_params):
        return meta_params["scale"] * ppo_clip(inputs)

    default = jax.jit(make_train(TINY, cartpole))
    custom = jax.jit(make_train(TINY, cartpole, objective=scaled_clip))
    key = jax.random.PRNGKey(1)
    _, m_default = default(key)
    _, m_same = custom(key, {"scale": jnp.float32(1.0)})
    _, m_zero = custom(key, {"scale": jnp.float32(0.0)})
    np.testing.assert_allclose(m_default["loss"], m_same["loss"], rtol=1e-5)
    assert np.all(m_zero["policy_objective"] == 0.0)


def test_optimizer_is_pluggable(cartpole):
    train = jax.jit(make_train(TINY, cartpole, optimizer=optax.sgd(0.0)))
    key = jax.random.PRNGKey(3)
    state, metrics = train(key)
    # sgd with lr 0 never moves the weights, so the policy never changes: ratio stays 1
    assert np.allclose(metrics["approx_kl"], 0.0, atol=1e-7)
    assert np.all(metrics["clip_fraction"] == 0.0)


def test_continuous_actions_pendulum():
    env = make("gymnax/Pendulum-v1")
    state, metrics = jax.jit(make_train(TINY, env))(jax.random.PRNGKey(0))
    assert "log_std" in state.params
    assert np.isfinite(np.asarray(metrics["loss"])).all()
    assert np.asarray(metrics["episode_return"]).shape == (TINY.num_updates,)


def test_bad_config_is_rejected():
    with pytest.raises(ValueError, match="num_minibatches"):
        PPOConfig(num_envs=3, num_steps=5, num_minibatches=4)
    with pytest.raises(ValueError, match="total_timesteps"):
        PPOConfig(total_timesteps=10)


def test_brax_inverted_pendulum_end_to_end():
    env = make("brax/inverted_pendulum")
    cfg = PPOConfig(total_timesteps=3 * 4 * 16, num_envs=4, num_steps=16, update_epochs=1,
                    num_minibatches=2, normalize_obs=True, rollout_unroll=1,
                    minibatch_unroll=1)
    state, metrics = jax.jit(make_train(cfg, env))(jax.random.PRNGKey(0))
    assert int(state.update) == cfg.num_updates
    assert np.isfinite(np.asarray(metrics["loss"])).all()
    assert float(state.obs_stats.count) > cfg.batch_size  # normalisation statistics moved


def test_portable_mulhi_is_bit_exact():
    from metarl.mulhi import mulhi_from_halves

    x = jax.random.bits(jax.random.PRNGKey(0), (4096,), jnp.uint32)
    y = jax.random.bits(jax.random.PRNGKey(1), (4096,), jnp.uint32)
    exact = (np.asarray(x).astype(np.uint64) * np.asarray(y).astype(np.uint64)) >> 32
    np.testing.assert_array_equal(np.asarray(mulhi_from_halves(x, y)), np.asarray(exact))
    # the primitive whose lowering it replaces in sharded programs
    np.testing.assert_array_equal(np.asarray(jax.lax.mulhi(x, y)), np.asarray(exact))


def test_packer_round_trip_is_exact():
    tree = {"x": jnp.array([[1.5, jnp.nan], [-0.0, jnp.inf]], jnp.float32),
            "t": jnp.array([np.iinfo(np.int32).min, 7], jnp.int32),
            "key": jnp.array([[np.iinfo(np.uint32).max, 3]] * 2, jnp.uint32),
            "done": jnp.array([True, False]),
            "grid": jnp.arange(2 * 3 * 2, dtype=jnp.uint8).reshape(2, 3, 2)}
    packer = Packer(tree, batch_ndim=1)
    packed = packer.pack(tree)
    assert [p.dtype for p in packed] == [jnp.float32, jnp.int32]
    assert [p.shape for p in packed] == [(2, 2), (2, 1 + 2 + 1 + 6)]
    back = packer.unpack(packed)
    for name, leaf in tree.items():
        assert back[name].dtype == leaf.dtype and back[name].shape == leaf.shape
        np.testing.assert_array_equal(np.asarray(back[name]), np.asarray(leaf))
    assert np.signbit(np.asarray(back["x"])[1, 0])
    with pytest.raises(TypeError, match="int64"):
        Packer({"a": jax.ShapeDtypeStruct((2,), np.int64)}, batch_ndim=1)
