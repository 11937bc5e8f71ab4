"""What `metarl evaluate` and `metarl export` record in MLflow, through the tracker: the same
records as ever, the search run's status left alone, and a store that fails after the
results are shown costing one line and exit 1, with the writes kept for replay_unsent."""

import logging
import math
import shutil
from pathlib import Path

import numpy as np
import pytest
from mlflow.exceptions import MlflowException
from mlflow.protos.databricks_pb2 import INTERNAL_ERROR
from mlflow.tracking import MlflowClient

from metarl.cli import rules
from metarl.programs.evaluation import RuleResult
from metarl.tracking import SearchTracker, replay_unsent

pytest_plugins = ["mlflow_server"]  # mlflow_db_template: a migrated store to copy


@pytest.fixture
def search(tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
           mlflow_db_template: Path) -> tuple[str, str]:
    """`(uri, run_id)` of a search run left KILLED, in a fresh SQLite store."""
    db = tmp_path / "store" / "mlflow.db"
    db.parent.mkdir()
    shutil.copy(mlflow_db_template, db)
    work = tmp_path / "work"
    work.mkdir()
    monkeypatch.chdir(work)
    uri = f"sqlite:///{db}"
    tracker = SearchTracker.start(tracking_uri=uri, experiment="records", run_name="s",
                                  params={"a": 1}, tags={}, spec_text="[search]\n")
    tracker.finish("KILLED")  # a status evaluate/export must not change
    return uri, tracker.run_id


def results() -> tuple[dict, dict]:
    rng = np.random.default_rng(0)

    def rule(shift: float) -> RuleResult:
        final = rng.normal(shift, 1.0, 3)
        return RuleResult(final={"CartPole-v1": final}, normalised={"CartPole-v1": final},
                          curves={"CartPole-v1": rng.normal(size=(3, 5))})

    # a CI that could not be computed: not logged
    return {"learned (mean)": rule(1.0), "ppo_clip": rule(0.0)}, \
        {"ppo_clip": (1.5, math.nan, math.nan)}


def log_evaluation(uri: str, run_id: str) -> None:
    res, ratios = results()
    with rules._kept_if_logging_fails("the table above"):
        rules._log_evaluation(uri, run_id, res, ratios, "mean", 3, None, 3, 0.5)


def test_evaluate_logs_a_finished_child_run_and_leaves_the_search_alone(search) -> None:
    uri, run_id = search
    log_evaluation(uri, run_id)
    client = MlflowClient(uri)
    parent = client.get_run(run_id)
    [child] = client.search_runs([parent.info.experiment_id],
                                 "tags.`metarl.trial` = 'evaluation'")
    assert child.info.run_name == "evaluate-mean-g3"
    assert child.info.status == "FINISHED"
    assert child.data.tags["mlflow.parentRunId"] == run_id
    assert child.data.tags["metarl.run_type"] == "trial"
    assert child.data.params == {"which": "mean", "generation": "3", "seeds": "3",
                                 "tasks": "(search's own)", "final_fraction": "0.5"}
    metrics = child.data.metrics
    assert {"learned/iqm", "learned/iqm_ci_low", "learned/return/CartPole-v1",
            "ppo_clip/iqm", "ratio_to_ppo_clip"} <= set(metrics)
    assert "ratio_to_ppo_clip_ci_low" not in metrics  # NaN
    assert [a.path for a in client.list_artifacts(child.info.run_id)] == ["learning_curves.png"]
    assert client.get_run(run_id).info.status == "KILLED"


def test_export_logs_the_module_under_exports_and_leaves_the_search_alone(
        search, tmp_path: Path) -> None:
    uri, run_id = search
    module = tmp_path / "my_rule.py"
    module.write_text("WEIGHTS = [1.0]\n")
    with rules._kept_if_logging_fails(str(module)):
        rules._log_export(uri, run_id, module)
    client = MlflowClient(uri)
    assert [a.path for a in client.list_artifacts(run_id, "exports")] == ["exports/my_rule.py"]
    got = client.download_artifacts(run_id, "exports/my_rule.py", str(tmp_path / "out"))
    assert Path(got).read_text() == "WEIGHTS = [1.0]\n"
    assert client.get_run(run_id).info.status == "KILLED"


def test_a_store_failing_after_the_results_costs_one_line_and_keeps_the_writes(
        search, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture,
        caplog: pytest.LogCaptureFixture) -> None:
    uri, run_id = search

    def refused(*args, **kwargs):
        raise MlflowException("API request failed: Connection refused", INTERNAL_ERROR)

    # the child run is created, then the store goes: its metrics, figure and status spill
    sent = MlflowClient.log_batch
    monkeypatch.setattr(MlflowClient, "log_batch", refused)
    monkeypatch.setattr(SearchTracker, "retry_interval_s", 0.1)
    capsys.readouterr()
    with caplog.at_level(logging.WARNING), pytest.raises(SystemExit) as exit_:
        log_evaluation(uri, run_id)
    assert exit_.value.code == 1
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1, err
    assert err[0].startswith("Error: the table above is complete, but logging it to MLflow "
                             "failed: ") and "replay_unsent" in err[0]
    assert not [r for r in caplog.records if r.name.startswith("metarl.tracking")]
    [saved] = Path(".metarl/unsent").glob("*.jsonl")
    assert any(saved.with_suffix("").rglob("learning_curves.png"))

    # once the store answers, the evaluation arrives whole, as a search's trials would
    monkeypatch.setattr(MlflowClient, "log_batch", sent)
    replay_unsent(str(saved))
    client = MlflowClient(uri)
    child = client.get_run(saved.stem)
    assert child.info.status == "FINISHED" and "learned/iqm" in child.data.metrics
    assert child.data.params["which"] == "mean"
    assert [a.path for a in client.list_artifacts(saved.stem)] == ["learning_curves.png"]


def test_a_store_gone_before_anything_is_logged_costs_one_line(
        search, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture) -> None:
    uri, run_id = search

    def refused(*args, **kwargs):
        raise MlflowException("API request failed: Connection refused", INTERNAL_ERROR)

    monkeypatch.setattr(MlflowClient, "get_run", refused)
    capsys.readouterr()
    with pytest.raises(SystemExit) as exit_:
        log_evaluation(uri, run_id)
    assert exit_.value.code == 1
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "could not read run" in err[0], err


def test_a_figure_made_without_pyplot_is_logged_and_not_kept(search) -> None:
    import gc
    import weakref

    from matplotlib.figure import Figure

    uri, run_id = search
    tracker = SearchTracker.open(run_id, uri)
    fig = Figure()
    fig.subplots().plot([1, 2, 3])
    alive = weakref.ref(fig)
    tracker.log_figure(fig, "figures/f.png")
    del fig
    gc.collect()
    assert alive() is None  # nothing holds it once the caller lets go
    tracker.close()
    client = MlflowClient(uri)
    assert [a.path for a in client.list_artifacts(run_id, "figures")] == ["figures/f.png"]
    assert client.get_run(run_id).info.status == "KILLED"
