"""The outer loop on toy fitness functions: cheap to compile, exact to check."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from metarl.outer import (
    Evaluation,
    TruncatedProblem,
    init_search_state,
    load_checkpoint,
    make_outer_loop,
    make_search_step,
    population_mesh,
    save_checkpoint,
)
from metarl.outer.checkpoint import CheckpointError
from metarl.outer.settings import allowed_settings, loop_settings

TARGET = {"w": jnp.array([1.0, -2.0, 0.5]), "b": jnp.array(3.0)}


def sphere(member):
    """Fitness to maximise: minus the squared distance to TARGET; NaN where w[0] > 4."""
    sq = sum(jnp.sum((p - t) ** 2)
             for p, t in zip(jax.tree.leaves(member), jax.tree.leaves(TARGET), strict=True))
    return jnp.where(member["w"][0] > 4.0, jnp.nan, -sq)


def problem_of(fitness):
    """A one-truncation problem whose fitness is a formula of the member."""
    def unroll(meta, state, key):
        f = fitness(meta)
        return Evaluation(f, f[None]), state

    return TruncatedProblem(lambda key, meta: jnp.zeros(()), unroll)


def make_loop(algorithm, mean, pop=16, devices=None, sigma_init=0.5, learning_rate=0.1):
    values = {"population_size": pop, "sigma_init": sigma_init, "learning_rate": learning_rate}
    settings = loop_settings(algorithm, values, explicit=())
    allowed = allowed_settings(algorithm)
    if "mesh" in allowed:
        settings["mesh"] = population_mesh(pop, devices)
    if "sample" in allowed:
        settings["sample"] = lambda k: jax.tree.map(
            lambda t: 3 * jax.random.normal(k, t.shape), TARGET)
    return make_outer_loop(algorithm, mean, **settings)


def run(algorithm, generations=60, devices=None, pop=16):
    mean = jax.tree.map(jnp.zeros_like, TARGET)
    loop, problem = make_loop(algorithm, mean, pop, devices), problem_of(sphere)
    step = jax.jit(make_search_step(loop, problem))
    state = init_search_state(loop, jax.random.PRNGKey(0), mean, problem)
    outs = []
    for _ in range(generations):
        state, out = step(state)
        outs.append(out)
    return loop, state, outs


@pytest.mark.parametrize("algorithm", ["open_es", "snes", "cma_es", "random"])
def test_strategies_improve_fitness(algorithm):
    loop, state, outs = run(algorithm)
    first = float(jnp.nanmean(outs[0].fitness))
    assert float(state.best_fitness) > first + 1.0
    if algorithm != "random":  # the search distribution itself moved to the optimum
        mean = loop.mean(state.loop)
        dist = sum(float(jnp.sum((m - t) ** 2)) for m, t in
                   zip(jax.tree.leaves(mean), jax.tree.leaves(TARGET), strict=True))
        assert dist < 0.5 * 15.25  # 15.25: squared distance from the start
    assert int(state.generation) == len(outs)


def test_nan_fitness_is_ranked_worst_and_counted():
    mean = {"w": jnp.array([5.0, -2.0, 0.5]), "b": jnp.array(3.0)}  # starts in the NaN region
    loop = make_loop("open_es", mean, sigma_init=1.0, learning_rate=0.3)
    problem = problem_of(sphere)
    step = jax.jit(make_search_step(loop, problem))
    state = init_search_state(loop, jax.random.PRNGKey(1), mean, problem)
    invalid = []
    for _ in range(30):
        state, out = step(state)
        invalid.append(int(out.invalid.sum()))
    assert invalid[0] > 0 and invalid[-1] < invalid[0]
    assert np.isfinite(float(state.best_fitness))
    assert float(loop.mean(state.loop)["w"][0]) < 4.0  # moved out of the NaN region


def test_checkpoint_roundtrip_and_mismatch(tmp_path):
    _, state, _ = run("cma_es", generations=3)
    path = save_checkpoint(tmp_path / "c.npz", state, {"generation": 3, "history": [1, 2]})
    restored, host = load_checkpoint(path, state)
    assert host["history"] == [1, 2]
    for a, b in zip(jax.tree.leaves(state), jax.tree.leaves(restored), strict=True):
        np.testing.assert_array_equal(np.asarray(a), np.asarray(b))
    _, other, _ = run("open_es", generations=1)
    with pytest.raises(CheckpointError, match="does not match"):
        load_checkpoint(path, other)
    (tmp_path / "bad.npz").write_bytes(b"garbage")
    with pytest.raises(CheckpointError, match="not a readable"):
        load_checkpoint(tmp_path / "bad.npz", state)


@pytest.mark.parametrize("log", [False, True])
def test_hyperparameters_logged_from_the_host_equal_those_trained_with(log):
    from metarl.programs.ranges import unit_to_range
    from metarl.spec.schema import Range

    r = Range(low=1e-5, high=3e-2, log=True) if log else Range(low=0.05, high=0.5)
    z = np.linspace(-8.0, 8.0, 101, dtype=np.float32)
    np.testing.assert_allclose(unit_to_range(z, r, np),
                               np.asarray(unit_to_range(jnp.asarray(z), r)), rtol=2e-6)


@pytest.mark.parametrize("algorithm", ["open_es", "snes", "cma_es"])
def test_a_generation_without_valid_members_leaves_the_strategy_as_it_was(algorithm):
    mean = jax.tree.map(jnp.zeros_like, TARGET)
    loop = make_loop(algorithm, mean, pop=8)
    problem = problem_of(lambda member: jnp.asarray(jnp.nan))
    state = init_search_state(loop, jax.random.PRNGKey(0), mean, problem)
    new, out = jax.jit(make_search_step(loop, problem))(state)
    assert bool(out.invalid.all())
    # no finite fitness carries no ranking: telling it would move the mean on noise
    for a, b in zip(jax.tree.leaves(loop.mean(new.loop)), jax.tree.leaves(mean), strict=True):
        np.testing.assert_array_equal(np.asarray(a), np.asarray(b))
    assert float(new.best_fitness) == -np.inf and int(new.generation) == 1


def test_checkpoints_get_the_usual_permissions(tmp_path):
    import os
    import stat

    old = os.umask(0o022)
    try:
        path = save_checkpoint(tmp_path / "c.npz", {"x": jnp.ones(3)}, {"generation": 1})
    finally:
        os.umask(old)
    assert stat.S_IMODE(path.stat().st_mode) == 0o644  # not mkstemp's owner-only 0600
    assert [p.name for p in tmp_path.iterdir()] == ["c.npz"]  # no temporary file left
