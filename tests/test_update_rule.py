"""An update-rule search end to end: evolve an LPO drift, export it, import it, evaluate it."""

import importlib.util
import json

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from click.testing import CliRunner
from mlflow.tracking import MlflowClient

from metarl.cli import main
from metarl.learned import MLPObjective, ppo_clip_drift
from metarl.programs.drift_plot import ADVANTAGES, RATIOS, drift_figure, implied_drift_grid
from metarl.programs.runner import Search, run_search
from metarl.programs.update_rule import UpdateRuleSearch
from metarl.spec import load_spec_data

SPEC = {
    "name": "tiny_lpo", "kind": "update_rule", "seed": 1,
    "tasks": {"train": [{"env": "gymnax/CartPole-v1", "timesteps": 512,
                         "return_range": [22.0, 500.0]}],
              "held_out": [{"env": "gymnax/CartPole-v1", "name": "lowg", "timesteps": 512,
                            "env_params": {"gravity": 4.0}, "return_range": [22.0, 500.0]}]},
    "rule": {"objective": "lpo", "init": "ppo", "settings": {"hidden_sizes": [8]}},
    "inner": {"num_envs": 4, "num_steps": 32, "update_epochs": 1, "num_minibatches": 2,
              "hidden_sizes": [16, 16], "rollout_unroll": 1, "minibatch_unroll": 1},
    "outer": {"algorithm": "open_es", "population_size": 4, "generations": 2,
              "sigma_init": 0.05, "learning_rate": 0.01},
    "tracking": {"checkpoint_every": 1, "trials": "best", "meta_test_every": 1},
}


@pytest.fixture(scope="module")
def searched(tmp_path_factory):
    import os

    work = tmp_path_factory.mktemp("lpo")
    uri = f"sqlite:///{work}/mlflow.db"
    search = Search(load_spec_data(json.loads(json.dumps(SPEC)), "tiny_lpo"))
    cwd = os.getcwd()
    os.chdir(work)
    try:
        result = run_search(search.spec, uri, "# tiny\n", search=search)
    finally:
        os.chdir(cwd)
    return work, uri, search, result


def invoke(work, *args):
    res = CliRunner().invoke(main, list(args), env={"COLUMNS": "200"})
    return res.exit_code, res.output


def test_search_tracks_drift_pictures_and_meta_tests(searched):
    work, uri, search, result = searched
    client = MlflowClient(uri)
    assert result.status == "FINISHED" and result.generations == 2
    arts = {a.path for a in client.list_artifacts(result.run_id, "drift")}
    assert {"drift/gen_00001.png", "drift/gen_00002.png"} <= arts
    assert [m.step for m in client.get_metric_history(
        result.run_id, "meta_test/normalised_return")] == [0, 1]
    children = client.search_runs([client.get_run(result.run_id).info.experiment_id],
                                  f"tags.mlflow.parentRunId = '{result.run_id}'")
    kinds = sorted(c.data.tags["metarl.trial"] for c in children)
    assert kinds == ["candidate", "candidate", "mean-evaluation", "mean-evaluation"]
    tests = [c.data.metrics for c in children if c.data.tags["metarl.trial"] != "candidate"]
    # both meta-tests train on the same seeds, so PPO-clip's baseline is identical
    assert tests[0]["ppo_clip/return/lowg"] == tests[1]["ppo_clip/return/lowg"]
    for m in tests:
        ref = m["ppo_clip/normalised_return"]
        if ref > 0:
            assert m["ratio_to_ppo_clip"] == pytest.approx(m["normalised_return"] / ref,
                                                           rel=1e-6)
        else:  # at this tiny budget PPO-clip may not beat a random policy: no ratio then
            assert np.isnan(m["ratio_to_ppo_clip"])


def test_export_reproduces_the_rule_and_rejects_tampering(searched, monkeypatch):
    work, uri, search, result = searched
    monkeypatch.chdir(work)
    out = work / "my_rule.py"
    code, text = invoke(work, "export", result.run_id, "--output", str(out),
                        "--tracking-uri", uri)
    assert code == 0, text
    spec = importlib.util.spec_from_file_location("my_rule", out)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    r = jnp.exp(jnp.linspace(-0.6, 0.6, 101))
    a = jnp.linspace(-3, 3, 101)
    objective = search.program.objective
    mine = objective.drift(result.mean_params, r, a)
    np.testing.assert_allclose(module.drift(r, a), mine, atol=1e-6)
    assert hasattr(module, "drift_symbolic")
    assert float(module.drift_symbolic(jnp.array(1.0), jnp.array(2.0))) == 0.0
    source = out.read_text()
    tampered = work / "tampered_rule.py"
    digits = source.index("WEIGHTS = ")
    i = next(i for i in range(digits, len(source)) if source[i] in "123456789")
    tampered.write_text(source[:i] + str((int(source[i]) % 9) + 1) + source[i + 1:])
    from metarl.export import ExportError
    from metarl.rule_import import load_module

    with pytest.raises(ExportError, match="checksum"):
        load_module(tampered)


def test_exported_rule_seeds_a_new_search(searched, tmp_path):
    work, uri, search, result = searched
    out = tmp_path / "seed_rule.py"
    code, text = invoke(work, "export", result.run_id, "--output", str(out), "--no-symbolic",
                        "--tracking-uri", uri)
    assert code == 0, text
    spec = json.loads(json.dumps(SPEC))
    spec["rule"] = {"objective": "module:seed_rule.py"}  # next to the spec: parsed, not run
    seeded = Search(load_spec_data(spec, "seeded", tmp_path / "seeded.toml"))
    start = seeded.program.initial_mean()
    for a, b in zip(sorted(start.items()), sorted(result.mean_params.items()), strict=True):
        np.testing.assert_allclose(a[1], b[1], atol=1e-7)


def test_evaluate_reports_iqm_against_baselines(searched, monkeypatch):
    work, uri, search, result = searched
    monkeypatch.chdir(work)
    code, text = invoke(work, "evaluate", result.run_id, "--seeds", "2", "--baselines",
                        "ppo_clip", "--final-fraction", "0.5", "--tracking-uri", uri)
    assert code == 0, text
    assert "IQM normalised" in text and "ppo_clip" in text and "lowg" in text
    assert "paired bootstrap 95% CI" in text
    client = MlflowClient(uri)
    runs = client.search_runs([client.get_run(result.run_id).info.experiment_id],
                              "tags.`metarl.trial` = 'evaluation'")
    metrics = runs[0].data.metrics
    assert "learned/iqm" in metrics and "ratio_to_ppo_clip_ci_low" in metrics
    assert any(a.path == "learning_curves.png" for a in client.list_artifacts(runs[0].info.run_id))


def test_evaluate_checks_a_held_out_suite_against_the_runs_budget(searched, monkeypatch):
    work, uri, search, result = searched
    monkeypatch.chdir(work)
    (work / "short.toml").write_text(
        '[[held_out]]\nenv = "gymnax/Acrobot-v1"\ntimesteps = 64\nreturn_range = [-500.0, -80.0]\n')
    code, text = invoke(work, "evaluate", result.run_id, "--tasks", "short.toml",
                        "--tracking-uri", uri)
    assert code == 2 and "Traceback" not in text
    assert "short.toml" in text and "'Acrobot-v1'" in text
    assert "(inner.num_envs * inner.num_steps = 128)" in text


def test_evaluate_rejects_an_empty_scoring_window(tmp_path):
    code, text = invoke(tmp_path, "evaluate", "nope", "--final-fraction", "0")
    assert code == 2 and "--final-fraction" in text and "Traceback" not in text


def test_export_of_unknown_run_fails_cleanly(tmp_path):
    code, text = invoke(tmp_path, "export", "nope", "--tracking-uri",
                        f"sqlite:///{tmp_path}/x.db")
    assert code != 0 and "Traceback" not in text


def test_meta_test_scores_its_own_window():
    data = json.loads(json.dumps(SPEC))
    data["tracking"]["meta_test_final_fraction"] = 1.0
    program = UpdateRuleSearch(load_spec_data(data, "tiny_lpo"))
    # 4 updates: fitness scores the last one (10%), the meta-test all four
    assert program.suite.tasks[0].tail == 1
    assert program.meta_test.suite.tasks[0].tail == 4


def test_general_objective_is_pictured_by_its_implied_drift():
    rule = MLPObjective(hidden_sizes=(4,), base_clip_eps=0.2)
    params = rule.init(jax.random.PRNGKey(0))
    r, a = np.meshgrid(RATIOS, ADVANTAGES)
    # a zero correction on a PPO-clip base: the picture is PPO-clip's drift
    np.testing.assert_allclose(implied_drift_grid(rule, params, 0.5),
                               ppo_clip_drift(r, a, 0.2), atol=1e-5)
    fig = drift_figure(rule, params, "t")
    assert len(fig.axes) == 6  # progress 0, 0.5, 1, each with its colour bar
