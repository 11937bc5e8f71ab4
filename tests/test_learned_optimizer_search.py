"""The `learned_optimizer` search kind end to end on a tiny supervised task: the search beats
its Adam start, resumes bit for bit, exports a module that reproduces the platform's updates
and training, and `metarl evaluate` tunes the baselines; bad specs get one clear message."""

import importlib.util
import json
import sys

import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest
from click.testing import CliRunner

from metarl.cli import main
from metarl.programs.runner import Search, resume_search, run_search
from metarl.spec import SpecError, load_spec_data

TASK = {"env": "supervised/quadratic", "timesteps": 60, "env_kwargs": {"member": 2}}
SPEC = {
    "name": "lopt", "kind": "learned_optimizer", "seed": 1,
    "tasks": {"train": [TASK]},
    # Adam at 1e-3 is far too slow for this quadratic: a learned step size wins quickly
    "inner": {"algorithm": "supervised", "lr": 1e-3, "seeds": 2},
    "optimizer": {"settings": {"hidden_size": 4, "num_hidden": 1, "magnitude_scale": 1.0}},
    "outer": {"algorithm": "open_es", "population_size": 8, "generations": 4,
              "sigma_init": 0.1, "learning_rate": 0.1, "final_fraction": 1.0},
    "tracking": {"checkpoint_every": 2, "trials": "best"},
}


@pytest.fixture(scope="module")
def workdir(tmp_path_factory):
    return tmp_path_factory.mktemp("lopt")


@pytest.fixture(scope="module")
def uri(workdir):
    return f"sqlite:///{workdir / 'mlflow.db'}"


@pytest.fixture(scope="module")
def search():
    return Search(load_spec_data(json.loads(json.dumps(SPEC)), "lopt"))


@pytest.fixture(scope="module")
def whole(search, uri, workdir):
    import os

    cwd = os.getcwd()
    os.chdir(workdir)
    try:
        return run_search(search.spec, uri, "# lopt\n", search=search)
    finally:
        os.chdir(cwd)


def test_search_improves_on_its_adam_start(whole):
    mean = whole.history["mean_fitness"]
    assert whole.status == "FINISHED" and len(mean) == 4
    assert mean[-1] > 1.4 * mean[0] > 0, mean  # 0.062 -> 0.099 when written


def test_resumed_search_equals_uninterrupted(whole, search, uri, workdir, monkeypatch):
    monkeypatch.chdir(workdir)
    first = run_search(search.spec, uri, "# lopt\n", stop_after=2, search=search)
    resumed = resume_search(first.run_id, uri, search=search)
    assert resumed.history == whole.history
    for a, b in zip(jax.tree.leaves(resumed.mean_params), jax.tree.leaves(whole.mean_params),
                    strict=True):
        np.testing.assert_array_equal(a, b)


def _import(path):
    spec = importlib.util.spec_from_file_location(path.stem, path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    sys.modules.pop(path.stem, None)
    return module


def test_exported_module_reproduces_updates_and_training(whole, search, uri, workdir,
                                                         monkeypatch):
    monkeypatch.chdir(workdir)
    out = workdir / "my_opt.py"
    result = CliRunner().invoke(main, ["export", whole.run_id[:8], "--output", str(out),
                                       "--tracking-uri", uri])
    assert result.exit_code == 0, result.output
    module = _import(out)
    assert module.PROVENANCE["run_id"] == whole.run_id and "symbolic_optimizer" in vars(module)
    kind = search.program
    meta = jax.tree.map(jnp.asarray, whole.mean_params)
    ours = kind.slot(kind.spec.tasks.train[0])(kind.hparams.as_arrays(), meta)
    theirs = module.optimizer()  # the search's learning rate and horizon are the defaults
    params = {"w": jnp.linspace(-1.0, 1.0, 12).reshape(3, 4), "b": jnp.ones(4)}
    s_ours, s_theirs = ours.init(params), theirs.init(params)
    for step in range(4):
        grads = jax.tree.map(lambda p, s=step: jnp.sin(p * (s + 1.0)), params)
        u_ours, s_ours = ours.update(grads, s_ours, params)
        u_theirs, s_theirs = theirs.update(grads, s_theirs, params)
        for a, b in zip(jax.tree.leaves(u_ours), jax.tree.leaves(u_theirs), strict=True):
            np.testing.assert_allclose(a, b, atol=1e-6)
        params = optax.apply_updates(params, u_ours)

    # a whole training run of the task with the imported optimizer equals the platform's
    from metarl.supervised import Supervised, member

    task = member("quadratic", 2)
    ours = Supervised(task, 60, kind.slot(kind.spec.tasks.train[0]))
    theirs = Supervised(task, 60, module.optimizer())
    key, hp = jax.random.PRNGKey(0), kind.hparams.as_arrays()
    loss_ours = jax.jit(ours.train)(key, meta, hp)[1]["loss"]
    loss_theirs = jax.jit(theirs.train)(key, None, hp)[1]["loss"]
    np.testing.assert_allclose(loss_ours, loss_theirs, rtol=1e-5)
    assert loss_ours[-5:].mean() < loss_ours[:5].mean()  # it learns


def test_evaluate_tunes_adam_and_scores_the_closed_form(whole, uri, workdir,
                                                                monkeypatch):
    monkeypatch.chdir(workdir)
    result = CliRunner().invoke(main, ["evaluate", whole.run_id[:8], "--seeds", "2",
                                       "--baselines", "adam,symbolic",
                                       "--tracking-uri", uri], env={"COLUMNS": "200"})
    assert result.exit_code == 0, result.output
    assert "adam on quadratic: tuned learning rate" in result.output
    assert "steps_ratio_to_adam/iqm" in result.output
    assert "learned / adam IQM" in result.output
    assert "learned / symbolic IQM" in result.output  # the distilled closed form, held out


def test_a_tampered_export_is_refused_by_reader_and_on_import(workdir):
    from metarl.export import ExportError, read_optimizer_module

    text = (workdir / "my_opt.py").read_text()
    start = text.index("WEIGHTS = {")
    digit = start + next(i for i, c in enumerate(text[start:]) if c.isdigit())
    bad = workdir / "bad_opt.py"  # one weight's first digit edited
    bad.write_text(text[:digit] + str((int(text[digit]) + 1) % 10) + text[digit + 1:])
    with pytest.raises(ExportError):
        read_optimizer_module(bad)
    with pytest.raises(ValueError):
        _import(bad)


BAD = [
    ({"optimizer": {"name": "open"}}, "reads RL features"),
    ({"optimizer": {"settings": {"hiden_size": 4}}}, "unknown setting(s) hiden_size"),
    ({"optimizer": {"settings": {"num_momenta": 2}}}, "must equal the number of "
     "momentum_decays"),
    ({"inner": {"seeds": 1}}, "is a supervised task family, which PPO cannot train on"),
    ({"tasks": {"train": [{**TASK, "env": "supervised/quadratics"}]}},
     "unknown supervised task family 'quadratics'"),
    ({"tasks": {"train": [{"env": "gymnax/CartPole-v1", "timesteps": 1024}]}},
     "is not a supervised task"),
    ({"inner": {"algorithm": "supervisd"}}, "unknown inner.algorithm; allowed: 'ppo', "
     "'rppo', 'rl2', 'supervised'"),
]


@pytest.mark.parametrize(("change", "message"), BAD)
def test_bad_specs_get_one_clear_message(change, message):
    spec = json.loads(json.dumps(SPEC))
    spec.update(change)
    with pytest.raises(SpecError, match=message.replace("(", r"\(").replace(")", r"\)")):
        load_spec_data(spec, "bad.toml")


def test_open_optimizer_in_ppo_starts_at_adam():
    """The OPEN optimizer fills PPO's optimizer slot (actor noise, batch proportion) and at its
    Adam start trains exactly as Adam does."""
    from metarl.envs import make
    from metarl.learned_optimizers import get_learned_optimizer
    from metarl.ppo import PPO, HParams, PPOConfig
    from metarl.programs.learned_optimizer import LearnedOptimizerSearch

    spec = load_spec_data({
        "name": "lopt_rl", "kind": "learned_optimizer",
        "tasks": {"train": [{"env": "gymnax/CartPole-v1", "timesteps": 256}]},
        "inner": {"num_envs": 4, "num_steps": 32, "update_epochs": 1, "num_minibatches": 2,
                  "hidden_sizes": [8], "lr": 1e-3},
        "optimizer": {"name": "open", "settings": {"hidden_size": 4}}}, "rl")
    kind = LearnedOptimizerSearch(spec)
    config = PPOConfig(total_timesteps=256, num_envs=4, num_steps=32, update_epochs=1,
                       num_minibatches=2, hidden_sizes=(8,))
    env = make("gymnax/CartPole-v1")
    learned = PPO(config, env, optimizer=kind.slot(spec.tasks.train[0]))
    adam = PPO(config, env, optimizer=lambda hp, meta: optax.adam(hp.lr))
    meta = get_learned_optimizer("open").adam_init_meta(jax.random.PRNGKey(0), hidden_size=4)
    key, hp = jax.random.PRNGKey(3), HParams(lr=1e-3)
    a = jax.jit(learned.train)(key, meta, hp)[0].params
    b = jax.jit(adam.train)(key, None, hp)[0].params
    for x, y in zip(jax.tree.leaves(a), jax.tree.leaves(b), strict=True):
        np.testing.assert_allclose(x, y, atol=1e-5)


def test_meta_gradient_of_the_fitness_is_finite_and_nonzero(search):
    """Meta-gradient outer loops differentiate the fitness through every inner step."""
    from metarl.outer.problem import full_fitness

    kind = search.program
    problem = kind.problem(truncations=1, differentiable=True)
    meta = kind.initial_mean()
    grads = jax.jit(jax.grad(lambda m: full_fitness(problem, m, jax.random.PRNGKey(0)).fitness)
                    )(meta)
    flat = np.concatenate([np.ravel(g) for g in jax.tree.leaves(grads)])
    assert np.isfinite(flat).all() and np.abs(flat).max() > 0
