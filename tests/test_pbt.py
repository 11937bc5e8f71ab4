"""PBT's pure pieces and its inner loop: exploit copies the whole state of a top member into
a bottom one, explore keeps values inside their bounds, the copier trains next with its
perturbed hyperparameters on the copied weights, PB2 follows its data, and PBT beats a fixed
bad learning rate on a tiny task."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from metarl.pbt import HyperSpace, PB2Explorer, PerturbExplorer, truncation_selection
from metarl.pbt.explore import copied
from metarl.pbt.population import exploit_and_explore
from metarl.pbt.spec import PBTInner
from metarl.spec.schema import Range, Task

SPACE = HyperSpace.from_ranges({
    "lr": Range(low=1e-4, high=1e-2, log=True), "gamma": Range(low=0.9, high=0.999),
    "ent_coef": Range(low=0.0, high=0.05)})


def test_exploit_copies_top_quantile_into_bottom_and_ranks_nan_worst():
    scores = jnp.array([5.0, 1.0, jnp.nan, 7.0, 3.0, 9.0, 2.0, 8.0])
    for seed in range(20):
        source = np.asarray(truncation_selection(jax.random.PRNGKey(seed), scores, 0.25))
        assert set(source[[2, 1]]) <= {5, 7}  # the worst two (NaN, 1.0) copy the best two
        keep = [0, 3, 4, 5, 6, 7]
        np.testing.assert_array_equal(source[keep], keep)


def test_exploit_moves_every_leaf_of_the_state_and_explore_only_the_copiers():
    pop = 8
    state = {"params": jnp.arange(pop * 3.0).reshape(pop, 3),
             "opt_state": (jnp.arange(pop) * 10.0, jnp.arange(pop) + 100),
             "update": jnp.arange(pop, dtype=jnp.int32) + 40}
    u = jax.random.uniform(jax.random.PRNGKey(1), (pop, SPACE.dims))
    scores = jnp.arange(pop, dtype=jnp.float32)  # member 7 best, member 0 worst
    explorer = PerturbExplorer(SPACE, (0.8, 1.2), 0.0)
    step = jax.jit(lambda k, s, u, st: exploit_and_explore(k, s, u, st, explorer, (), 0.25,
                                                           jnp.int32(0)))
    out = step(jax.random.PRNGKey(2), scores, u, state)
    source = np.asarray(out.source)
    moved = np.asarray(copied(out.source))
    assert moved.tolist() == [True, True] + [False] * 6
    for leaf_in, leaf_out in zip(jax.tree.leaves(state), jax.tree.leaves(out.states),
                                 strict=True):
        np.testing.assert_array_equal(np.asarray(leaf_out), np.asarray(leaf_in)[source])
    np.testing.assert_array_equal(out.u[~moved], u[~moved])  # kept members keep theirs
    ratio = SPACE.value(out.u[moved]) / SPACE.value(u[source[moved]])
    # every copier's value is its source's times 0.8 or 1.2, unless clamped at a bound
    at_bound = np.isclose(SPACE.value(out.u[moved]), np.asarray(SPACE.low)) | np.isclose(
        SPACE.value(out.u[moved]), np.asarray(SPACE.high))
    assert np.all(np.isclose(ratio, 0.8, rtol=1e-4) | np.isclose(ratio, 1.2, rtol=1e-4)
                  | at_bound)


def test_copiers_take_and_perturb_their_sources_objective_weights():
    """With `[pbt] objective`, exploit copies a learned objective's weights with the rest and
    explore adds noise to the copiers' only."""
    from metarl.pbt.outer import PBT, PBTState
    from metarl.pbt.population import PBTMember

    pop = 8
    weights = {"w": jnp.arange(pop * 2.0).reshape(pop, 2), "b": jnp.arange(pop * 1.0)}
    members = PBTMember(jnp.full((pop, SPACE.dims), 0.5), jnp.full((pop, 2, SPACE.dims), jnp.nan),
                        jnp.arange(pop, dtype=jnp.int32), weights)
    explorer = PerturbExplorer(SPACE, (0.8, 1.2), 0.0)
    scores = jnp.arange(pop, dtype=jnp.float32)
    runs = {"params": jnp.arange(pop * 1.0)}
    for sigma in (0.0, 0.5):
        loop = PBT(members, pop, explorer, 0.25, objective_sigma=sigma)
        state = PBTState(members, runs, (), jax.random.PRNGKey(0), jnp.int32(0), jnp.int32(0))
        out = jax.jit(loop.exploit)(jax.random.PRNGKey(3), scores, state, runs).members
        source = np.asarray(out.source)
        moved = source != np.arange(pop)
        assert moved.sum() == 2
        for name in weights:
            new, old = np.asarray(out.objective[name]), np.asarray(weights[name])
            np.testing.assert_array_equal(new[~moved], old[~moved])
            noise = new[moved] - old[source[moved]]
            assert (noise == 0).all() if sigma == 0 else (np.abs(noise) > 0).all()


@pytest.mark.parametrize("explorer", [PerturbExplorer(SPACE, (0.25, 4.0), 0.3),
                                      PB2Explorer(SPACE, window=2, candidates=32)],
                         ids=["perturb", "pb2"])
def test_explored_values_stay_within_bounds(explorer):
    pop = 8
    u = jnp.concatenate([jnp.zeros((4, SPACE.dims)), jnp.ones((4, SPACE.dims))])
    state = explorer.init(pop)
    step = jax.jit(explorer.explore)
    for t in range(6):
        key = jax.random.PRNGKey(t)
        scores = jax.random.normal(key, (pop,))
        source = truncation_selection(key, scores, 0.5)
        u, state = step(jax.random.fold_in(key, 1), u, scores, source, state, jnp.int32(t))
        values = np.asarray(SPACE.value(u))
        assert np.all(values >= np.asarray(SPACE.low, np.float32))
        assert np.all(values <= np.asarray(SPACE.high, np.float32))
        assert np.all((np.asarray(u) >= 0) & (np.asarray(u) <= 1))


def test_pb2_proposes_where_its_data_says_scores_improved():
    space = HyperSpace.from_ranges({"lr": Range(low=1e-4, high=1e-2, log=True)})
    explorer = PB2Explorer(space, window=4, candidates=128)
    pop = 8
    state = explorer.init(pop)
    step = jax.jit(explorer.explore)
    u = jnp.linspace(0, 1, pop)[:, None]
    chosen = []
    for t in range(4):
        # the score rises by an amount that grows with u: high u is where to go
        scores = jnp.full((pop,), float(t)) + t * u[:, 0]
        source = jnp.array([7, 6, 2, 3, 4, 5, 6, 7], jnp.int32)
        new_u, state = step(jax.random.PRNGKey(t), u, scores, source, state, jnp.int32(t))
        chosen.append(np.asarray(new_u[:2, 0]))
    assert np.mean(chosen[-1]) > 0.6, chosen


# -- the inner loop ---------------------------------------------------------------------------
AGENT = {"algorithm": "ppo", "num_envs": 8, "num_steps": 32, "update_epochs": 2,
         "num_minibatches": 2, "hidden_sizes": [16]}
TASK = Task(env="gymnax/CartPole-v1", timesteps=256 * 40)


@pytest.fixture(scope="module")
def population():
    section = PBTInner(agent=AGENT, population=4, interval=4, quantile=0.25,
                       factors=(0.5, 2.0), resample_probability=0.0,
                       search_space={"lr": {"low": 1e-4, "high": 3e-2, "log": True}})
    loop = section.build_task(TASK)
    update = jax.jit(lambda s: loop.step(s, None, 1))  # one compiled update, reused
    return loop, update, jax.jit(loop.init)


def test_after_a_copy_the_member_trains_with_perturbed_hparams_on_copied_state(population):
    loop, update, init = population
    state = init(jax.random.PRNGKey(0))
    for _ in range(3):  # one update short of the first exploit
        state, _ = update(state)
    before = state
    after, metrics = update(before)
    source = np.asarray(after.source)
    moved = source != np.arange(4)
    assert moved.sum() == 1 and int(metrics["copies"][0]) == 1
    (i,), src = np.flatnonzero(moved), source[moved][0]
    # weights, optimizer state, counters, envs and keys: the source's, every leaf
    for got in jax.tree.leaves(after.agents._replace(hparams=())):
        np.testing.assert_array_equal(np.asarray(got)[i], np.asarray(got)[src])
    w_before, w_after = (np.asarray(jax.tree.leaves(x.agents.params)[0]) for x in (before, after))
    assert not np.array_equal(w_before[i], w_after[i])  # it did take someone else's
    assert np.all(np.asarray(after.agents.update) == 4)  # the iteration counter carried
    lr_src = float(loop.space.value(before.u)[src, 0])
    lr_new = float(loop.space.value(after.u)[i, 0])
    assert np.isclose(lr_new / lr_src, 0.5, rtol=1e-4) or np.isclose(lr_new / lr_src, 2.0,
                                                                      rtol=1e-4)
    # the next update trains the copied weights with the perturbed learning rate
    nxt, _ = update(after)
    assert np.isclose(float(np.asarray(nxt.agents.hparams.lr)[i]), lr_new, rtol=1e-6)


def test_pbt_beats_a_fixed_bad_learning_rate(population):
    from metarl.ppo import HParams

    loop, update, init = population
    pbt, fixed = [], []
    bad = jax.jit(lambda k: loop.agent.train(k, None, HParams(lr=1e-5))[1]["episode_return"])
    for seed in range(2):
        state = init(jax.random.PRNGKey(seed))
        curve = []
        for _ in range(loop.config.num_updates):
            state, metrics = update(state)
            curve.append(float(metrics["episode_return"][0]))
        pbt.append(np.mean(curve[-8:]))
        fixed.append(float(np.asarray(bad(jax.random.PRNGKey(seed)))[-8:].mean()))
    assert min(pbt) > max(fixed) + 10, (pbt, fixed)


# -- bad input: one line, exit 2, no traceback ------------------------------------------------
BASE_SPEC = """
name = "bad"
kind = "pbt"
[[tasks.train]]
env = "gymnax/CartPole-v1"
timesteps = 1024
[inner]
num_envs = 4
num_steps = 32
[outer]
population_size = 4
truncations = 4
generations = 4
[pbt.search_space]
lr = { low = 1e-4, high = 1e-2, log = true }
"""
INNER_SPEC = """
name = "bad_inner"
kind = "update_rule"
[[tasks.train]]
env = "gymnax/CartPole-v1"
timesteps = 1024
[inner]
algorithm = "pbt"
population = 4
[inner.agent]
num_envs = 4
num_steps = 32
[inner.search_space]
lr = { low = 1e-4, high = 1e-2, log = true }
"""
BAD = {
    "quantile leaves no one": (BASE_SPEC, ["pbt.quantile=0.2"], "no one would copy anyone"),
    "quantile over half": (BASE_SPEC, ["pbt.quantile=0.75"], "pbt.quantile"),
    "population of 1": (BASE_SPEC, ["outer.population_size=1"], "outer.population_size"),
    "inner population of 1": (INNER_SPEC, ["inner.population=1"],
                              "PBT needs a population of at least 2"),
    "factor 0": (BASE_SPEC, ["pbt.factors=[0.8, 0.0]"], "perturbation factors must be > 0"),
    "negative factor": (INNER_SPEC, ["inner.factors=[-1.2]"], "perturbation factors must be"),
    "unknown hyperparameter": (BASE_SPEC, ["pbt.search_space.momentum={low=0.1, high=0.9}"],
                               "'ppo' does not have"),
    "inner unknown hyperparameter": (INNER_SPEC, ["inner.search_space.tau={low=0.1, high=1}"],
                                     "'ppo' does not have"),
    "another outer loop": (BASE_SPEC, ["outer.algorithm='open_es'"], "outer.algorithm = 'pbt'"),
    "more generations than intervals": (BASE_SPEC, ["outer.generations=8"],
                                        "trains its population once"),
    "unknown objective": (BASE_SPEC, ["pbt.objective='lpx'"], "unknown objective 'lpx'"),
    "objective in the inner loop": (INNER_SPEC, ["inner.objective='lpo'"],
                                    "trains with its search's objective"),
}


@pytest.mark.parametrize("case", list(BAD))
def test_bad_pbt_input_gets_one_line_and_exit_2(case, tmp_path, monkeypatch):
    from click.testing import CliRunner

    from metarl.cli import main

    monkeypatch.chdir(tmp_path)
    text, overrides, needle = BAD[case]
    (tmp_path / "spec.toml").write_text(text)
    args = ["search", "run", "spec.toml", "--dry-run"]
    for o in overrides:
        args += ["--set", o]
    result = CliRunner().invoke(main, args, env={"COLUMNS": "200"})
    out = result.output
    assert result.exit_code == 2, out
    assert needle in out, out
    assert "Traceback" not in out and len(out.strip().splitlines()) == 1, out
