"""Outer loops behind one interface (ES, PES, truncated ES, meta-gradients) on toy problems:
tiny shapes, exact answers, every step jitted."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from metarl.errors import UserError
from metarl.outer.checkpoint import load_checkpoint, save_checkpoint
from metarl.outer.loop import OuterLoopError
from metarl.outer.problem import Evaluation, TruncatedProblem, full_fitness
from metarl.outer.registry import make_outer_loop

KEY = jax.random.PRNGKey(0)


def jitted(loop):
    return jax.jit(loop.init, static_argnums=2), jax.jit(loop.step, static_argnums=1)


# --- a linear dynamical inner state: x_{t+1} = a * x_t + theta, loss (x - c)^2 per step ---
A, C, STEPS = jnp.array([0.9, 0.5]), jnp.array([1.0, -1.0]), 4


def linear_unroll(theta, x, key):
    def one(x, _):
        x = A * x + theta
        return x, jnp.sum((x - C) ** 2)

    x, losses = jax.lax.scan(one, x, None, length=STEPS)
    return Evaluation(-jnp.mean(losses), {"loss": jnp.mean(losses)}), x


LINEAR = TruncatedProblem(lambda key, theta: jnp.zeros(2), linear_unroll, truncations=6)
THETA = jnp.array([0.3, 0.2])


def averaged_estimate(name, pairs=600, steps=36, burn_in=6):
    """The mean gradient estimate with the mean held fixed, after the shortened first runs."""
    loop = make_outer_loop(name, THETA, population_size=2 * pairs, sigma=0.1,
                           learning_rate=0.0)
    state = loop.init(jax.random.PRNGKey(1), THETA, LINEAR)
    estimate = jax.jit(loop.estimate, static_argnums=1)
    grads = []
    for i in range(steps):
        est = estimate(state, LINEAR)
        state = est.state
        if i >= burn_in:
            grads.append(est.gradient)
    return jnp.mean(jnp.stack(grads), axis=0)


def test_pes_is_unbiased_where_truncated_es_is_not():
    truth = jax.grad(lambda t: full_fitness(LINEAR, t, KEY).fitness)(THETA)
    rel = {name: float(jnp.linalg.norm(averaged_estimate(name) - truth) / jnp.linalg.norm(truth))
           for name in ("pes", "truncated_es")}
    assert rel["pes"] < 0.05, rel
    assert rel["truncated_es"] > 0.3, rel  # measured about 0.7: it misses the carried state


def test_pes_steps_move_the_mean_up_the_objective():
    loop = make_outer_loop("pes", THETA, population_size=64, sigma=0.1, learning_rate=0.05)
    init, step = jitted(loop)
    state = init(KEY, THETA, LINEAR)
    objective = jax.jit(lambda t: full_fitness(LINEAR, t, KEY).fitness)
    for _ in range(60):
        state, report = step(state, LINEAR)
    assert float(objective(loop.mean(state))) > float(objective(THETA)) + 1.0
    assert report.fitness.shape == (64,) and report.population.shape == (64, 2)
    assert {"grad_norm", "truncation", "inner_resets", "nan_skipped"} <= set(report.metrics)


# --- a tiny inner loop: SGD on a quadratic, the meta-parameter its log learning rate ---
H = jnp.array([1.0, 3.0])


def sgd_unroll(log_lr, w, key):
    def one(w, _):
        return w - jnp.exp(log_lr) * H * w, None

    w, _ = jax.lax.scan(one, w, None, length=3)
    return Evaluation(-0.5 * jnp.sum(H * w ** 2), {}), w


def sgd_problem(truncations):
    return TruncatedProblem(lambda key, log_lr: jax.random.normal(key, (2,)) + 2.0,
                            sgd_unroll, truncations)


@pytest.fixture(scope="module")
def meta_gradient():
    return make_outer_loop("meta_gradient", jnp.array(0.0), learning_rate=0.01, batch=3)


@pytest.mark.parametrize("truncations", [1, 3])
def test_meta_gradient_matches_finite_differences(meta_gradient, truncations):
    problem = sgd_problem(truncations)
    init, step = jitted(meta_gradient)
    state = init(KEY, jnp.log(0.1), problem)
    for _ in range(2):  # runs carried part-way: the gradient is through one truncation
        state, _ = step(state, problem)
    est = jax.jit(meta_gradient.estimate, static_argnums=1)(state, problem)
    _, k_unroll, _ = jax.random.split(state.key, 3)
    keys = jax.random.split(k_unroll, 3)
    h = 1e-3
    for i in range(3):
        inner = state.runs.state[i]
        fd = (sgd_unroll(state.mean + h, inner, keys[i])[0].fitness
              - sgd_unroll(state.mean - h, inner, keys[i])[0].fitness) / (2 * h)
        np.testing.assert_allclose(est.gradients[i], fd, rtol=2e-2)


def nan_unroll(meta, x, key):
    # sqrt of a negative: NaN fitness and NaN gradient for every meta-parameter
    return Evaluation(-jnp.sum(meta ** 2) + jnp.sqrt(-1.0 + 0.0 * jnp.sum(meta)), {}), x + 1


def test_nan_meta_gradient_skips_the_update_and_is_counted(meta_gradient):
    problem = TruncatedProblem(lambda key, meta: jnp.zeros(()), nan_unroll, truncations=4)
    init, step = jitted(meta_gradient)
    state = init(KEY, jnp.array(0.5), problem)
    new, report = step(state, problem)
    for name in ("mean", "opt_state", "norms", "clipped"):
        for a, b in zip(jax.tree.leaves(getattr(state, name)),
                        jax.tree.leaves(getattr(new, name)), strict=True):
            np.testing.assert_array_equal(a, b)
    m = report.metrics
    assert int(m["update_skipped"]) == 1 and int(new.skipped) == 1
    assert int(m["nan_skipped"]) == 3 and int(m["inner_resets"]) == 3  # poisoned runs restart
    assert int(step(new, problem)[0].skipped) == 2


def test_meta_gradient_clips_and_flags_an_exploding_gradient():
    problem = sgd_problem(1)
    loop = make_outer_loop("meta_gradient", jnp.array(0.0), learning_rate=0.01,
                           max_grad_norm=1e-3, batch=2, chaos_ratio=5.0, chaos_noise=1e9)
    init, step = jitted(loop)
    state, report = step(init(KEY, jnp.log(0.01), problem), problem)
    assert int(report.metrics["grad_clipped"]) == 1 and int(state.clipped) == 1
    assert float(report.metrics["grad_norm_ratio"]) == 1.0  # no history yet
    # lr exp(0.7) ~ 2 on curvature 3: SGD diverges and the meta-gradient explodes
    state, report = step(state._replace(mean=jnp.array(0.7)), problem)
    assert float(report.metrics["grad_norm_ratio"]) > 5.0 and int(report.metrics["chaotic"]) == 1


# --- evolution strategies by evosax name on a toy quadratic ---
TARGET = {"w": jnp.array([1.0, -2.0, 0.5]), "b": jnp.array(3.0)}


def sphere_loss(meta):
    return sum(jnp.sum((m - t) ** 2) for m, t in
               zip(jax.tree.leaves(meta), jax.tree.leaves(TARGET), strict=True))


def sphere_unroll(meta, count, key):
    return Evaluation(-sphere_loss(meta), {"loss": sphere_loss(meta)}), count + 1


SPHERE = TruncatedProblem(lambda key, meta: jnp.zeros((), jnp.int32), sphere_unroll, 1)
MEAN0 = jax.tree.map(jnp.zeros_like, TARGET)
ES_SETTINGS = {
    "open_es": dict(sigma_init=0.5, learning_rate=0.3),
    "snes": dict(sigma_init=0.5, learning_rate=1.0),
    "cma_es": dict(sigma_init=0.5),
    "pgpe": dict(sigma_init=0.5, learning_rate=0.3, optimizer="adam"),
    "simple_es": dict(sigma_init=0.5, learning_rate=1.0),
    "random": dict(sigma_init=1.0),
    "Sep_CMA_ES": dict(sigma_init=0.5, params={"std_min": 1e-6}),
    "differential_evolution": dict(sigma_init=1.0),  # population-based
}


@pytest.mark.parametrize("name", list(ES_SETTINGS))
def test_es_by_evosax_name_reduces_the_loss(name):
    loop = make_outer_loop(name, MEAN0, population_size=16, **ES_SETTINGS[name])
    init, step = jitted(loop)
    state = init(KEY, MEAN0, SPHERE)
    for _ in range(15):
        state, report = step(state, SPHERE)
    assert float(sphere_loss(loop.mean(state))) < 0.5 * float(sphere_loss(MEAN0))
    assert report.fitness.shape == (16,) and report.info["loss"].shape == (16,)


def test_es_ranks_failed_members_worst():
    def unroll(meta, count, key):  # NaN wherever w[0] > 0.5: the optimum is out of reach
        ev, count = sphere_unroll(meta, count, key)
        return ev._replace(fitness=jnp.where(meta["w"][0] > 0.5, jnp.nan, ev.fitness)), count

    problem = SPHERE._replace(unroll=unroll)
    loop = make_outer_loop("open_es", MEAN0, population_size=16, sigma_init=0.5,
                           learning_rate=0.1)
    init, step = jitted(loop)
    state = init(KEY, MEAN0, problem)
    for _ in range(30):
        state, report = step(state, problem)
    assert int(report.metrics["nan_skipped"]) > 0
    mean = loop.mean(state)
    assert all(bool(jnp.isfinite(x).all()) for x in jax.tree.leaves(mean))
    assert float(mean["w"][0]) < 0.5 and float(sphere_loss(mean)) < float(sphere_loss(MEAN0))


@pytest.mark.parametrize("name, settings, match", [
    ("adam_es", {"population_size": 8}, "unknown outer loop 'adam_es'; allowed: pes, "),
    ("cma_es", {"population_size": 8, "learning_rate": 0.1}, "does not take learning_rate"),
    ("open_es", {"population_size": 8, "params": {"std_x": 1}}, "params std_x unknown"),
    ("pes", {"population_size": 7}, "must be even"),
    ("meta_gradient", {"batch": 2, "sigma": 0.1}, "does not take sigma; its settings: batch"),
    ("persistent_es", {"population_size": 8}, "use outer loop 'pes'"),
])
def test_bad_names_and_settings_are_user_errors(name, settings, match):
    with pytest.raises(OuterLoopError, match=match) as err:
        make_outer_loop(name, MEAN0, **settings)
    assert isinstance(err.value, UserError)


def test_truncated_loops_refuse_an_untruncated_problem():
    loop = make_outer_loop("pes", MEAN0, population_size=4)
    with pytest.raises(OuterLoopError, match="at least 2 truncations"):
        loop.init(KEY, MEAN0, SPHERE)


# --- resume: 2 steps + checkpoint + 2 steps == 4 steps, bit for bit ---
@pytest.mark.parametrize("name, settings, problem, mean", [
    ("cma_es", dict(population_size=8, sigma_init=0.5), SPHERE, MEAN0),
    ("pes", dict(population_size=8, sigma=0.1, learning_rate=0.05), LINEAR, THETA),
    ("meta_gradient", dict(learning_rate=0.05, batch=3), sgd_problem(3), jnp.log(0.1)),
])
def test_resume_is_bit_identical(tmp_path, name, settings, problem, mean):
    loop = make_outer_loop(name, mean, **settings)
    init, step = jitted(loop)
    state = init(KEY, mean, problem)
    straight = state
    for _ in range(4):
        straight, last = step(straight, problem)
    for _ in range(2):
        state, _ = step(state, problem)
    path = save_checkpoint(tmp_path / "outer.npz", state, {"step": 2})
    state, _ = load_checkpoint(path, init(KEY, mean, problem))
    for _ in range(2):
        state, report = step(state, problem)
    for a, b in zip(jax.tree.leaves((straight, last)), jax.tree.leaves((state, report)),
                    strict=True):
        np.testing.assert_array_equal(np.asarray(a), np.asarray(b))
