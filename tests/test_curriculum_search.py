"""The `curriculum` search kind end to end on tiny mazes: the search runs and logs its buffer
figures, per-level solve rates and level pictures; a resumed search equals an uninterrupted
one; `metarl evaluate` compares the found curriculum with domain randomisation per level."""

import json

import jax
import numpy as np
import pytest
from click.testing import CliRunner
from mlflow.tracking import MlflowClient

from metarl.cli import main
from metarl.programs.runner import Search, resume_search, run_search
from metarl.spec import load_spec_data

LEVELS = [">.#\n..#\n..G", ">...\n###.\nG..."]
SPEC = {
    "name": "cur", "kind": "curriculum", "seed": 3,
    "tasks": {"train": [{"env": "metarl/Maze", "timesteps": 8 * 16 * 8, "eval_levels": LEVELS,
                         "env_kwargs": {"size": 6, "n_walls": 4, "max_steps": 16}}]},
    "inner": {"algorithm": "plr", "method": "robust_plr", "score_function": "learned",
              "num_envs": 8, "num_steps": 16, "num_minibatches": 2, "update_epochs": 1,
              "hidden_size": 16, "embed_sizes": [16], "head_sizes": [16], "capacity": 16,
              "min_fill": 0.25},
    "curriculum": {"search": ["replay_prob", "temperature"], "scorer_hidden": 4},
    "outer": {"algorithm": "open_es", "population_size": 2, "generations": 2},
    "tracking": {"checkpoint_every": 1},
}


@pytest.fixture(scope="module")
def workdir(tmp_path_factory):
    return tmp_path_factory.mktemp("curriculum")


@pytest.fixture(scope="module")
def uri(workdir):
    return f"sqlite:///{workdir / 'mlflow.db'}"


@pytest.fixture(scope="module")
def search():
    return Search(load_spec_data(json.loads(json.dumps(SPEC)), "cur"))


@pytest.fixture(scope="module")
def whole(search, uri, workdir):
    with pytest.MonkeyPatch.context() as mp:  # artifacts and checkpoints land in workdir
        mp.chdir(workdir)
        return run_search(search.spec, uri, "# cur\n", search=search)


def test_search_logs_buffer_figures_solve_rates_and_level_pictures(whole, uri):
    assert whole.status == "FINISHED" and len(whole.history["mean_fitness"]) == 2
    client = MlflowClient(uri)
    metrics = client.get_run(whole.run_id).data.metrics
    for name in ("buffer/Maze/fill", "buffer/Maze/score_mean", "buffer/Maze/staleness_mean",
                 "buffer/Maze/level_wall_count", "buffer/Maze/level_shortest_path",
                 "solve_rate/Maze/level0", "solve_rate/Maze/level1_best"):
        assert name in metrics, sorted(metrics)
    assert 0 <= metrics["solve_rate/Maze/level0"] <= 1
    pictures = [f.path for f in client.list_artifacts(whole.run_id, "levels")]
    assert any(p.endswith("top_levels_gen0002.png") for p in pictures), pictures


def test_resumed_search_equals_uninterrupted(whole, search, uri, workdir, monkeypatch):
    monkeypatch.chdir(workdir)
    first = run_search(search.spec, uri, "# cur\n", stop_after=1, search=search)
    resumed = resume_search(first.run_id, uri, search=search)
    assert resumed.history == whole.history
    for a, b in zip(jax.tree.leaves(resumed.mean_params), jax.tree.leaves(whole.mean_params),
                    strict=True):
        np.testing.assert_array_equal(a, b)


@pytest.mark.slow  # two more curriculum programs to compile: ~30 s on 2 cores
def test_evaluate_reports_each_level_against_domain_randomisation(whole, uri, workdir,
                                                                   monkeypatch):
    monkeypatch.chdir(workdir)
    result = CliRunner().invoke(main, ["evaluate", whole.run_id[:8], "--seeds", "1",
                                       "--baselines", "dr", "--tracking-uri", uri],
                                env={"COLUMNS": "200"})
    assert result.exit_code == 0, result.output
    for row in ("Maze/level0", "Maze/level1", "learned / dr IQM"):
        assert row in result.output, result.output
