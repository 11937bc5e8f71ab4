"""The outer loop on toy fitness functions: cheap to compile, exact to check."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from metarl.outer import (
    Evaluation,
    init_outer_state,
    load_checkpoint,
    make_generation,
    make_strategy,
    population_mesh,
    save_checkpoint,
)
from metarl.outer.checkpoint import CheckpointError

TARGET = {"w": jnp.array([1.0, -2.0, 0.5]), "b": jnp.array(3.0)}


def sphere(population, key):
    """Fitness to maximise: minus the squared distance to TARGET; NaN where w[0] > 4."""
    sq = sum(jnp.sum((p - t) ** 2, axis=tuple(range(1, p.ndim)))
             for p, t in zip(jax.tree.leaves(population), jax.tree.leaves(TARGET), strict=True))
    fitness = jnp.where(population["w"][:, 0] > 4.0, jnp.nan, -sq)
    return Evaluation(fitness, fitness[:, None])


def run(algorithm, generations=60, devices=None, pop=16):
    mean = jax.tree.map(jnp.zeros_like, TARGET)
    strategy = make_strategy(algorithm, pop, mean, sigma_init=0.5, learning_rate=0.1,
                             sample=lambda k: jax.tree.map(
                                 lambda t: 3 * jax.random.normal(k, t.shape), TARGET))
    gen = jax.jit(make_generation(strategy, sphere, population_mesh(pop, devices)))
    state = init_outer_state(strategy, jax.random.PRNGKey(0), mean)
    outs = []
    for _ in range(generations):
        state, out = gen(state)
        outs.append(out)
    return strategy, state, outs


@pytest.mark.parametrize("algorithm", ["open_es", "snes", "cma_es", "random"])
def test_strategies_improve_fitness(algorithm):
    strategy, state, outs = run(algorithm)
    first = float(jnp.nanmean(outs[0].fitness))
    assert float(state.best_fitness) > first + 1.0
    if algorithm != "random":  # the search distribution itself moved to the optimum
        mean = strategy.mean(state.strategy)
        dist = sum(float(jnp.sum((m - t) ** 2)) for m, t in
                   zip(jax.tree.leaves(mean), jax.tree.leaves(TARGET), strict=True))
        assert dist < 0.5 * 15.25  # 15.25: squared distance from the start
    assert int(state.generation) == len(outs)


def test_nan_fitness_is_ranked_worst_and_counted():
    mean = {"w": jnp.array([5.0, -2.0, 0.5]), "b": jnp.array(3.0)}  # starts in the NaN region
    strategy = make_strategy("open_es", 16, mean, sigma_init=1.0, learning_rate=0.3)
    gen = jax.jit(make_generation(strategy, sphere))
    state = init_outer_state(strategy, jax.random.PRNGKey(1), mean)
    invalid = []
    for _ in range(30):
        state, out = gen(state)
        invalid.append(int(out.invalid.sum()))
    assert invalid[0] > 0 and invalid[-1] < invalid[0]
    assert np.isfinite(float(state.best_fitness))
    assert float(strategy.mean(state.strategy)["w"][0]) < 4.0  # moved out of the NaN region


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
    strategy = make_strategy(algorithm, 8, mean, sigma_init=0.5, learning_rate=0.1)

    def nothing_scores(population, key):
        fitness = jnp.full((8,), jnp.nan)
        return Evaluation(fitness, fitness[:, None])

    state = init_outer_state(strategy, jax.random.PRNGKey(0), mean)
    new, out = jax.jit(make_generation(strategy, nothing_scores))(state)
    assert bool(out.invalid.all())
    # all -inf carries no ranking: telling it would move the mean on noise (or to NaN)
    for a, b in zip(jax.tree.leaves(strategy.mean(new.strategy)), jax.tree.leaves(mean),
                    strict=True):
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
