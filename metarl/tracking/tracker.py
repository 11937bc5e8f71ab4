"""`SearchTracker`: everything one search launch records in MLflow.

One search launch is one parent run: its parameters are the flattened spec, its tags say which
code and hardware ran it, its metrics are per-generation statistics, and its artifacts are the
spec, population.csv, figures and checkpoints. Each evaluated candidate worth keeping
(a PBT member, a hyperparameter trial) is a child run nested under it.

Every method returns without waiting for MLflow except `start`, `attach`, `flush`, `finish`
and `last_step`; see writer.py for what happens when MLflow is unreachable.
"""

from __future__ import annotations

import atexit
import io
import logging
import os
import posixpath
import re
import shutil
import sys
import tempfile
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from metarl.tracking import ops
from metarl.tracking.errors import TrackingUnavailable
from metarl.tracking.population import PopulationTable
from metarl.tracking.spill import Spill, spill_dir, spill_path_for
from metarl.tracking.tags import RUN_TYPE_TAG
from metarl.tracking.uri import check_tracking_uri, is_http, sqlite_path
from metarl.tracking.writer import Writer, is_rejection

log = logging.getLogger("metarl.tracking")

POPULATION_FILE = "population.csv"
STATUSES = ("FINISHED", "KILLED", "FAILED")
STAGING_PREFIX = "metarl-tracking-"

# MLflow's HTTP defaults retry a dead server for about four minutes per request; a search
# would then wait that long at finish(). These apply only where the user set nothing.
HTTP_CLIENT_DEFAULTS = {
    "MLFLOW_HTTP_REQUEST_MAX_RETRIES": "3",
    "MLFLOW_HTTP_REQUEST_BACKOFF_FACTOR": "1",
    "MLFLOW_HTTP_REQUEST_TIMEOUT": "30",
}


class SearchTracker:
    """Logs one search launch (a parent MLflow run) and its trials (child runs).

    Call it from one thread. Writes go through a queue to a background thread; `flush()`
    waits for them. `failed_writes` counts writes that did not reach MLflow; they are in
    `spill_path` and are sent automatically once MLflow answers again.
    """

    # seconds between checks whether an unreachable store is back
    retry_interval_s: float = 30.0

    def __init__(self, client: Any, tracking_uri: str, run_id: str, experiment_id: str) -> None:
        self.tracking_uri = tracking_uri
        self.run_id = run_id
        self.experiment_id = experiment_id
        self.spill_path: Path = spill_path_for(run_id)
        self._client = client
        self._writer = Writer(client, tracking_uri, Spill(self.spill_path, tracking_uri, run_id),
                              probe=self._probe, retry_interval=self.retry_interval_s)
        self._population = PopulationTable()
        # made on first use: a full temp folder must not fail a run that was just created
        self._staging: Path | None = None
        self._staged = 0
        self._max_generation_step: int | None = None
        self._finished = False
        atexit.register(self._at_exit)

    # -- opening a run -------------------------------------------------------------------

    @classmethod
    def start(cls, *, tracking_uri: str, experiment: str, run_name: str,
              params: dict[str, Any], tags: dict[str, str], spec_text: str,
              spec_filename: str = "spec.toml") -> SearchTracker:
        """Create the parent run (and the experiment if missing); params/spec are queued."""
        client = _client(tracking_uri)
        param_items = ops.param_items(params)
        tag_items = ops.tag_items(tags)
        ops.check_artifact_file(spec_filename)
        try:
            experiment_id = _experiment_id(client, tracking_uri, experiment)
            run = client.create_run(experiment_id, run_name=run_name,
                                    tags={**dict(tag_items), RUN_TYPE_TAG: "search"})
        except Exception as e:
            if is_rejection(e):  # e.g. an invalid experiment name: MLflow's message says which
                raise
            raise _unavailable(tracking_uri, "could not create the search run", e) from e
        tracker = cls(client, tracking_uri, run.info.run_id, experiment_id)
        tracker._put(ops.batch_op(tracker.run_id, params=param_items))
        tracker._put(ops.text_op(tracker.run_id, spec_text, spec_filename))
        return tracker

    @classmethod
    def attach(cls, run_id: str, tracking_uri: str) -> SearchTracker:
        """Reopen an existing search run to resume it: status RUNNING, population restored."""
        client = _client(tracking_uri)
        run = _get_run(client, tracking_uri, run_id)
        if "mlflow.parentRunId" in run.data.tags:
            raise ValueError(f"run {run_id} is a trial of search run "
                             f"{run.data.tags['mlflow.parentRunId']}; attach to that one")
        try:
            client.update_run(run_id, status="RUNNING")
        except Exception as e:
            raise _unavailable(tracking_uri, f"could not reopen run {run_id}", e) from e
        tracker = cls(client, tracking_uri, run_id, run.info.experiment_id)
        tracker._restore_population()
        return tracker

    # -- logging (all queued) ------------------------------------------------------------

    def log_metrics(self, metrics: dict[str, float], step: int) -> None:
        self._check_open()
        if "generation" in metrics:
            step_i = int(step)
            if self._max_generation_step is None or step_i > self._max_generation_step:
                self._max_generation_step = step_i
        self._put(ops.batch_op(self.run_id,
                               metrics=ops.metric_items(metrics, step, ops.now_ms())))

    def log_population(self, generation: int, fitness: np.ndarray,
                       extra: dict[str, np.ndarray] | None = None) -> None:
        """Add one generation's rows; population.csv is (re)written on flush() and finish()."""
        self._check_open()
        self._population.add(generation, fitness, extra)

    def log_trial(self, name: str, params: dict[str, Any],
                  metrics: dict[str, float | Sequence[float]],
                  tags: dict[str, str] | None = None) -> None:
        """A finished child run; a sequence metric becomes a history with steps 0..n-1."""
        self._check_open()
        checked = {ops.check_key(k, "metric"): ops.check_series(k, v) for k, v in metrics.items()}
        self._put(ops.trial_op(self.run_id, self.experiment_id, str(name),
                               ops.param_items(params), checked, ops.tag_items(tags)))

    def log_text(self, text: str, artifact_file: str) -> None:
        self._check_open()
        self._put(ops.text_op(self.run_id, text, ops.check_artifact_file(artifact_file)))

    def log_figure(self, fig: Any, artifact_file: str) -> None:
        """Save a matplotlib figure (PNG unless the name says otherwise), then close it.

        Works for a `matplotlib.figure.Figure` made without pyplot (nothing to close: the
        tracker keeps no reference, so it is freed with the caller's) and for a pyplot
        figure, which pyplot keeps alive until it is closed."""
        self._check_open()
        ops.check_artifact_file(artifact_file)
        if not posixpath.splitext(artifact_file)[1]:
            artifact_file += ".png"
        directory, name = posixpath.split(artifact_file)
        local = self._stage_dir() / name
        buf = io.BytesIO()
        try:
            # rendered here, not on the writer thread: matplotlib is not thread-safe
            fig.savefig(buf, format=posixpath.splitext(name)[1][1:], bbox_inches="tight")
        finally:
            # only a pyplot figure needs closing, and one exists only if pyplot was imported:
            # importing it here would pick a backend for a program that never used pyplot
            plt = sys.modules.get("matplotlib.pyplot")
            if plt is not None:
                plt.close(fig)
        local.write_bytes(buf.getvalue())
        self._put(ops.file_op(self.run_id, str(local), directory or None))

    def log_artifact(self, local_path: str, artifact_path: str | None = None) -> None:
        """Upload a file or directory; a copy is taken now, so the caller may overwrite it."""
        self._check_open()
        if artifact_path:
            ops.check_artifact_file(artifact_path.rstrip("/"))
        src = Path(local_path)
        if not src.exists():
            raise FileNotFoundError(f"no file or directory {local_path!r} to log")
        local = self._stage_dir() / src.name
        if src.is_dir():
            shutil.copytree(src, local)
        else:
            shutil.copy2(src, local)
        self._put(ops.file_op(self.run_id, str(local), artifact_path or None))

    def set_tags(self, tags: dict[str, str]) -> None:
        self._check_open()
        self._put(ops.batch_op(self.run_id, tags=ops.tag_items(tags)))

    # -- waiting -------------------------------------------------------------------------

    @property
    def failed_writes(self) -> int:
        """Writes that did not reach MLflow (saved in spill_path)."""
        return self._writer.failed_writes

    def flush(self, timeout: float | None = None) -> None:
        """Block until everything logged so far is written (or saved in spill_path)."""
        if self._finished:
            return
        self._queue_population()
        if not self._writer.flush(timeout):
            log.warning("MLflow writes to %s still pending after %s s", self.tracking_uri,
                        timeout)

    def finish(self, status: str = "FINISHED") -> None:
        """Write everything, mark the run `status` ("FINISHED", "KILLED" or "FAILED")."""
        if status not in STATUSES:
            raise ValueError(f"status must be one of {STATUSES}, got {status!r}")
        if self._finished:
            return
        self._queue_population()
        self._put(ops.terminate_op(self.run_id, status))
        # one more attempt to reach a store that was down, so a short outage leaves nothing
        self._writer.flush(recover=True)
        self._close()
        unsent = self._writer.spill.pending
        if unsent:
            log.warning("%d MLflow writes of run %s could not be sent to %s; they are in %s. "
                        "Send them with metarl.tracking.replay_unsent(%r) once the store is "
                        "reachable.", unsent, self.run_id, self.tracking_uri, self.spill_path,
                        str(self.spill_path))

    def last_step(self) -> int | None:
        """Highest step logged for the metric "generation" (None before the first one)."""
        self.flush()
        try:
            history = self._client.get_metric_history(self.run_id, "generation")
        except Exception as e:
            raise _unavailable(self.tracking_uri, "could not read the generation history",
                               e) from e
        steps = [m.step for m in history]
        if self._max_generation_step is not None:
            steps.append(self._max_generation_step)
        return max(steps) if steps else None

    def __enter__(self) -> SearchTracker:
        return self

    def __exit__(self, exc_type: Any, exc: Any, tb: Any) -> None:
        if exc_type is None:
            self.finish("FINISHED")
        elif issubclass(exc_type, KeyboardInterrupt):
            self.finish("KILLED")
        else:
            self.finish("FAILED")

    # -- internals -----------------------------------------------------------------------

    def _put(self, op: ops.Op) -> None:
        self._writer.put(op)

    def _check_open(self) -> None:
        if self._finished:
            raise RuntimeError(f"search run {self.run_id} is finished; attach() to log more")

    def _stage_dir(self) -> Path:
        if self._staging is None:
            self._staging = Path(tempfile.mkdtemp(prefix=STAGING_PREFIX))
        self._staged += 1
        d = self._staging / str(self._staged)
        d.mkdir()
        return d

    def _queue_population(self) -> None:
        if self._population.dirty:
            self._population.dirty = False
            self._put(ops.text_op(self.run_id, self._population.to_csv(), POPULATION_FILE))

    def _restore_population(self) -> None:
        try:
            names = {a.path for a in self._client.list_artifacts(self.run_id)}
            if POPULATION_FILE not in names:
                return
            with tempfile.TemporaryDirectory() as d:
                path = self._client.download_artifacts(self.run_id, POPULATION_FILE, d)
                self._population.load_csv(Path(path).read_text(encoding="utf-8"))
        except Exception as e:
            # the rows will be missing from population.csv; the run itself can still resume
            log.warning("could not restore %s of run %s: %s", POPULATION_FILE, self.run_id, e)

    def _probe(self) -> None:
        if is_http(self.tracking_uri):
            check_tracking_uri(self.tracking_uri, timeout=2.0)
        else:
            self._client.search_experiments(max_results=1)

    def _close(self) -> None:
        self._finished = True
        self._writer.close()
        if self._staging is not None:
            shutil.rmtree(self._staging, ignore_errors=True)
        atexit.unregister(self._at_exit)

    def _at_exit(self) -> None:
        # the writer thread is a daemon and dies with the interpreter: save what is queued.
        # The run stays RUNNING so that `attach` can resume it.
        if not self._finished:
            self._queue_population()
            if not self._writer.flush(timeout=60.0):
                log.warning("exiting with MLflow writes of run %s unsent", self.run_id)

    # -- adding to a run this process did not start --------------------------------------

    @classmethod
    def open(cls, run_id: str, tracking_uri: str) -> SearchTracker:
        """An existing run (a search's or a trial's) to add records to, its status left as
        it is: `metarl evaluate` and `export` log beside a search that may still be running
        elsewhere, or that finished long ago. Writes are queued, batched and spilled on an
        outage like a search's. End with `close()`: `finish()`, and leaving a `with` block,
        would set the run's status."""
        client = _client(tracking_uri)
        run = _get_run(client, tracking_uri, run_id)
        return cls(client, tracking_uri, run_id, run.info.experiment_id)

    def start_child(self, name: str, params: dict[str, Any],
                    tags: dict[str, str] | None = None) -> SearchTracker:
        """A new child run of this run, for a trial that logs more than `log_trial` can
        (figures, files): created now, since its artifacts need its id, with `params` queued.
        It is RUNNING until its own `finish()`."""
        self._check_open()
        param_items = ops.param_items(params)
        tag_items = ops.tag_items(tags)
        try:
            run = self._client.create_run(self.experiment_id, run_name=name, tags={
                **dict(tag_items), "mlflow.parentRunId": self.run_id, RUN_TYPE_TAG: "trial"})
        except Exception as e:
            if is_rejection(e):
                raise
            raise _unavailable(self.tracking_uri, f"could not create child run {name!r}",
                               e) from e
        child = type(self)(self._client, self.tracking_uri, run.info.run_id, self.experiment_id)
        child._put(ops.batch_op(child.run_id, params=param_items))
        return child

    def close(self) -> None:
        """Write everything logged so far and stop, leaving the run's status as it is (the
        end for a run from `open`). What MLflow could not take stays in `spill_path`, counted
        by `failed_writes`."""
        if self._finished:
            return
        self._queue_population()
        # one more attempt to reach a store that was down, as finish() makes
        self._writer.flush(recover=True)
        self._close()


def local_folders() -> dict[str, tuple[Path, str]]:
    """What a tracker writes on this machine: `{purpose: (folder, how to change it)}`, so a
    search can check them before it starts."""
    return {
        "unsent tracking data": (spill_dir(), "launch the search from a folder you can "
                                 "write to, with free space"),
        "tracking staging files": (Path(tempfile.gettempdir()), "point TMPDIR at a folder "
                                   "you can write to, with free space"),
    }


def _get_run(client: Any, tracking_uri: str, run_id: str) -> Any:
    try:
        return client.get_run(run_id)
    except Exception as e:
        if is_rejection(e):
            raise ValueError(f"no run {run_id!r} in the MLflow store {tracking_uri}") from e
        raise _unavailable(tracking_uri, f"could not read run {run_id}", e) from e


def _client(tracking_uri: str) -> Any:
    from mlflow.tracking import MlflowClient

    if is_http(tracking_uri):
        for name, value in HTTP_CLIENT_DEFAULTS.items():
            os.environ.setdefault(name, value)
    return MlflowClient(tracking_uri)


def _experiment_id(client: Any, tracking_uri: str, name: str) -> str:
    experiment = client.get_experiment_by_name(name)
    if experiment is not None:
        if experiment.lifecycle_stage == "deleted":
            log.warning("experiment %r was deleted; restoring it for this search", name)
            client.restore_experiment(experiment.experiment_id)
        return experiment.experiment_id
    try:
        experiment_id = client.create_experiment(name, artifact_location=_artifact_location(
            tracking_uri, name))
    except Exception as e:
        # another search created it between our lookup and create
        experiment = client.get_experiment_by_name(name)
        if experiment is None:
            raise e
        return experiment.experiment_id
    from metarl.tracking.experiment_view import mark_experiment  # imports this module

    mark_experiment(client, experiment_id)  # the UI then opens on runs, not on GenAI pages
    return experiment_id


def _artifact_location(tracking_uri: str, experiment: str) -> str | None:
    """Artifacts of a SQLite store live next to the database, whatever the working directory.

    MLflow's default is ./mlruns relative to wherever the experiment happened to be created.
    """
    if not tracking_uri.startswith("sqlite:"):
        return None
    db = sqlite_path(tracking_uri)
    if db is None:
        return None
    slug = re.sub(r"[^\w.-]+", "-", experiment).strip("-.") or "experiment"
    return str(db.absolute().parent / "mlruns" / slug)


def _unavailable(uri: str, what: str, e: BaseException) -> TrackingUnavailable:
    return TrackingUnavailable(uri, f"{what} ({type(e).__name__}: "
                                    f"{str(e).strip().splitlines()[0] if str(e).strip() else ''})")
