"""Searches with online outer loops (PES, meta-gradients) through the real runner: they track
their own figures at every step, and a search stopped and resumed ends bit for bit where an
uninterrupted one does, inner runs carried across steps included."""

import json

import jax
import numpy as np
import pytest
from mlflow.tracking import MlflowClient

from metarl.programs.runner import Search, resume_search, run_search
from metarl.spec import load_spec_data

SPEC = {
    "name": "online", "kind": "hparams", "seed": 5,
    "tasks": {"train": [{"env": "gymnax/CartPole-v1", "timesteps": 1024,
                         "return_range": [22.0, 500.0]}]},
    "inner": {"num_envs": 4, "num_steps": 32, "update_epochs": 1, "num_minibatches": 2,
              "hidden_sizes": [8], "rollout_unroll": 1, "minibatch_unroll": 1},
    "outer": {"generations": 4, "truncations": 4, "learning_rate": 0.05,
              "final_fraction": 1.0},
    "search_space": {"lr": {"low": 1e-4, "high": 1e-2, "log": True},
                     "gamma": {"low": 0.9, "high": 0.999}},
    "tracking": {"checkpoint_every": 1, "trials": "best"},
}
LOOPS = {"pes": {"algorithm": "pes", "population_size": 4, "sigma_init": 0.3},
         "meta_gradient": {"algorithm": "meta_gradient", "max_grad_norm": 1.0}}
FIGURES = {"pes": ("outer/grad_norm", "outer/truncation", "outer/inner_resets"),
           "meta_gradient": ("outer/grad_norm", "outer/grad_clipped", "outer/chaotic",
                             "outer/truncation", "outer/inner_resets")}


@pytest.fixture(scope="module", params=list(LOOPS))
def online(request, tmp_path_factory):
    spec = json.loads(json.dumps(SPEC))
    spec["outer"].update(LOOPS[request.param])
    search = Search(load_spec_data(spec, request.param))
    work = tmp_path_factory.mktemp(request.param)
    return request.param, search, work, f"sqlite:///{work / 'mlflow.db'}"


def test_online_search_tracks_its_outer_loop_and_resumes_bit_identically(online, monkeypatch):
    name, search, work, uri = online
    monkeypatch.chdir(work)
    whole = run_search(search.spec, uri, "# online\n", search=search)
    assert whole.status == "FINISHED" and whole.generations == 4
    client = MlflowClient(uri)
    for metric in FIGURES[name]:
        assert [m.step for m in client.get_metric_history(whole.run_id, metric)] == [0, 1, 2, 3]
    first = run_search(search.spec, uri, "# online\n", stop_after=2, search=search)
    assert first.status == "KILLED"
    resumed = resume_search(first.run_id, uri, search=search)
    assert resumed.generations == 4 and resumed.history == whole.history
    for a, b in zip(jax.tree.leaves(resumed.mean_params), jax.tree.leaves(whole.mean_params),
                    strict=True):
        np.testing.assert_array_equal(a, b)
    assert resumed.best_fitness == whole.best_fitness or (
        np.isnan(resumed.best_fitness) and np.isnan(whole.best_fitness))
