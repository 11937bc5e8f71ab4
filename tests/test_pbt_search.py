"""The `pbt` search kind through the real runner: members as child runs with their schedules,
the lineage as artifacts, a search stopped and resumed ends bit for bit where an uninterrupted
one does (lineage included), the best schedule exports as a module that replays it; and PBT
as the inner loop of another kind (an hparams search with PBT-tuned agents)."""

import ast
import importlib.util
import json
from pathlib import Path

import jax
import numpy as np
import pytest
from click.testing import CliRunner
from mlflow.tracking import MlflowClient

from metarl.cli import main
from metarl.pbt.lineage import lineage_json
from metarl.programs.runner import Search, SearchRunner, resume_search, run_search
from metarl.spec import load_spec_data

INNER = {"num_envs": 4, "num_steps": 32, "update_epochs": 1, "num_minibatches": 2,
         "hidden_sizes": [8]}
SPEC = {
    "name": "pbt_tiny", "kind": "pbt", "seed": 3,
    "tasks": {"train": [{"env": "gymnax/CartPole-v1", "timesteps": 1024,
                         "return_range": [22.0, 500.0]}]},
    "inner": INNER,
    "outer": {"population_size": 4, "generations": 4, "truncations": 4},
    "pbt": {"search_space": {"lr": {"low": 1e-4, "high": 1e-2, "log": True},
                             "gamma": {"low": 0.9, "high": 0.999}},
            "resample_probability": 0.5},
    "tracking": {"checkpoint_every": 2},
}


@pytest.fixture(scope="module")
def finished(tmp_path_factory):
    """A search stopped after 2 of 4 intervals then resumed (tracked in MLflow), and the same
    search uninterrupted (untracked: the runner without a tracker), one compiled step."""
    work = tmp_path_factory.mktemp("pbt")
    uri = f"sqlite:///{work / 'mlflow.db'}"
    search = Search(load_spec_data(json.loads(json.dumps(SPEC)), "pbt_tiny"))
    with pytest.MonkeyPatch.context() as mp:
        mp.chdir(work)
        untracked = SearchRunner(search, None)
        whole = untracked.run(search.initial_state())
        first = run_search(search.spec, uri, "# pbt\n", stop_after=2, search=search)
        resumed = resume_search(first.run_id, uri, search=search)
    return work, uri, (whole, untracked.population), first, resumed


def test_resumed_pbt_equals_uninterrupted_lineage_included(finished):
    _, uri, (whole, rows), first, resumed = finished
    assert whole.status == "FINISHED" and first.status == "KILLED"
    assert len(first.mean["schedule"]["lr"]) == 2  # a stopped search: the intervals it trained
    assert resumed.generations == 4 and resumed.history == whole.history
    for a, b in zip(jax.tree.leaves(resumed.mean_params), jax.tree.leaves(whole.mean_params),
                    strict=True):
        np.testing.assert_array_equal(a, b)
    client = MlflowClient(uri)
    lineage = json.loads(Path(client.download_artifacts(resumed.run_id, "lineage.json"))
                         .read_text())
    assert lineage == json.loads(lineage_json(rows, ("gamma", "lr")))
    assert lineage["intervals"] == 4 and lineage["copies"], "no copies in 3 exploit steps"


def _members(client, run_id):
    run = client.get_run(run_id)
    children = client.search_runs([run.info.experiment_id],
                                  f"tags.mlflow.parentRunId = '{run_id}'")
    return sorted((c for c in children if c.data.tags["metarl.trial"] == "pbt-member"),
                  key=lambda c: c.info.run_name)


def test_every_member_is_a_child_run_with_its_schedule(finished):
    _, uri, _, _, whole = finished
    client = MlflowClient(uri)
    members = _members(client, whole.run_id)
    # the stopped-and-resumed search logs its members once, at its real end
    assert [c.info.run_name for c in members] == [f"member-{m:03d}" for m in range(4)]
    for child in members:
        lr = [m.value for m in client.get_metric_history(child.info.run_id, "hp/lr")]
        assert len(lr) == 4 and all(1e-4 * (1 - 1e-6) <= v <= 1e-2 * (1 + 1e-6) for v in lr)
        assert float(child.data.params["lr"]) == pytest.approx(lr[-1], rel=1e-5)
        for name in ("fitness", "return/CartPole-v1", "copied_from", "hp/gamma"):
            assert len(client.get_metric_history(child.info.run_id, name)) == 4
    names = {a.path for a in client.list_artifacts(whole.run_id)}
    assert {"lineage.json", "lineage.png", "population.csv"} <= names


def test_export_writes_the_best_schedule_as_a_module_that_replays_it(finished, monkeypatch):
    work, uri, _, _, whole = finished
    monkeypatch.chdir(work)
    out = work / "schedule.py"
    result = CliRunner().invoke(main, ["export", whole.run_id, "--output", str(out),
                                       "--tracking-uri", uri])
    assert result.exit_code == 0, result.output
    tree = ast.parse(out.read_text())
    literals = {t.targets[0].id: ast.literal_eval(t.value) for t in tree.body
                if isinstance(t, ast.Assign)}
    assert literals["INTERVALS"] == 4
    assert literals["SCHEDULE"] == whole.mean["schedule"]
    module_spec = importlib.util.spec_from_file_location("schedule", out)
    module = importlib.util.module_from_spec(module_spec)
    module_spec.loader.exec_module(module)  # our own file, written just now
    assert module.hparams_at(3)["lr"] == whole.mean["schedule"]["lr"][3]
    state, curve = module.train(seed=0)
    assert curve.shape == (8,) and int(state.update) == 8
    np.testing.assert_allclose(float(state.hparams.lr), whole.mean["schedule"]["lr"][3],
                               rtol=1e-6)


def test_pbt_as_the_inner_loop_of_another_search(tmp_path, monkeypatch):
    """An hparams search over the value-loss weight whose every candidate trains a PBT
    population tuning its learning rate (any kind trains through the same inner loops)."""
    monkeypatch.chdir(tmp_path)
    spec = {
        "name": "hp_pbt", "kind": "hparams", "seed": 1,
        "tasks": {"train": [{"env": "gymnax/CartPole-v1", "timesteps": 256,
                             "return_range": [22.0, 500.0]}]},
        "inner": {"algorithm": "pbt", "population": 2, "interval": 1, "quantile": 0.5,
                  "agent": {"algorithm": "ppo", **INNER},
                  "search_space": {"lr": {"low": 1e-4, "high": 1e-2, "log": True}}},
        "outer": {"algorithm": "random", "population_size": 2, "generations": 1},
        "search_space": {"vf_coef": {"low": 0.1, "high": 1.0}},
    }
    search = Search(load_spec_data(spec, "hp_pbt"))
    loop = search.program.suite.tasks[0].loop
    assert type(loop).__name__ == "PopulationLoop" and loop.population == 2
    state, out = search.step(search.initial_state())
    assert int(state.generation) == 1 and np.all(np.isfinite(np.asarray(out.fitness)))


@pytest.mark.slow  # a search of its own to compile: ~25 s on 2 cores (copy and perturb of
# the weights are tested without one in test_pbt.py)
def test_members_search_a_learned_objectives_weights(tmp_path, monkeypatch):
    """`[pbt] objective = "lpo"`: members start from LPO's PPO-like weights, train with them,
    and the copiers' weights move away from their sources'; the export writes them beside
    the schedule."""
    monkeypatch.chdir(tmp_path)
    data = json.loads(json.dumps(SPEC))
    data["pbt"]["objective"] = "lpo"
    data["pbt"]["objective_sigma"] = 0.05
    data["outer"].update(generations=2, truncations=2)
    data["tasks"]["train"][0]["timesteps"] = 512
    uri = f"sqlite:///{tmp_path / 'mlflow.db'}"
    search = Search(load_spec_data(data, "pbt_lpo"))
    state = search.initial_state()
    start = np.asarray(jax.tree.leaves(state.loop.members.objective)[0])
    assert np.allclose(start, start[:1])  # every member starts from the same weights
    state, _ = search.step(state)
    after = np.asarray(jax.tree.leaves(state.loop.members.objective)[0])
    moved = np.asarray(state.loop.members.source) != np.arange(len(after))
    assert moved.any() and not np.allclose(after[moved], start[moved])
    np.testing.assert_array_equal(after[~moved], start[~moved])
    result = run_search(search.spec, uri, "# pbt\n", search=search)
    assert result.status == "FINISHED" and np.isfinite(result.history["mean_fitness"]).all()
    out = tmp_path / "schedule.py"
    cli = CliRunner().invoke(main, ["export", result.run_id[:8], "--output", str(out),
                                    "--tracking-uri", uri])
    assert cli.exit_code == 0, cli.output
    rule = tmp_path / "schedule_objective.py"
    assert rule.exists() and "WEIGHTS" in rule.read_text()
