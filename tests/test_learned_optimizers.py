"""Learned optimizers (metarl.learned_optimizers): optax transformations that start at Adam."""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest

from metarl.errors import UserError
from metarl.learned_optimizers import get_learned_optimizer, make_learned_optimizer

NAMES = ["mlp", "open"]
KEY = jax.random.PRNGKey(0)
PARAMS = {"w": jnp.array([[1.0, -2.0], [0.5, 3.0]]), "b": jnp.array([0.3, -0.7])}
CURVATURE = jnp.array([1.0, 10.0])


def quadratic(params: dict) -> jax.Array:
    return jnp.sum(params["w"] ** 2 * CURVATURE) + jnp.sum(params["b"] ** 2)


def run(tx: optax.GradientTransformation, loss, params, steps: int):
    """`steps` updates in an ordinary optax loop (scanned); the loss after each."""

    def step(carry, _):
        params, state = carry
        grads = jax.grad(loss)(params)
        updates, state = tx.update(grads, state, params)
        params = optax.apply_updates(params, updates)
        return (params, state), loss(params)

    (params, _), losses = jax.lax.scan(step, (params, tx.init(params)), None, length=steps)
    return params, losses


def first_updates(tx: optax.GradientTransformation, params=PARAMS, **extra):
    return tx.update(jax.grad(quadratic)(params), tx.init(params), params, **extra)[0]


def max_diff(a, b) -> float:
    return max(float(jnp.max(jnp.abs(x - y))) for x, y in
               zip(jax.tree.leaves(a), jax.tree.leaves(b), strict=True))


@pytest.mark.parametrize("name", NAMES)
def test_adam_start_equals_optax_adam_for_five_steps(name):
    meta = get_learned_optimizer(name).adam_init_meta(KEY)
    tx, adam = make_learned_optimizer(name, meta, learning_rate=0.1), optax.adam(0.1)
    params, state, ref_params, ref_state = PARAMS, tx.init(PARAMS), PARAMS, adam.init(PARAMS)
    for _ in range(5):
        updates, state = tx.update(jax.grad(quadratic)(params), state, params)
        ref, ref_state = adam.update(jax.grad(quadratic)(ref_params), ref_state, ref_params)
        assert max_diff(updates, ref) <= 1e-5
        params = optax.apply_updates(params, updates)
        ref_params = optax.apply_updates(ref_params, ref)


@pytest.mark.parametrize("name", NAMES)
def test_jit_in_an_optax_chain_minimises_a_quadratic(name):
    """Adam start, behind PPO's gradient clip and under jit: the loss falls by 10x."""
    meta = get_learned_optimizer(name).adam_init_meta(KEY)
    tx = optax.chain(optax.clip_by_global_norm(10.0),
                     make_learned_optimizer(name, meta, learning_rate=0.05, total_steps=300))
    _, losses = jax.jit(lambda: run(tx, quadratic, PARAMS, 300))()
    assert float(losses[-1]) < quadratic(PARAMS) / 10


@pytest.mark.parametrize("name", NAMES)
def test_trains_a_tiny_regression_mlp(name):
    x = jax.random.normal(KEY, (32, 2))
    y = jnp.sin(x[:, :1]) + 0.5 * x[:, 1:]
    init = {"w0": 0.5 * jax.random.normal(jax.random.PRNGKey(1), (2, 8)), "b0": jnp.zeros(8),
            "w1": 0.5 * jax.random.normal(jax.random.PRNGKey(2), (8, 1)), "b1": jnp.zeros(1)}

    def loss(p):
        return jnp.mean((jnp.tanh(x @ p["w0"] + p["b0"]) @ p["w1"] + p["b1"] - y) ** 2)

    meta = get_learned_optimizer(name).adam_init_meta(KEY)
    tx = make_learned_optimizer(name, meta, learning_rate=0.03)
    _, losses = jax.jit(lambda: run(tx, loss, init, 300))()
    assert float(losses[-1]) < loss(init) / 10


@pytest.mark.parametrize("name", NAMES)
def test_vmap_over_a_population_of_meta_params(name):
    family = get_learned_optimizer(name)
    population = jax.vmap(family.init_meta)(jax.random.split(KEY, 3))

    def final_loss(meta):
        tx = make_learned_optimizer(name, meta, learning_rate=0.1)
        return run(tx, quadratic, PARAMS, 5)[1][-1]

    losses = jax.jit(jax.vmap(final_loss))(population)
    assert losses.shape == (3,) and bool(jnp.all(jnp.isfinite(losses)))
    assert len(set(np.asarray(losses).tolist())) == 3  # each member its own optimizer
    np.testing.assert_allclose(losses[1], final_loss(jax.tree.map(lambda m: m[1], population)),
                               rtol=1e-5)


@pytest.mark.parametrize("name", NAMES)
def test_moving_meta_weights_changes_updates(name):
    family = get_learned_optimizer(name)
    at_adam = first_updates(make_learned_optimizer(name, family.adam_init_meta(KEY)))
    moved = first_updates(make_learned_optimizer(name, family.init_meta(KEY)))
    assert max_diff(at_adam, moved) > 1e-6


@pytest.mark.parametrize("name", NAMES)
def test_meta_gradient_over_ten_unrolled_steps_is_finite_and_nonzero(name):
    def meta_loss(meta):
        tx = make_learned_optimizer(name, meta, learning_rate=0.1)
        return quadratic(run(tx, quadratic, PARAMS, 10)[0])

    grads = jax.jit(jax.grad(meta_loss))(get_learned_optimizer(name).adam_init_meta(KEY))
    leaves = jax.tree.leaves(grads)
    assert all(bool(jnp.all(jnp.isfinite(g))) for g in leaves)
    assert sum(float(jnp.sum(jnp.abs(g))) for g in leaves) > 0


def noisy_open_meta():
    """OPEN weights at Adam apart from a constant noise output of 1."""
    meta = get_learned_optimizer("open").adam_init_meta(KEY)
    meta["head"]["b0"] = meta["head"]["b0"].at[2].set(1.0)
    return meta


def test_open_noise_only_on_actor_parameters_and_reproducible_from_seed():
    meta, actor = noisy_open_meta(), {"w": True, "b": False}
    plain = first_updates(make_learned_optimizer("open", meta, learning_rate=0.1))
    noisy = [first_updates(make_learned_optimizer("open", meta, learning_rate=0.1,
                                                  actor_mask=actor, seed=s)) for s in (0, 0, 1)]
    np.testing.assert_array_equal(noisy[0]["b"], plain["b"])  # not the actor's: no noise
    assert float(jnp.max(jnp.abs(noisy[0]["w"] - plain["w"]))) > 1e-3
    np.testing.assert_array_equal(noisy[0]["w"], noisy[1]["w"])  # same seed, same noise
    assert float(jnp.max(jnp.abs(noisy[0]["w"] - noisy[2]["w"]))) > 1e-3


def test_open_noise_key_advances_and_mask_may_be_a_function():
    tx = make_learned_optimizer("open", noisy_open_meta(), learning_rate=0.1,
                                actor_mask=lambda p: {"w": True, "b": False})
    state = tx.init(PARAMS)
    grads = jax.grad(quadratic)(PARAMS)
    first, state = tx.update(grads, state, PARAMS)
    second, _ = tx.update(grads, state, PARAMS)
    assert float(jnp.max(jnp.abs(first["w"] - second["w"]))) > 1e-3


def test_open_reads_its_rl_inputs():
    """Training proportion, batch proportion and dormancy all reach the network."""
    meta = get_learned_optimizer("open").init_meta(KEY, output_scale=1.0)
    tx = make_learned_optimizer("open", meta)
    base = first_updates(tx)
    for extra in ({"progress": 0.7}, {"batch_proportion": 0.5},
                  {"dormancy": {"w": jnp.ones((2, 2)), "b": 1.0}}):
        assert max_diff(first_updates(tx, **extra), base) > 1e-7, extra


def test_mlp_progress_from_total_steps_or_extra_argument():
    meta = get_learned_optimizer("mlp").init_meta(KEY, output_scale=1.0)
    base = first_updates(make_learned_optimizer("mlp", meta))
    assert max_diff(first_updates(make_learned_optimizer("mlp", meta), progress=0.9), base) > 0
    late = make_learned_optimizer("mlp", meta, total_steps=1)  # progress 1 after one step
    assert max_diff(first_updates(late), base) > 0


def test_unknown_name_or_setting_is_a_user_error_naming_the_choices():
    with pytest.raises(UserError, match="mlp, open"):
        make_learned_optimizer("velo", {})
    meta = get_learned_optimizer("mlp").adam_init_meta(KEY)
    with pytest.raises(UserError, match="learning_rate"):
        make_learned_optimizer("mlp", meta, lr=0.1)


def test_in_ppo_optimizer_slot_the_adam_start_is_ppo_with_adam():
    from metarl.envs import make
    from metarl.ppo import PPOConfig, make_train

    config = PPOConfig(total_timesteps=2 * 32, num_envs=2, num_steps=16, update_epochs=1,
                       num_minibatches=2, rollout_unroll=1, minibatch_unroll=1, anneal_lr=False)
    env = make("gymnax/CartPole-v1")
    learned = make_train(config, env, optimizer=lambda hp, meta: make_learned_optimizer(
        "mlp", meta, learning_rate=hp.lr, eps=1e-5))
    meta = get_learned_optimizer("mlp").adam_init_meta(KEY)
    state, metrics = jax.jit(learned)(KEY, meta)
    ref_state, ref_metrics = jax.jit(make_train(config, env))(KEY)
    np.testing.assert_allclose(metrics["loss"], ref_metrics["loss"], rtol=1e-5, atol=1e-6)
    assert max_diff(state.params, ref_state.params) <= 1e-5
