"""A search that cannot go on ends FAILED with one clear message, keeping what it computed.

The real runner and tracker run against a real SQLite store; only the program's problem is
swapped for a formula (or for NaN), so each test compiles in about a second instead of
training PPO.
"""

import errno
import json
import shutil
import tempfile
import traceback
from pathlib import Path

import jax.numpy as jnp
import numpy as np
import pytest
from click.testing import CliRunner
from mlflow.tracking import MlflowClient

from metarl.outer import NoValidMembers, StorageError, TruncatedProblem
from metarl.outer.problem import Evaluation
from metarl.programs import runner
from metarl.programs.runner import Search, run_search
from metarl.spec import load_spec_data
from metarl.tracking import spill

pytest_plugins = ["mlflow_server"]  # mlflow_db_template: a migrated store to copy

SPEC_TOML = """
name = "failing"
kind = "hparams"
[[tasks.train]]
env = "gymnax/CartPole-v1"
timesteps = 128
return_range = [22.0, 500.0]
[inner]
num_envs = 4
num_steps = 32
num_minibatches = 2
hidden_sizes = [8]
[outer]
algorithm = "open_es"
population_size = 4
generations = 3
[search_space]
lr = { low = 1e-4, high = 1e-2, log = true }
[tracking]
checkpoint_every = 1
"""


def toml_to_spec(text: str = SPEC_TOML):
    import tomllib

    return load_spec_data(tomllib.loads(text), "failing")


def scores_formula(population: dict) -> jnp.ndarray:
    return -(population["lr"] - 0.3) ** 2


def scores_nothing(population: dict) -> jnp.ndarray:
    return jnp.full(population["lr"].shape, jnp.nan)


@pytest.fixture
def store(tmp_path, monkeypatch, mlflow_db_template) -> str:
    """A fresh store; the search is launched from tmp_path/work."""
    shutil.copy(mlflow_db_template, tmp_path / "mlflow.db")
    (tmp_path / "work").mkdir()
    monkeypatch.chdir(tmp_path / "work")
    return f"sqlite:///{tmp_path / 'mlflow.db'}"


@pytest.fixture
def evaluate_with(monkeypatch):
    """`evaluate_with(fitness)`: programs built from here on score members by `fitness`."""
    def use(fitness):
        real = runner.build_kind

        def unroll(meta, state, key):
            return Evaluation(fitness(meta), fitness(meta)[None]), state

        def build(spec):
            program = real(spec)
            program.problem = lambda truncations=1, differentiable=False: TruncatedProblem(
                lambda key, meta: jnp.zeros(()), unroll, truncations)
            return program

        monkeypatch.setattr(runner, "build_kind", build)
    return use


def only_run(uri: str):
    client = MlflowClient(uri)
    experiment = client.get_experiment_by_name("failing")
    runs = [] if experiment is None else client.search_runs(
        [experiment.experiment_id], "tags.`metarl.run_type` = 'search'")
    return client, runs


# -- item 4: no valid member -------------------------------------------------------------------

def test_a_search_where_nothing_scores_fails_and_calls_nothing_best(store, evaluate_with):
    evaluate_with(scores_nothing)
    search = Search(toml_to_spec())
    with pytest.raises(NoValidMembers) as err:
        run_search(search.spec, store, SPEC_TOML, search=search)
    assert err.value.exit_code == 1
    message = str(err.value)
    assert "generation 0: all 4 members scored NaN or inf" in message and "\n" not in message
    client, [run] = only_run(store)
    assert run.info.status == "FAILED" and run.info.run_id in message
    # what was computed is on record; no never-scored "best" anywhere
    assert client.get_metric_history(run.info.run_id, "invalid_members")[0].value == 4
    assert [m.step for m in client.get_metric_history(run.info.run_id, "generation")] == [0]
    assert client.get_metric_history(run.info.run_id, "best_fitness") == []
    arts = {a.path for a in client.list_artifacts(run.info.run_id)}
    assert "population.csv" in arts and "best_params.json" not in arts
    rows = Path(client.download_artifacts(run.info.run_id, "population.csv")).read_text()
    assert len(rows.strip().splitlines()) == 1 + 4
    assert not (runner.checkpoint_dir(run.info.run_id) / "latest.npz").exists()


def test_a_run_stopped_before_anything_scored_reports_no_best(store, evaluate_with):
    evaluate_with(scores_formula)
    search = Search(toml_to_spec())

    class CtrlCWhileCompiling:
        def compiling(self):
            raise KeyboardInterrupt

        def stop(self):
            pass

    result = run_search(search.spec, store, SPEC_TOML, CtrlCWhileCompiling(), search=search)
    assert result.status == "KILLED" and result.generations == 0
    assert result.best == {} and result.best_params is None
    assert np.isnan(result.best_fitness)  # not -inf, and not the start point's score
    assert result.mean["hparams"]["lr"] > 0  # the mean is still reported: it is the mean


# -- item 6: folders a search cannot write ----------------------------------------------------

@pytest.mark.parametrize("where", ["checkpoints", "unsent tracking data",
                                   "tracking staging files"])
def test_an_unwritable_folder_fails_before_compiling_and_naming_it(store, evaluate_with,
                                                                   monkeypatch, where):
    evaluate_with(scores_formula)
    blocker = Path("not-a-folder")
    blocker.write_text("a file where a folder should be")  # chmod does not stop root
    folder = blocker / "sub"
    if where == "checkpoints":
        monkeypatch.setattr(runner, "CHECKPOINT_ROOT", folder)
    elif where == "unsent tracking data":
        monkeypatch.setattr(spill, "SPILL_DIR", folder)
    else:
        monkeypatch.setattr(tempfile, "tempdir", str(folder.absolute()))
    search = Search(toml_to_spec())
    with pytest.raises(StorageError) as err:
        run_search(search.spec, store, SPEC_TOML, search=search)
    message = str(err.value)
    assert f"cannot write {where} in {folder.absolute()}" in message and "\n" not in message
    assert err.value.exit_code == 1
    assert search._compiled is None  # found out before minutes of compiling
    assert only_run(store)[1] == []  # and before a run was created


def test_a_checkpoint_write_failing_mid_run_fails_the_run_in_one_line(store, evaluate_with,
                                                                      monkeypatch, tmp_path):
    evaluate_with(scores_formula)
    real_save = runner.save_checkpoint
    calls = []

    def disk_fills_up(path, state, host):
        calls.append(path)
        if len(calls) == 2:  # generation 1: the disk is full
            raise OSError(errno.ENOSPC, "No space left on device")
        return real_save(path, state, host)

    monkeypatch.setattr(runner, "save_checkpoint", disk_fills_up)
    spec_file = tmp_path / "failing.toml"
    spec_file.write_text(SPEC_TOML)
    from metarl.cli import main

    result = CliRunner().invoke(main, ["search", "run", str(spec_file), "--tracking-uri", store,
                                       "--quiet"], env={"COLUMNS": "250"})
    assert result.exit_code == 1, result.output
    errors = [line for line in result.output.splitlines() if line.startswith("Error:")]
    assert len(errors) == 1 and "Traceback" not in result.output
    assert isinstance(result.exception, SystemExit)
    client, [run] = only_run(store)
    assert run.info.status == "FAILED"
    line = errors[0]
    assert "could not save the checkpoint of generation 1" in line
    assert str(runner.checkpoint_dir(run.info.run_id).absolute()) in line
    assert "No space left" in line
    assert f"metarl search resume {run.info.run_id}` carries on after generation 0" in line
    assert len(calls) == 2  # the failed write is not tried again on the way out
    # tracking first: both generations' metrics reached MLflow, the first checkpoint too
    steps = [m.step for m in client.get_metric_history(run.info.run_id, "best_fitness")]
    assert steps == [0, 1]
    arts = {a.path for a in client.list_artifacts(run.info.run_id, "checkpoints")}
    assert arts == {"checkpoints/latest.npz", "checkpoints/gen_00001.npz"}
    best = json.loads(Path(client.download_artifacts(run.info.run_id,
                                                     "best_params.json")).read_text())
    assert best["generation"] == 1


def test_a_failure_keeps_its_own_traceback_without_chained_ones(store, evaluate_with,
                                                                monkeypatch):
    evaluate_with(scores_formula)

    def no_space(path, state, host):
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr(runner, "save_checkpoint", no_space)
    search = Search(toml_to_spec())
    with pytest.raises(StorageError) as err:
        run_search(search.spec, store, SPEC_TOML, search=search)
    shown = "".join(traceback.format_exception(err.value))
    assert shown.count("Traceback (most recent call last)") == 1, shown
    assert "launch it again" in str(err.value)  # no checkpoint yet: nothing to resume
    assert only_run(store)[1][0].info.status == "FAILED"
