"""metarl.tracking against real MLflow stores: temporary SQLite files and a loopback server.

Every assertion reads back through MlflowClient (or the files a failing tracker leaves), so
these test what MLflow ends up holding, not what the tracker believes it sent.
"""

from __future__ import annotations

import http.server
import json
import logging
import os
import shutil
import subprocess
import threading
import time
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np
import pytest
from mlflow.exceptions import MlflowException
from mlflow.protos.databricks_pb2 import INTERNAL_ERROR
from mlflow.tracking import MlflowClient

from metarl.tracking import (
    SearchTracker,
    TrackingUnavailable,
    check_tracking_uri,
    default_tags,
    download_artifact,
    list_search_runs,
    ops,
    resolve_tracking_uri,
    ui_command,
)
from metarl.tracking.tracker import HTTP_CLIENT_DEFAULTS

if TYPE_CHECKING:
    from mlflow_server import MlflowServer

# fixtures mlflow_db_template, mlflow_server_process, mlflow_server
pytest_plugins = ["mlflow_server"]

REPO = Path(__file__).resolve().parents[1]
SPEC = '[search]\nkind = "hparams"\n'


@pytest.fixture(scope="module", autouse=True)
def _launch_server_early(request: pytest.FixtureRequest) -> None:
    # the server takes 10-20 s to start on 2 cores: launch it before the SQLite tests so
    # its startup overlaps them instead of adding to the file's run time
    if any("mlflow_server" in item.fixturenames for item in request.session.items
           if item.module is request.module):
        request.getfixturevalue("mlflow_server_process")


@pytest.fixture(autouse=True)
def _restore_mlflow_env() -> None:
    # trackers set MLflow's HTTP retry defaults in os.environ; keep other tests unaffected
    names = [*HTTP_CLIENT_DEFAULTS, "MLFLOW_TRACKING_URI"]
    saved = {name: os.environ.get(name) for name in names}
    yield
    for name, value in saved.items():
        if value is None:
            os.environ.pop(name, None)
        else:
            os.environ[name] = value


@pytest.fixture
def store(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, mlflow_db_template: Path) -> str:
    """A fresh SQLite store in tmp_path; the working directory is a separate tmp folder."""
    db = tmp_path / "store" / "mlflow.db"
    db.parent.mkdir()
    shutil.copy(mlflow_db_template, db)
    work = tmp_path / "work"
    work.mkdir()
    monkeypatch.chdir(work)
    monkeypatch.delenv("MLFLOW_TRACKING_URI", raising=False)
    return f"sqlite:///{db}"


def start(uri: str, experiment: str = "hparams-cartpole", run_name: str = "launch-1",
          params: dict | None = None) -> SearchTracker:
    return SearchTracker.start(
        tracking_uri=uri, experiment=experiment, run_name=run_name,
        params=params if params is not None else {"es.popsize": 4, "ppo.lr": 3e-4},
        tags={"metarl.spec_hash": "abc123"}, spec_text=SPEC)


def log_generation(tracker: SearchTracker, g: int, pop: int = 4, trials: int = 2) -> None:
    fitness = np.arange(pop, dtype=np.float32) + g
    tracker.log_metrics({"generation": g, "best_fitness": float(fitness.max()),
                         "mean_fitness": float(fitness.mean())}, step=g)
    tracker.log_population(g, fitness, {"lr": np.full(pop, 0.1 * g)})
    for i in range(trials):
        tracker.log_trial(f"g{g}-m{i}", {"generation": g, "member": i},
                          {"fitness": float(fitness[i]), "curve": [0.0, 1.0, 2.0 + g]})


def child_runs(client: MlflowClient, run: str, experiment_id: str) -> list:
    return client.search_runs([experiment_id], f"tags.mlflow.parentRunId = '{run}'",
                              max_results=1000)


def read_spill(path: Path) -> list[dict]:
    return [json.loads(line) for line in path.read_text().splitlines()][1:]  # skip header


def spilled_trials(saved: list[dict]) -> list[str]:
    """Names of the trials in spilled ops; queued trials may have been merged into one op."""
    return sorted([op["name"] for op in saved if op["op"] == "trial"]
                  + [t["name"] for op in saved if op["op"] == "trials" for t in op["items"]])


def generation_steps(client: MlflowClient, run_id: str) -> list[int]:
    return [m.step for m in client.get_metric_history(run_id, "generation")]


# -- choosing and checking a store -----------------------------------------------------------

def test_resolve_tracking_uri_prefers_argument_then_env_then_local_file(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    monkeypatch.delenv("MLFLOW_TRACKING_URI", raising=False)
    assert resolve_tracking_uri() == f"sqlite:///{tmp_path / 'mlflow.db'}"
    monkeypatch.setenv("MLFLOW_TRACKING_URI", "http://127.0.0.1:5000")
    assert resolve_tracking_uri() == "http://127.0.0.1:5000"
    assert resolve_tracking_uri("http://10.0.0.2:80") == "http://10.0.0.2:80"
    # relative SQLite locations are pinned to an absolute path
    assert resolve_tracking_uri("sqlite:///runs/m.db") == f"sqlite:///{tmp_path / 'runs/m.db'}"
    assert resolve_tracking_uri("other.db") == f"sqlite:///{tmp_path / 'other.db'}"


def test_check_tracking_uri_fails_fast_when_nothing_listens() -> None:
    from mlflow_server import free_port

    uri = f"http://127.0.0.1:{free_port()}"
    t0 = time.perf_counter()
    with pytest.raises(TrackingUnavailable) as info:
        check_tracking_uri(uri, timeout=2.0)
    assert time.perf_counter() - t0 < 2.0
    message = str(info.value)
    assert uri in message and "mlflow/serve.sh" in message
    assert "--tracking-uri" in message and "MLFLOW_TRACKING_URI" in message


def test_check_tracking_uri_rejects_a_server_that_is_not_mlflow() -> None:
    server = http.server.HTTPServer(("127.0.0.1", 0), http.server.SimpleHTTPRequestHandler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        with pytest.raises(TrackingUnavailable, match="not an MLflow tracking server"):
            check_tracking_uri(f"http://127.0.0.1:{server.server_port}", timeout=2.0)
    finally:
        server.shutdown()
        server.server_close()


def test_check_tracking_uri_sqlite_needs_a_writable_database_location(
        tmp_path: Path, mlflow_db_template: Path) -> None:
    check_tracking_uri(f"sqlite:///{tmp_path / 'new.db'}")
    check_tracking_uri(f"sqlite:///{mlflow_db_template}")
    with pytest.raises(TrackingUnavailable, match="does not exist"):
        check_tracking_uri(f"sqlite:///{tmp_path / 'missing' / 'mlflow.db'}")
    (tmp_path / "notes.db").write_text("not a database")
    with pytest.raises(TrackingUnavailable, match="not a SQLite database"):
        check_tracking_uri(f"sqlite:///{tmp_path / 'notes.db'}")


# -- one search run in a SQLite store --------------------------------------------------------

def test_search_run_records_params_tags_metrics_trials_and_artifacts(
        store: str, tmp_path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    params = {f"spec.p{i:03d}": i for i in range(150)}  # more than one log_batch of params
    params["spec.long"] = "x" * 700
    tracker = start(store, params=params)
    for g in range(3):
        log_generation(tracker, g)
    tracker.log_text("notes", "notes/readme.txt")
    fig, ax = plt.subplots()
    ax.plot([1, 2, 3])
    tracker.log_figure(fig, "figures/fitness.png")
    checkpoint = tmp_path / "ckpt.bin"
    checkpoint.write_bytes(b"\x00\x01")
    tracker.log_artifact(str(checkpoint), "checkpoints")
    checkpoint.write_bytes(b"overwritten")  # the tracker copied it when called
    tracker.set_tags({"metarl.note": "ok"})
    tracker.finish()
    assert not plt.fignum_exists(fig.number)
    assert tracker.failed_writes == 0

    client = MlflowClient(store)
    run = client.get_run(tracker.run_id)
    assert run.info.status == "FINISHED" and run.info.run_name == "launch-1"
    assert run.info.experiment_id == tracker.experiment_id
    assert len(run.data.params) == 151 and run.data.params["spec.p149"] == "149"
    assert run.data.params["spec.long"] == "x" * 500
    assert run.data.tags["metarl.spec_hash"] == "abc123"
    assert run.data.tags["metarl.note"] == "ok"
    assert generation_steps(client, tracker.run_id) == [0, 1, 2]
    assert run.data.metrics["best_fitness"] == 5.0
    # artifacts sit next to the database, not in the working directory
    assert run.info.artifact_uri.startswith(str(Path(store[len("sqlite:///"):]).parent))
    assert not (Path.cwd() / "mlruns").exists()

    out = tmp_path / "out"
    assert Path(download_artifact(store, tracker.run_id, "spec.toml", str(out))).read_text() \
        == SPEC
    notes = download_artifact(store, tracker.run_id, "notes/readme.txt", str(out))
    assert Path(notes).read_text() == "notes"
    png = download_artifact(store, tracker.run_id, "figures/fitness.png", str(out))
    assert Path(png).read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    ckpt = download_artifact(store, tracker.run_id, "checkpoints/ckpt.bin", str(out))
    assert Path(ckpt).read_bytes() == b"\x00\x01"
    table = Path(download_artifact(store, tracker.run_id, "population.csv", str(out)))
    lines = table.read_text().splitlines()
    assert lines[0] == "generation,member,fitness,lr"
    assert len(lines) == 1 + 3 * 4 and lines[-1] == "2,3,5.0,0.2"

    children = child_runs(client, tracker.run_id, tracker.experiment_id)
    assert sorted(c.info.run_name for c in children) == [
        "g0-m0", "g0-m1", "g1-m0", "g1-m1", "g2-m0", "g2-m1"]
    child = next(c for c in children if c.info.run_name == "g2-m1")
    assert child.info.status == "FINISHED" and child.data.params == {
        "generation": "2", "member": "1"}
    assert child.data.metrics["fitness"] == 3.0
    curve = client.get_metric_history(child.info.run_id, "curve")
    assert [(m.step, m.value) for m in curve] == [(0, 0.0), (1, 1.0), (2, 4.0)]


def test_more_than_1000_metrics_in_one_call_are_split_into_batches(
        store: str, monkeypatch: pytest.MonkeyPatch) -> None:
    tracker = start(store)
    tracker.flush()
    sizes = []
    log_batch = tracker._client.log_batch

    def spy(run_id, metrics=(), params=(), tags=(), synchronous=None):
        sizes.append(len(metrics))
        return log_batch(run_id, metrics=metrics, params=params, tags=tags,
                         synchronous=synchronous)

    monkeypatch.setattr(tracker._client, "log_batch", spy)
    tracker.log_metrics({f"m{i}": float(i) for i in range(2500)}, step=0)
    tracker.finish()
    assert max(sizes) <= 1000 and sum(sizes) == 2500
    metrics = MlflowClient(store).get_run(tracker.run_id).data.metrics
    assert len(metrics) == 2500 and metrics["m2499"] == 2499.0


def test_trials_written_in_one_transaction_equal_trials_written_run_by_run(
        store: str, monkeypatch: pytest.MonkeyPatch) -> None:
    client = MlflowClient(store)
    exp = client.create_experiment("bulk")
    parent = client.create_run(exp).info.run_id

    def trials(prefix: str) -> ops.Op:
        batch = None
        for m in range(3):
            op = ops.trial_op(parent, exp, f"{prefix}-m{m}", ops.param_items({"lr": 0.1 * m}),
                              {"fitness": float("nan") if m == 2 else m, "curve": [1.0, m]},
                              ops.tag_items({"metarl.member": str(m)}))
            if batch is None:
                batch = op
            else:
                assert ops.merge(batch, op)
        return batch

    ops.execute(trials("bulk"), client)
    monkeypatch.setattr(ops, "sql_store", lambda client: None)  # MlflowClient calls instead
    ops.execute(trials("client"), client)

    def view(run) -> tuple:
        history = {k: [(m.step, m.value) for m in client.get_metric_history(run.info.run_id, k)]
                   for k in run.data.metrics}
        tags = {k: v for k, v in run.data.tags.items() if k != "mlflow.runName"}
        return (run.info.run_name.split("-", 1)[1], run.info.status, run.info.user_id,
                run.info.artifact_uri.replace(run.info.run_id, "<id>"),
                run.info.lifecycle_stage, run.data.params, tags, repr(history),
                repr(run.data.metrics))  # repr: NaN equals NaN

    runs = {r.info.run_name: view(r) for r in child_runs(client, parent, exp)}
    assert len(runs) == 6
    for m in range(3):
        assert runs[f"bulk-m{m}"] == runs[f"client-m{m}"]


def test_log_calls_return_before_mlflow_has_written(store: str,
                                                    monkeypatch: pytest.MonkeyPatch) -> None:
    tracker = start(store)
    tracker.flush()
    gate = threading.Event()
    log_batch = tracker._client.log_batch

    def blocked_log_batch(*args, **kwargs):
        gate.wait(30)
        return log_batch(*args, **kwargs)

    monkeypatch.setattr(tracker._client, "log_batch", blocked_log_batch)
    t0 = time.perf_counter()
    for i in range(10):
        tracker.log_trial(f"t{i}", {"i": i}, {"fitness": float(i)})
        tracker.log_metrics({"generation": i}, step=i)
    caller_time = time.perf_counter() - t0
    gate.set()
    tracker.finish()
    assert caller_time < 0.5  # MLflow was blocked the whole time
    client = MlflowClient(store)
    assert len(child_runs(client, tracker.run_id, tracker.experiment_id)) == 10
    assert generation_steps(client, tracker.run_id) == list(range(10))


def test_attach_resumes_the_same_run(store: str, tmp_path: Path) -> None:
    tracker = start(store)
    for g in range(3):
        log_generation(tracker, g, trials=0)
    tracker.finish("KILLED")
    client = MlflowClient(store)
    assert client.get_run(tracker.run_id).info.status == "KILLED"

    resumed = SearchTracker.attach(tracker.run_id, store)
    assert client.get_run(tracker.run_id).info.status == "RUNNING"
    assert (resumed.run_id, resumed.experiment_id) == (tracker.run_id, tracker.experiment_id)
    assert resumed.last_step() == 2
    # the search resumes from a checkpoint at generation 1 and re-runs generation 2
    for g in (2, 3):
        log_generation(resumed, g, trials=0)
    resumed.finish()
    assert client.get_run(tracker.run_id).info.status == "FINISHED"
    assert max(generation_steps(client, tracker.run_id)) == 3
    table = download_artifact(store, tracker.run_id, "population.csv", str(tmp_path / "o"))
    generations = [line.split(",")[0] for line in Path(table).read_text().splitlines()[1:]]
    assert generations == ["0"] * 4 + ["1"] * 4 + ["2"] * 4 + ["3"] * 4
    with pytest.raises(ValueError, match="no run"):
        SearchTracker.attach("0" * 32, store)


def test_list_search_runs_lists_parent_runs_newest_first(store: str) -> None:
    first = start(store, experiment="pbt-pendulum", run_name="a")
    log_generation(first, 0)
    log_generation(first, 1)
    first.finish()
    time.sleep(0.01)  # distinct start times
    second = start(store, experiment="hparams-cartpole", run_name="b")
    second.finish("FAILED")

    runs = list_search_runs(store)
    assert [r["run_id"] for r in runs] == [second.run_id, first.run_id]  # no trials
    newest, oldest = runs
    assert newest["search"] == "hparams-cartpole" and newest["status"] == "FAILED"
    assert newest["generations"] is None and newest["best_fitness"] is None
    assert oldest["search"] == "pbt-pendulum" and oldest["status"] == "FINISHED"
    assert oldest["generations"] == 2 and oldest["best_fitness"] == 4.0
    assert oldest["started"] <= newest["started"] and oldest["started"].tzinfo is not None
    assert len(list_search_runs(store, max_results=1)) == 1


def test_download_artifact_names_what_exists_when_the_path_does_not(
        store: str, tmp_path: Path) -> None:
    tracker = start(store)
    tracker.log_text("x", "notes/a.txt")
    tracker.finish()
    with pytest.raises(FileNotFoundError, match="spec.toml"):
        download_artifact(store, tracker.run_id, "population.csv", str(tmp_path / "o"))
    with pytest.raises(FileNotFoundError, match="notes/a.txt"):
        download_artifact(store, tracker.run_id, "notes/b.txt", str(tmp_path / "o"))


def test_bad_names_and_values_are_refused_at_the_call_not_lost_later(store: str) -> None:
    tracker = start(store)
    with pytest.raises(ValueError, match="invalid metric name 'loss\\[0\\]'"):
        tracker.log_metrics({"loss[0]": 1.0}, step=0)
    with pytest.raises(ValueError, match="one-element array"):
        tracker.log_metrics({"loss": np.zeros(3)}, step=0)
    with pytest.raises(ValueError, match="shape"):
        tracker.log_population(0, np.zeros((4, 2)))
    with pytest.raises(ValueError, match="relative file path"):
        tracker.log_text("x", "../escape.txt")
    tracker.log_metrics({"loss": np.float32(0.5), "ok": np.ones(())}, step=0)
    tracker.finish()
    assert tracker.failed_writes == 0
    assert MlflowClient(store).get_run(tracker.run_id).data.metrics == {"loss": 0.5, "ok": 1.0}
    with pytest.raises(RuntimeError, match="finished"):
        tracker.log_metrics({"loss": 1.0}, step=1)


# -- MLflow failing mid-search -----------------------------------------------------------------

class Outage:
    """Makes a client's log_batch (and bulk trial inserts) fail as an unreachable store
    does, until `end()`."""

    def __init__(self, client: MlflowClient, monkeypatch: pytest.MonkeyPatch) -> None:
        self.active = True
        monkeypatch.setattr(client, "log_batch", self._failing(client.log_batch))
        monkeypatch.setattr(ops, "insert_trials", self._failing(ops.insert_trials))

    def _failing(self, fn):
        def failing(*args, **kwargs):
            if self.active:
                raise MlflowException("API request failed: Connection refused", INTERNAL_ERROR)
            return fn(*args, **kwargs)
        return failing

    def end(self) -> None:
        self.active = False


def test_writes_that_fail_are_spilled_then_sent_when_the_store_returns(
        store: str, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture) -> None:
    monkeypatch.setattr(SearchTracker, "retry_interval_s", 0.2)
    tracker = start(store)
    tracker.flush()
    outage = Outage(tracker._client, monkeypatch)
    for g in range(3):
        log_generation(tracker, g, trials=1)
    tracker.flush()  # returns although nothing could be written
    assert tracker.failed_writes > 0
    assert tracker.spill_path == Path.cwd() / ".metarl" / "unsent" / f"{tracker.run_id}.jsonl"
    assert tracker.spill_path.exists()
    spill_warnings = [r for r in caplog.records if "saved" in r.getMessage()]
    assert len(spill_warnings) == 1 and spill_warnings[0].levelno == logging.WARNING

    outage.end()
    time.sleep(0.3)
    log_generation(tracker, 3, trials=1)  # sent after the spilled ones, in order
    tracker.finish()
    assert not tracker.spill_path.exists()
    client = MlflowClient(store)
    assert generation_steps(client, tracker.run_id) == [0, 1, 2, 3]
    children = child_runs(client, tracker.run_id, tracker.experiment_id)
    # trial runs were created before the outage hit their metrics: no duplicates on resend
    assert sorted(c.info.run_name for c in children) == ["g0-m0", "g1-m0", "g2-m0", "g3-m0"]
    assert all("fitness" in c.data.metrics for c in children)


def test_replay_unsent_sends_what_a_finished_search_could_not(
        store: str, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture) -> None:
    tracker = start(store)
    tracker.flush()
    outage = Outage(tracker._client, monkeypatch)
    monkeypatch.setattr(tracker._client, "set_terminated", lambda *a, **k: (_ for _ in ()).throw(
        MlflowException("Connection refused", INTERNAL_ERROR)))
    log_generation(tracker, 0)
    tracker.finish()
    assert "could not be sent" in caplog.text
    saved = read_spill(tracker.spill_path)
    kinds = [op["op"] for op in saved]
    assert spilled_trials(saved) == ["g0-m0", "g0-m1"]
    assert kinds[-1] == "terminate" and "file" in kinds

    client = MlflowClient(store)
    assert client.get_run(tracker.run_id).info.status == "RUNNING"
    outage.end()
    # what a person types: `metarl runs replay RUN_ID` (a prefix), in the search's folder
    from click.testing import CliRunner

    from metarl.cli import main

    result = CliRunner().invoke(main, ["runs", "replay", tracker.run_id[:8]])
    assert result.exit_code == 0, result.output
    assert f"sent {len(kinds)} write(s); all sent" in result.output
    assert not tracker.spill_path.exists()
    run = client.get_run(tracker.run_id)
    assert run.info.status == "FINISHED" and generation_steps(client, tracker.run_id) == [0]
    assert "population.csv" in [a.path for a in client.list_artifacts(tracker.run_id)]
    assert len(child_runs(client, tracker.run_id, tracker.experiment_id)) == 2


# -- a real tracking server -------------------------------------------------------------------

def test_tracking_server_receives_generations_and_trials(
        mlflow_server: MlflowServer, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    check_tracking_uri(mlflow_server.url)
    tracker = start(mlflow_server.url, experiment="over-http")
    for g in range(3):
        log_generation(tracker, g)
    tracker.finish()
    assert tracker.failed_writes == 0

    client = MlflowClient(mlflow_server.url)
    run = client.get_run(tracker.run_id)
    assert run.info.status == "FINISHED"
    assert generation_steps(client, tracker.run_id) == [0, 1, 2]
    children = child_runs(client, tracker.run_id, tracker.experiment_id)
    assert len(children) == 6 and {c.info.status for c in children} == {"FINISHED"}
    table = download_artifact(mlflow_server.url, tracker.run_id, "population.csv",
                              str(tmp_path / "o"))
    assert len(Path(table).read_text().splitlines()) == 1 + 3 * 4
    listed = [r for r in list_search_runs(mlflow_server.url) if r["run_id"] == tracker.run_id]
    assert listed[0]["generations"] == 3 and listed[0]["search"] == "over-http"
    # artifacts went through the server into its artifact directory
    assert any(mlflow_server.artifacts_dir.rglob("population.csv"))


def test_server_killed_mid_search_leaves_results_on_disk_not_an_exception(
        mlflow_server: MlflowServer, tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
        caplog: pytest.LogCaptureFixture) -> None:
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("MLFLOW_HTTP_REQUEST_MAX_RETRIES", "0")  # fail in ms, not minutes
    tracker = start(mlflow_server.url, experiment="killed")
    log_generation(tracker, 0)
    tracker.flush()
    assert tracker.failed_writes == 0

    mlflow_server.kill()
    t0 = time.perf_counter()
    for g in (1, 2):
        log_generation(tracker, g)
    tracker.finish()
    assert time.perf_counter() - t0 < 30
    assert tracker.failed_writes > 0
    saved = read_spill(tracker.spill_path)
    steps = {m[3] for op in saved if op["op"] == "batch" for m in op["metrics"]
             if m[0] == "generation"}
    assert steps == {1, 2}
    assert spilled_trials(saved) == ["g1-m0", "g1-m1", "g2-m0", "g2-m1"]
    assert saved[-1]["op"] == "terminate" and saved[-1]["status"] == "FINISHED"
    population = [op for op in saved if op["op"] == "file"]
    assert Path(population[0]["local_path"]).read_text().count("\n") == 1 + 3 * 4
    assert len([r for r in caplog.records if "saved to" in r.getMessage()]) == 1


# -- helpers for the CLI ----------------------------------------------------------------------

def test_default_tags_describe_code_spec_and_hardware(tmp_path: Path,
                                                      monkeypatch: pytest.MonkeyPatch) -> None:
    import metarl

    monkeypatch.chdir(REPO)
    tags = default_tags("f00d")
    assert tags["metarl.version"] == metarl.__version__
    assert tags["metarl.spec_hash"] == "f00d"
    assert tags["metarl.git_commit"] != "unknown" and len(tags["metarl.git_commit"]) >= 7
    platform, count = tags["metarl.jax_devices"].split(",")[0].split(":")
    assert platform in ("cpu", "gpu", "tpu") and int(count) >= 1
    assert tags["metarl.hostname"]


def test_git_commit_is_metarls_own_not_the_launch_folders(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    import metarl

    head = subprocess.run(["git", "rev-parse", "--short", "HEAD"], cwd=REPO, text=True,
                          capture_output=True, check=True).stdout.strip()
    other = tmp_path / "project"  # the user's own repository, where the search is launched
    other.mkdir()
    git = ["git", "-c", "user.name=t", "-c", "user.email=t@t"]
    subprocess.run([*git, "init", "-q"], cwd=other, check=True)
    (other / "__init__.py").write_text("")
    subprocess.run([*git, "add", "__init__.py"], cwd=other, check=True)
    subprocess.run([*git, "commit", "-qm", "theirs"], cwd=other, check=True)
    monkeypatch.chdir(other)
    assert default_tags("f00d")["metarl.git_commit"] == head
    # a wheel install: metarl's folder is no git checkout, whatever the launch folder is
    wheel = tmp_path / "site-packages" / "metarl"
    wheel.mkdir(parents=True)
    monkeypatch.setattr(metarl, "__file__", str(wheel / "__init__.py"))
    assert default_tags("f00d")["metarl.git_commit"] == "unknown"
    # ... also when that site-packages sits, untracked, inside someone's repository
    venv = other / ".venv" / "metarl"
    venv.mkdir(parents=True)
    monkeypatch.setattr(metarl, "__file__", str(venv / "__init__.py"))
    assert default_tags("f00d")["metarl.git_commit"] == "unknown"


def test_ui_command_serves_a_local_store_on_loopback() -> None:
    cmd = ui_command("sqlite:////data/mlflow.db", 5001)
    assert cmd[1:] == ["-m", "mlflow", "ui", "--backend-store-uri", "sqlite:////data/mlflow.db",
                       "--host", "127.0.0.1", "--port", "5001"]
    with pytest.raises(ValueError, match="already a tracking server"):
        ui_command("http://127.0.0.1:5000", 5001)


def test_serve_script_defaults_to_loopback_and_sqlite() -> None:
    script = REPO / "mlflow" / "serve.sh"
    out = subprocess.run(["bash", str(script), "--dry-run"], capture_output=True, text=True,
                         check=True, env={**os.environ, "PORT": "5123"}).stdout
    assert "server" in out and "--host 127.0.0.1" in out and "--port 5123" in out
    assert f"--backend-store-uri sqlite:///{REPO / 'mlflow' / 'mlflow.db'}" in out
    team = subprocess.run(
        ["bash", str(script), "--dry-run", "--host", "0.0.0.0"], capture_output=True, text=True,
        check=True, env={**os.environ, "BACKEND_STORE_URI": "postgresql://u@db/mlflow",
                         "ARTIFACTS_DESTINATION": "s3://bucket/mlflow"}).stdout
    assert "--backend-store-uri postgresql://u@db/mlflow" in team
    assert "--artifacts-destination s3://bucket/mlflow" in team and "--host 0.0.0.0" in team
