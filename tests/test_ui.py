"""`metarl ui`: the experiment tags that make MLflow's UI open on the runs table, the address
it prints, and its refusals. No browser and no MLflow server here: the server is faked, and
scripts/ui_screenshot.py checks the page itself in Chromium."""

from __future__ import annotations

import json
import shutil
import socket
import sys
from collections.abc import Callable
from pathlib import Path

import pytest
from click.testing import CliRunner
from mlflow.tracking import MlflowClient

from metarl.cli import main
from metarl.tracking import SearchTracker
from metarl.tracking import ui as ui_module
from metarl.tracking.experiment_view import (
    KIND_MODEL_TRAINING,
    KIND_TAG,
    VIEW_ID,
    VIEW_TAG,
    refresh_views,
    runs_page_url,
)
from metarl.tracking.ui import UiUnavailable, check_port_free, serve, ui_command

# fixture mlflow_db_template: a migrated SQLite database to copy
pytest_plugins = ["mlflow_server"]


@pytest.fixture
def store(tmp_path: Path, mlflow_db_template: Path) -> str:
    db = tmp_path / "mlflow.db"
    shutil.copy(mlflow_db_template, db)
    return f"sqlite:///{db}"


@pytest.fixture
def port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def run_ui(*args: str) -> tuple[int, str, str]:
    result = CliRunner().invoke(main, ["ui", *args])
    return result.exit_code, result.stdout, result.stderr


def fake_serve(status: int) -> Callable[..., int]:
    """Stands in for the MLflow server: ready at once, then exits with `status`."""
    def serve(cmd: list[str], port: int, on_ready: Callable[[], None]) -> int:
        on_ready()
        return status
    return serve


def view(client: MlflowClient, experiment_id: str) -> dict:
    envelope = json.loads(client.get_experiment(experiment_id).tags[VIEW_TAG])
    return {**envelope, "state": json.loads(envelope["state"])}


def log_search(client: MlflowClient, experiment_id: str, params: tuple[str, ...]) -> str:
    """A search run with one candidate trial and one evaluation of the mean, as the runner
    tags them."""
    parent = client.create_run(experiment_id, tags={"metarl.run_type": "search"}).info.run_id
    client.log_metric(parent, "best_fitness", 0.5)
    for trial, trial_params in (("candidate", params), ("mean-evaluation", ("generation",))):
        run = client.create_run(experiment_id, tags={
            "mlflow.parentRunId": parent, "metarl.run_type": "trial", "metarl.trial": trial})
        for name in trial_params:
            client.log_param(run.info.run_id, name, "0.1")
        client.log_metric(run.info.run_id, "fitness", 0.5)
    return parent


def test_a_search_creates_its_experiment_tagged_for_the_runs_table(store: str) -> None:
    tracker = SearchTracker.start(tracking_uri=store, experiment="cartpole", run_name="launch",
                                  params={}, tags={}, spec_text="")
    tracker.finish()
    client = MlflowClient(store)
    assert client.get_experiment(tracker.experiment_id).tags[KIND_TAG] == KIND_MODEL_TRAINING
    saved = view(client, tracker.experiment_id)
    assert saved["state"]["selectedColumns"] == ["metrics.`fitness`", "metrics.`best_fitness`"]
    assert isinstance(saved["name"], str) and isinstance(saved["createdAt"], int)


def test_refresh_adds_the_searched_hyperparameters_and_keeps_a_chosen_kind(store: str) -> None:
    client = MlflowClient(store)
    old = client.create_experiment("made-by-an-older-metarl")
    chosen = client.create_experiment("kind-chosen-in-the-ui", tags={KIND_TAG: "genai_development"})
    other = client.create_experiment("not-a-search")
    log_search(client, old, ("lr", "clip_eps"))
    log_search(client, chosen, ("lr",))
    assert refresh_views(client) == chosen  # the newest search's experiment
    columns = view(client, old)["state"]["selectedColumns"]
    assert columns == ["metrics.`fitness`", "metrics.`best_fitness`", "params.`clip_eps`",
                       "params.`lr`"]  # not `generation`: that is the mean's evaluation
    assert client.get_experiment(old).tags[KIND_TAG] == KIND_MODEL_TRAINING
    assert client.get_experiment(chosen).tags[KIND_TAG] == "genai_development"
    assert VIEW_TAG not in client.get_experiment(other).tags


def test_refresh_writes_nothing_when_the_view_is_current(store: str) -> None:
    client = MlflowClient(store)
    experiment = client.create_experiment("s")
    log_search(client, experiment, ("lr",))
    refresh_views(client)
    before = client.get_experiment(experiment).tags
    refresh_views(client)
    assert client.get_experiment(experiment).tags == before  # updatedAt included


def test_runs_page_url_opens_the_model_training_runs_with_the_saved_view() -> None:
    assert runs_page_url("http://127.0.0.1:5001", "7") == (
        "http://127.0.0.1:5001/#/experiments/7/runs"
        f"?workflowType=machine_learning&viewStateShareKey={VIEW_ID}")
    assert runs_page_url("http://127.0.0.1:5001/", None) == "http://127.0.0.1:5001/"


def test_ui_prints_the_newest_search_runs_page_on_stdout(
        store: str, port: int, monkeypatch: pytest.MonkeyPatch) -> None:
    client = MlflowClient(store)
    log_search(client, client.create_experiment("older"), ("lr",))
    newest = client.create_experiment("newer")
    log_search(client, newest, ("lr",))
    monkeypatch.setattr(ui_module, "serve", fake_serve(0))
    code, out, err = run_ui("--port", str(port), "--tracking-uri", store)
    assert code == 0, err
    assert out == runs_page_url(f"http://127.0.0.1:{port}", newest) + "\n"
    assert VIEW_TAG in client.get_experiment(newest).tags


def test_ui_on_a_store_not_created_yet_prints_the_home_page(
        tmp_path: Path, port: int, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(ui_module, "serve", fake_serve(0))
    db = tmp_path / "new.db"
    code, out, _ = run_ui("--port", str(port), "--tracking-uri", f"sqlite:///{db}")
    assert (code, out) == (0, f"http://127.0.0.1:{port}/\n")
    assert not db.exists()  # reading for the address created nothing; MLflow will


def test_ui_exits_nonzero_when_the_server_fails(
        tmp_path: Path, port: int, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(ui_module, "serve", fake_serve(1))
    code, _, err = run_ui("--port", str(port), "--tracking-uri", f"sqlite:///{tmp_path}/m.db")
    assert code == 1 and "exited with status 1" in err


def test_ui_refuses_a_port_in_use_before_starting_mlflow(
        port: int, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    def no_server(*args: object, **kwargs: object) -> None:
        raise AssertionError("MLflow must not be started")

    monkeypatch.setattr(ui_module.subprocess, "Popen", no_server)
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", port))
        taken.listen()
        code, out, err = run_ui("--port", str(port), "--tracking-uri", f"sqlite:///{tmp_path}/m.db")
        with pytest.raises(UiUnavailable):
            check_port_free(port)
    assert code == 2 and out == ""
    assert err.count("\n") == 1 and f"port {port}" in err and "--port" in err


@pytest.mark.parametrize(("uri", "says"), [
    ("http://mlflow.example.org:5000", "open http://mlflow.example.org:5000 in a browser"),
    ("https://mlflow.example.org", "open https://mlflow.example.org in a browser"),
    ("bogus://x", "bogus://"),
])
def test_ui_refuses_a_store_it_cannot_serve_in_one_line(uri: str, says: str) -> None:
    code, out, err = run_ui("--tracking-uri", uri)
    assert code == 2 and out == "" and err.count("\n") == 1 and says in err


def test_ui_command_line_serves_a_database_store_on_loopback() -> None:
    assert ui_command("postgresql+psycopg2://u@db/mlflow", 5001) == [
        sys.executable, "-m", "mlflow", "ui", "--backend-store-uri",
        "postgresql+psycopg2://u@db/mlflow", "--host", "127.0.0.1", "--port", "5001"]
    for uri in ("file:///tmp/mlruns", "databricks", "http://127.0.0.1:5000"):
        with pytest.raises(UiUnavailable):
            ui_command(uri, 5001)


def test_serve_reports_when_the_server_listens_and_how_it_exited(port: int) -> None:
    listens = ("import socket, time; s = socket.socket(); "
               f"s.bind(('127.0.0.1', {port})); s.listen(); time.sleep(0.5)")
    ready: list[bool] = []
    assert serve([sys.executable, "-c", listens], port, lambda: ready.append(True),
                  poll_s=0.05) == 0
    assert ready == [True]
    assert serve([sys.executable, "-c", "raise SystemExit(3)"], port,
                 lambda: ready.append(False), poll_s=0.05) == 3
    assert ready == [True]  # never listened: no address printed
