"""The supervised inner loop: every family learns, members and data are deterministic, bad
settings are named, and a learned optimizer in the slot matches Adam and gets meta-gradients."""

import math
import socket

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from metarl.errors import UserError
from metarl.learned_optimizers import get_learned_optimizer, make_learned_optimizer
from metarl.supervised import (
    FAMILY_NAMES,
    Supervised,
    SupervisedHParams,
    TaskConfig,
    is_supervised,
    log_improvement,
    member,
)
from metarl.supervised import data as datasets
from metarl.supervised.spec import SupervisedInner

STEPS = 150


@pytest.mark.parametrize("family", FAMILY_NAMES)
def test_loss_falls_with_adam_on_every_family(family):
    sup = Supervised(member(family, 0), STEPS)
    lr = 1e-2 if family == "quadratic" else 3e-3
    state, metrics = jax.jit(sup.train)(jax.random.PRNGKey(0), hparams=SupervisedHParams(lr))
    loss = metrics["loss"]
    assert loss.shape == (STEPS,) and metrics["score"].shape == (STEPS,)
    assert loss[-20:].mean() < 0.8 * loss[:10].mean(), loss
    assert metrics["score"][-20:].mean() > 0.2
    assert sup.test_loss(state) < state.initial_loss


def test_vmap_over_seeds_matches_single_runs():
    sup = Supervised(member("quadratic", 1), 20)
    keys = jax.random.split(jax.random.PRNGKey(3), 2)
    _, batched = jax.jit(jax.vmap(sup.train))(keys)
    single = jax.jit(sup.train)
    for i in range(2):
        np.testing.assert_allclose(batched["loss"][i], single(keys[i])[1]["loss"], rtol=1e-5)


def test_members_are_deterministic_and_differ_across_indices():
    for family in FAMILY_NAMES:
        draws = [member(family, i) for i in range(6)]
        assert draws == [member(family, i) for i in range(6)]
        assert len(set(draws)) > 1, family
        assert all(d.family == family for d in draws)


def test_overrides_fix_fields_and_accept_toml_forms():
    cfg = member("mnist1d_cnn", 3, channels="8,16", hidden_sizes=32, batch_size=16)
    assert (cfg.channels, cfg.hidden_sizes, cfg.batch_size) == ((8, 16), (32,), 16)
    assert member("digits_mlp", 0, hidden_sizes="").hidden_sizes == ()
    assert member("quadratic", 2, dim=4).dim == 4


@pytest.mark.parametrize(("call", "names"), [
    (lambda: member("imagenet"), ["imagenet", *FAMILY_NAMES]),
    (lambda: member("digits_mlp", 0, width=3), ["width", "hidden_sizes"]),
    (lambda: member("digits_mlp", 0, activation="sigmoid"), ["activation", "gelu"]),
    (lambda: member("digits_mlp", 0, batch_size=0), ["batch_size", ">= 1"]),
    (lambda: member("digits_mlp", 0, hidden_sizes="64,x"), ["hidden_sizes"]),
    (lambda: member("digits_mlp", 0, model="cnn"), ["channels"]),
    (lambda: member("regression_mlp", 0, model="cnn", channels=4), ["cnn", "digits"]),
    (lambda: member("quadratic", 0, condition=0.5), ["condition", ">= 1"]),
    (lambda: member("digits_mlp", -1), ["member"]),
    (lambda: Supervised(member("digits_mlp", 0, batch_size=10**6), 5), ["batch_size"]),
])
def test_bad_settings_are_user_errors_naming_them(call, names):
    with pytest.raises(UserError) as err:
        call()
    for name in names:
        assert name in str(err.value)


def test_data_is_generated_locally_and_deterministic(monkeypatch):
    def no_network(*args, **kwargs):
        raise AssertionError("a dataset tried to open a socket")

    monkeypatch.setattr(socket, "socket", no_network)
    monkeypatch.setattr(socket, "create_connection", no_network)
    for loader, kwargs in ((datasets.digits, {}),
                           (datasets.mnist1d, {"num_train": 40, "num_test": 10}),
                           (datasets.regression, {"num_train": 40, "num_test": 10})):
        first = loader(seed=7, **kwargs)
        loader.cache_clear()
        again = loader(seed=7, **kwargs)
        other = loader(seed=8, **kwargs)
        for a, b in zip(first, again, strict=True):
            np.testing.assert_array_equal(a, b)
            assert not a.flags.writeable
        assert not np.array_equal(first.x_train, other.x_train)
        assert first.x_train.dtype == np.float32
    digits = datasets.digits(0)
    assert digits.x_train.shape[1:] == (8, 8, 1) and 0 <= digits.x_train.min()
    assert digits.x_train.max() <= 1
    assert datasets.mnist1d(7, 40, 10).x_train.shape == (40, 40, 1)


@pytest.fixture(scope="module")
def learned_vs_adam():
    """Losses of Adam and of the MLP learned optimizer at its Adam start on one task, and the
    meta-gradient of the learned run, from one compiled program each."""
    # few weight tensors: the learned optimizer's program grows with their number
    task = member("regression_mlp", 0, hidden_sizes=(8,), batch_size=32)
    steps = 8
    meta = get_learned_optimizer("mlp").adam_init_meta(jax.random.PRNGKey(1))

    def factory(hp, meta_params):
        # eps_root > 0: d sqrt(v)/dv is infinite at v = 0 (any weight whose gradient is zero,
        # e.g. on an always-blank pixel), which would make the meta-gradient NaN
        return make_learned_optimizer("mlp", meta_params, learning_rate=hp.lr,
                                      total_steps=steps, eps_root=1e-16)

    learned = Supervised(task, steps, factory)
    key = jax.random.PRNGKey(0)

    def objective(meta_params):
        state, metrics = learned.train(key, meta_params)
        return learned.meta_objective(state), metrics["loss"]

    (value, losses), grads = jax.jit(jax.value_and_grad(objective, has_aux=True))(meta)
    adam_losses = jax.jit(Supervised(task, steps).train)(key)[1]["loss"]
    return adam_losses, losses, value, grads


def test_learned_optimizer_at_adam_start_matches_adam(learned_vs_adam):
    adam_losses, losses, _, _ = learned_vs_adam
    np.testing.assert_allclose(losses, adam_losses, atol=1e-5, rtol=1e-5)


def test_meta_gradient_through_the_updates_is_finite_and_nonzero(learned_vs_adam):
    _, _, value, grads = learned_vs_adam
    flat = jnp.concatenate([g.ravel() for g in jax.tree.leaves(grads)])
    assert np.isfinite(value) and np.all(np.isfinite(flat))
    assert float(jnp.abs(flat).max()) > 0


def test_score_is_clipped_when_a_run_diverges():
    sup = Supervised(member("quadratic", 0), 10)
    state, metrics = jax.jit(sup.train)(jax.random.PRNGKey(0), hparams=SupervisedHParams(1e6))
    score = np.asarray(sup.score(metrics))
    assert np.all(np.isfinite(score))
    assert score[-1] == pytest.approx(-math.log(10.0), abs=1e-5)
    assert float(log_improvement(jnp.nan, jnp.float32(2.0))) == pytest.approx(-math.log(10.0))
    assert float(log_improvement(jnp.inf, jnp.float32(2.0))) == pytest.approx(-math.log(10.0))
    assert np.isfinite(float(log_improvement(jnp.float32(0.0), jnp.float32(2.0))))
    assert state.update == 10


def test_inner_section_builds_the_member_a_task_names():
    inner = SupervisedInner(lr=0.01, seeds=2)
    assert (inner.algorithm, inner.steps_per_update, inner.update_size_name) == (
        "supervised", 1, "one optimizer step")
    assert inner.hparams() == SupervisedHParams(0.01)

    class Task:
        env = "supervised/regression_mlp"
        env_kwargs = {"member": 4, "hidden_sizes": "8", "activation": "tanh"}
        timesteps = 12

    sup = inner.build(Task())
    assert isinstance(sup.task, TaskConfig) and sup.config.num_updates == 12
    assert sup.task == member("regression_mlp", 4, hidden_sizes=(8,), activation="tanh")
    assert sup.config.batch_size == sup.task.batch_size
    assert inner.optimizer_steps(Task()) == 12 and inner.task_mismatch(Task()) is None
    Task.env_kwargs = {"width": 3}
    with pytest.raises(UserError, match="train\\[0\\]: unknown task field"):
        inner.check_task(Task(), "train[0]")
    Task.env = "gymnax/CartPole-v1"
    with pytest.raises(UserError, match="supervised/<family>"):
        inner.build(Task())
    assert "not a supervised task" in inner.task_mismatch(Task())
    assert is_supervised("supervised/quadratic") and not is_supervised("gymnax/CartPole-v1")
    with pytest.raises(ValueError, match="lr"):
        SupervisedInner(lr=0.0)
