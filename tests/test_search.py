"""A whole (tiny) search: tracking of every trial, artifacts, stop and resume."""

import json
from pathlib import Path

import numpy as np
import pytest
from mlflow.tracking import MlflowClient

from metarl.programs.runner import Search, resume_search, run_search
from metarl.spec import load_spec_data
from metarl.tracking import list_search_runs

pytest_plugins = ["mlflow_server"]  # a real `mlflow server` on loopback

TINY_SPEC = {
    "name": "tiny", "kind": "hparams", "seed": 3,
    "tasks": {"train": [{"env": "gymnax/CartPole-v1", "timesteps": 512,
                         "return_range": [22.0, 500.0]},
                        {"env": "gymnax/CartPole-v1", "name": "light", "timesteps": 512,
                         "env_params": {"masspole": {"low": 0.05, "high": 0.2}}}],
              "held_out": [{"env": "gymnax/CartPole-v1", "name": "lowg", "timesteps": 512,
                            "env_params": {"gravity": 4.0}, "return_range": [22.0, 500.0]}]},
    "inner": {"num_envs": 4, "num_steps": 32, "update_epochs": 1, "num_minibatches": 2,
              "hidden_sizes": [16, 16], "rollout_unroll": 1, "minibatch_unroll": 1},
    "outer": {"algorithm": "open_es", "population_size": 4, "generations": 3,
              "sigma_init": 1.0, "learning_rate": 0.3},
    "search_space": {"lr": {"low": 1e-4, "high": 1e-2, "log": True},
                     "ent_coef": {"low": 0.0, "high": 0.05}},
    "tracking": {"checkpoint_every": 1},
}


@pytest.fixture(scope="module")
def workdir(tmp_path_factory):
    return tmp_path_factory.mktemp("search")


@pytest.fixture(scope="module")
def search():
    return Search(load_spec_data(json.loads(json.dumps(TINY_SPEC)), "tiny"))


@pytest.fixture(scope="module")
def uri(workdir):
    return f"sqlite:///{workdir / 'mlflow.db'}"


@pytest.fixture(scope="module")
def full_run(search, uri, workdir):
    import os

    cwd = os.getcwd()
    os.chdir(workdir)  # local checkpoints go under ./.metarl
    try:
        return run_search(search.spec, uri, "# tiny spec\n", search=search)
    finally:
        os.chdir(cwd)


def test_search_logs_every_trial_and_artifacts(full_run, uri, search):
    client = MlflowClient(uri)
    run = client.get_run(full_run.run_id)
    assert run.info.status == "FINISHED"
    assert run.data.params["outer.population_size"] == "4"
    assert run.data.tags["metarl.kind"] == "hparams"
    history = client.get_metric_history(full_run.run_id, "best_fitness")
    assert [m.step for m in history] == [0, 1, 2]
    assert np.all(np.diff([m.value for m in history]) >= 0)  # best-so-far never drops
    for name in ("mean_fitness", "env_steps_per_second", "task/light/return_mean"):
        assert client.get_metric_history(full_run.run_id, name)
    children = client.search_runs(
        [run.info.experiment_id], f"tags.mlflow.parentRunId = '{full_run.run_id}'",
        max_results=100)
    kinds = [c.data.tags["metarl.trial"] for c in children]
    assert kinds.count("candidate") == 4 * 3  # every candidate of every generation
    assert kinds.count("mean-evaluation") == 1  # the final mean on the held-out task
    mean_eval = children[kinds.index("mean-evaluation")]
    m = mean_eval.data.metrics
    assert {"return/lowg", "normalised_return", "inner/return/lowg"} <= set(m)
    assert m["ratio_to_inner"] == pytest.approx(
        m["normalised_return"] / m["inner/normalised_return"], rel=1e-6)
    child = children[kinds.index("candidate")]
    assert {"lr", "ent_coef"} <= set(child.data.params)
    assert "fitness" in child.data.metrics
    arts = {a.path for a in client.list_artifacts(full_run.run_id)}
    assert {"population.csv", "best_params.json", "mean_params.json", "learning_curve.png",
            "spec.resolved.json", "checkpoints"} <= arts
    rows = client.download_artifacts(full_run.run_id, "population.csv")
    assert len(Path(rows).read_text().strip().splitlines()) == 1 + 4 * 3
    best = json.loads(Path(client.download_artifacts(full_run.run_id,
                                                     "best_params.json")).read_text())
    assert 1e-4 <= best["hparams"]["lr"] <= 1e-2
    listed = [r for r in list_search_runs(uri) if r["run_id"] == full_run.run_id][0]
    assert listed["generations"] == 3
    assert listed["best_fitness"] == pytest.approx(full_run.best_fitness)


def test_stopped_and_resumed_search_equals_uninterrupted(full_run, search, uri, workdir,
                                                         monkeypatch):
    monkeypatch.chdir(workdir)
    first = run_search(search.spec, uri, "# tiny spec\n", stop_after=1, search=search)
    assert first.status == "KILLED" and first.generations == 1
    resumed = resume_search(first.run_id, uri, search=search)
    assert resumed.run_id == first.run_id and resumed.generations == 3
    assert resumed.best_fitness == full_run.best_fitness
    assert resumed.best == full_run.best and resumed.mean == full_run.mean
    assert resumed.history == full_run.history
    client = MlflowClient(uri)
    assert client.get_run(first.run_id).info.status == "FINISHED"
    rows = client.download_artifacts(first.run_id, "population.csv")
    assert len(Path(rows).read_text().strip().splitlines()) == 1 + 4 * 3


class InterruptAt:
    """A progress display that presses Ctrl-C once generation `at` is done."""

    def __init__(self, at):
        self.at = at

    def compiling(self):
        pass

    def update(self, generation, stats):
        if generation == self.at:
            raise KeyboardInterrupt

    def stop(self):
        pass


def test_ctrl_c_marks_run_killed_and_keeps_results(full_run, search, uri, workdir,
                                                   monkeypatch):
    monkeypatch.chdir(workdir)
    result = run_search(search.spec, uri, "# tiny spec\n", progress=InterruptAt(2),
                        search=search)
    assert result.status == "KILLED" and result.generations == 2
    client = MlflowClient(uri)
    assert client.get_run(result.run_id).info.status == "KILLED"
    steps = [m.step for m in client.get_metric_history(result.run_id, "best_fitness")]
    assert steps == [0, 1]
    assert (workdir / ".metarl" / "checkpoints" / result.run_id / "latest.npz").is_file()


def test_search_logs_to_a_real_server_over_http(search, mlflow_server, workdir, monkeypatch):
    monkeypatch.chdir(workdir)
    result = run_search(search.spec, mlflow_server.url, "# tiny spec\n", search=search)
    client = MlflowClient(mlflow_server.url)
    run = client.get_run(result.run_id)
    assert run.info.status == "FINISHED"
    assert len(client.get_metric_history(result.run_id, "best_fitness")) == 3
    arts = {a.path for a in client.list_artifacts(result.run_id)}
    assert {"population.csv", "best_params.json", "checkpoints"} <= arts


def test_evaluate_and_export_of_an_hparams_search_go_through_its_kind(full_run, uri,
                                                                       workdir, monkeypatch):
    """`metarl evaluate` trains the found hyperparameters beside the [inner] ones; `metarl
    export` says this kind has no module to write (one line, exit 2)."""
    from click.testing import CliRunner

    from metarl.cli import main

    monkeypatch.chdir(workdir)
    prefix = full_run.run_id[:8]
    result = CliRunner().invoke(main, ["evaluate", prefix, "--seeds", "2", "--tracking-uri",
                                       uri], env={"COLUMNS": "200"})
    assert result.exit_code == 0, result.output
    assert "found (mean)" in result.output and "inner" in result.output
    assert "learned / inner IQM" in result.output
    result = CliRunner().invoke(main, ["export", prefix, "--tracking-uri", uri])
    assert result.exit_code == 2 and "has no module to export" in result.output
    result = CliRunner().invoke(main, ["evaluate", prefix, "--baselines", "dpo",
                                       "--tracking-uri", uri])
    assert result.exit_code == 2 and "compares with inner, not dpo" in result.output


def test_specs_stored_before_kinds_owned_their_sections_still_load():
    """Runs stored every section whatever their kind; another kind's section at its default
    is dropped, anything else in it is refused."""
    from metarl.spec import SpecError

    stored = {**json.loads(json.dumps(TINY_SPEC)),
              "rule": {"objective": "lpo", "init": "ppo", "settings": {}}}
    stored["inner"] = {**stored["inner"], "rollout_unroll": None, "minibatch_unroll": None}
    spec = load_spec_data(stored, "stored")
    assert spec.kind == "hparams" and spec.inner.rollout_unroll == 1
    stored["rule"]["objective"] = "dpo"
    with pytest.raises(SpecError, match="field 'rule': unknown field"):
        load_spec_data(stored, "stored")
    # every registered kind is listed, in order (kinds are added over time: match the form)
    with pytest.raises(SpecError, match=r"unknown search kind 'hparam'; allowed: (\w+, )*"
                       r"hparams, learned_optimizer, (\w+, )*update_rule"):
        load_spec_data({**TINY_SPEC, "kind": "hparam"}, "typo")
