"""Tracking writes as plain data, and how each one is carried out with an MlflowClient.

An operation ("op") is a dict that is JSON-serialisable once `materialize` has run, so the
same object can be written to MLflow, spilled to disk when MLflow is unreachable, and read
back later to be sent. An op records how many of its MLflow calls are done (`done`), so an
op interrupted half-way (a trial whose run was created but whose metrics were not logged)
resumes where it stopped instead of duplicating a run.
"""

from __future__ import annotations

import os
import posixpath
import re
import shutil
import time
from collections.abc import Callable, Mapping
from typing import Any

import numpy as np

from metarl.tracking.sql_bulk import insert_trials, sql_store, trial_run_tags

Op = dict[str, Any]

# MLflow's own limits on one log_batch call
MAX_METRICS_PER_BATCH = 1000
MAX_PARAMS_PER_BATCH = 100
MAX_TAGS_PER_BATCH = 100
MAX_PARAM_LENGTH = 500
# coalescing stops here so one failed call never takes more than this with it
MAX_METRICS_PER_OP = 5000
MAX_TRIALS_PER_OP = 256

_VALID_KEY = re.compile(r"^[/\w.\- :]+$")


def now_ms() -> int:
    return int(time.time() * 1000)


def check_key(key: str, kind: str) -> str:
    """Reject a name MLflow would refuse, now, rather than lose the batch it arrives in."""
    if not isinstance(key, str) or not _VALID_KEY.match(key) or len(key) > 250 \
            or posixpath.normpath(key) != key:
        raise ValueError(
            f"invalid {kind} name {key!r}: MLflow accepts 1-250 letters, digits, '_', '-', '.', "
            "' ', ':' and '/', forming a normalised relative path")
    return key


def check_artifact_file(path: str) -> str:
    if not path or posixpath.isabs(path) or ".." in path.split("/") or path.endswith("/"):
        raise ValueError(f"artifact path {path!r} must be a relative file path inside the run")
    return path


def flatten(params: Mapping[str, Any], prefix: str = "") -> dict[str, Any]:
    """{"ppo": {"lr": 1e-3}} -> {"ppo.lr": 1e-3}; already-flat dicts pass through."""
    flat: dict[str, Any] = {}
    for key, value in params.items():
        name = f"{prefix}{key}"
        if isinstance(value, Mapping):
            flat.update(flatten(value, f"{name}."))
        else:
            flat[name] = value
    return flat


def param_items(params: Mapping[str, Any]) -> list[list[str]]:
    return [[check_key(k, "param"), str(v)[:MAX_PARAM_LENGTH]]
            for k, v in flatten(params).items()]


def tag_items(tags: Mapping[str, str] | None) -> list[list[str]]:
    return [[check_key(k, "tag"), str(v)] for k, v in (tags or {}).items()]


def metric_items(metrics: Mapping[str, Any], step: int, timestamp: int) -> list[list[Any]]:
    # values stay as given (possibly unfinished jax arrays) until the writer thread needs them,
    # so logging never forces the caller to wait for the device
    return [[check_key(k, "metric"), check_scalar(k, v), timestamp, int(step)]
            for k, v in metrics.items()]


def check_scalar(key: str, value: Any) -> Any:
    """Refuse a value that cannot become one float, judging by type and shape only.

    Checked at the call, because on the writer thread it would spoil a whole batch; reading
    `.shape` does not wait for a jax array to be computed.
    """
    if isinstance(value, int | float | np.number | np.bool_):
        return value
    shape = getattr(value, "shape", None)
    if shape is not None and int(np.prod(shape)) == 1:
        return value
    what = f"an array of shape {tuple(shape)}" if shape is not None else type(value).__name__
    raise ValueError(f"metric {key!r} must be a number or a one-element array, got {what}")


def check_series(key: str, value: Any) -> Any:
    """A trial metric: a number or a sequence of numbers (logged as steps 0..n-1)."""
    if isinstance(value, list | tuple) or getattr(value, "shape", None) is not None:
        return value
    return check_scalar(key, value)


def batch_op(run_id: str, *, metrics: list | None = None, params: list | None = None,
             tags: list | None = None) -> Op:
    return {"op": "batch", "run_id": run_id, "metrics": metrics or [], "params": params or [],
            "tags": tags or []}


def trial_op(parent_run_id: str, experiment_id: str, name: str, params: list, metrics: dict,
             tags: list) -> Op:
    return {"op": "trial", "parent_run_id": parent_run_id, "experiment_id": experiment_id,
            "name": name, "params": params, "metrics": metrics, "tags": tags,
            "time": now_ms()}


def text_op(run_id: str, text: str, artifact_file: str) -> Op:
    return {"op": "text", "run_id": run_id, "text": text, "artifact_file": artifact_file}


def file_op(run_id: str, local_path: str, artifact_path: str | None) -> Op:
    """`local_path` belongs to the op (a private copy): it is deleted once uploaded."""
    return {"op": "file", "run_id": run_id, "local_path": local_path,
            "artifact_path": artifact_path}


def terminate_op(run_id: str, status: str) -> Op:
    return {"op": "terminate", "run_id": run_id, "status": status, "end_time": now_ms()}


def materialize(op: Op) -> None:
    """Turn array-likes into floats, in place, on the writer thread."""
    if op.get("materialized"):
        return
    if op["op"] == "batch":
        for item in op["metrics"]:
            item[1] = float(np.asarray(item[1]))
    elif op["op"] == "trials":
        for trial in op["items"]:
            materialize(trial)
    elif op["op"] == "trial":
        op["metrics"] = {
            k: (float(a) if a.ndim == 0 else [float(x) for x in a.ravel()])
            for k, a in ((k, np.asarray(v, dtype=np.float64)) for k, v in op["metrics"].items())}
    op["materialized"] = True


def merge(into: Op, op: Op) -> bool:
    """Append `op` to `into` when both are batches for the same run, or both are trials
    (which then become one "trials" op, one transaction on a SQL store); keeps order."""
    if _merge_trials(into, op):
        return True
    if (into["op"] != "batch" or op["op"] != "batch" or into["run_id"] != op["run_id"]
            or into.get("done") or op.get("done")
            or len(into["metrics"]) + len(op["metrics"]) > MAX_METRICS_PER_OP):
        return False
    for key in ("metrics", "params", "tags"):
        into[key].extend(op[key])
    return True


def _merge_trials(into: Op, op: Op) -> bool:
    if op["op"] != "trial" or into["op"] not in ("trial", "trials"):
        return False
    if into["op"] == "trial":
        first = dict(into)
        into.clear()
        into.update(op="trials", items=[first])
    if len(into["items"]) >= MAX_TRIALS_PER_OP:
        return False
    into["items"].append(op)
    return True


def describe(op: Op) -> str:
    kind = op["op"]
    if kind == "batch":
        return (f"{len(op['metrics'])} metrics, {len(op['params'])} params, "
                f"{len(op['tags'])} tags")
    if kind == "trial":
        return f"trial {op['name']!r}"
    if kind == "trials":
        return f"{len(op['items'])} trials"
    if kind == "text":
        return f"artifact {op['artifact_file']}"
    if kind == "file":
        name = os.path.basename(op["local_path"])
        return f"artifact {posixpath.join(op['artifact_path'] or '', name)}"
    return f"status {op['status']}"


def execute(op: Op, client: Any) -> None:
    """Make the MLflow calls for `op` that are not done yet, recording progress in `op`."""
    materialize(op)
    if op["op"] in ("trial", "trials"):
        _execute_trials(op["items"] if op["op"] == "trials" else [op], client)
        return
    _run_calls(op, _calls(op, client))
    if op["op"] == "file":
        _remove(op["local_path"])


def _run_calls(op: Op, calls: list[Callable[[], None]]) -> None:
    for i in range(op.get("done", 0), len(calls)):
        calls[i]()
        op["done"] = i + 1


def _execute_trials(trials: list[Op], client: Any) -> None:
    store = sql_store(client)
    bulk = [t for t in trials if not t.get("done")] if store is not None else []
    if bulk:
        insert_trials(store, bulk)  # one transaction: all of them or none
    for trial in trials:
        calls = _trial_calls(trial, client)
        if any(trial is t for t in bulk):
            trial["done"] = len(calls)  # recorded, so a resend after a later failure skips it
        # other stores (and trials half-sent before): run by run, resumable per trial
        _run_calls(trial, calls)


def _calls(op: Op, client: Any) -> list[Callable[[], None]]:
    kind = op["op"]
    if kind == "batch":
        return _batch_calls(client, lambda: op["run_id"], op["metrics"], op["params"], op["tags"])
    if kind == "text":
        return [lambda: client.log_text(op["run_id"], op["text"], op["artifact_file"])]
    if kind == "file":
        return [lambda: _log_path(client, op["run_id"], op["local_path"], op["artifact_path"])]
    if kind == "terminate":
        return [lambda: client.set_terminated(op["run_id"], op["status"], op["end_time"])]
    raise ValueError(f"unknown tracking op {kind!r}")


def _batch_calls(client: Any, run_id: Callable[[], str], metrics: list, params: list,
                 tags: list) -> list[Callable[[], None]]:
    """log_batch calls, each as full as MLflow allows (every call costs a transaction)."""
    from mlflow.entities import Metric, Param, RunTag

    calls: list[Callable[[], None]] = []
    p = t = m = 0
    while p < len(params) or t < len(tags) or m < len(metrics) or not calls:
        p2 = min(len(params), p + MAX_PARAMS_PER_BATCH)
        t2 = min(len(tags), t + MAX_TAGS_PER_BATCH)
        m2 = min(len(metrics), m + MAX_METRICS_PER_BATCH - (p2 - p) - (t2 - t))
        if p2 == p and t2 == t and m2 == m:  # nothing at all to log
            return []
        # run_id is looked up at call time: for a trial it exists only after its first call
        calls.append(lambda ps=params[p:p2], ts=tags[t:t2], ms=metrics[m:m2]: client.log_batch(
            run_id(), metrics=[Metric(k, v, ts_, s) for k, v, ts_, s in ms],
            params=[Param(k, v) for k, v in ps], tags=[RunTag(k, v) for k, v in ts],
            synchronous=True))
        p, t, m = p2, t2, m2
    return calls


def _trial_calls(op: Op, client: Any) -> list[Callable[[], None]]:
    def create() -> None:
        run = client.create_run(
            op["experiment_id"], start_time=op["time"], run_name=op["name"],
            tags=trial_run_tags(op))
        op["child_run_id"] = run.info.run_id

    metrics = []
    for key, value in op["metrics"].items():
        values = value if isinstance(value, list) else [value]
        metrics.extend([key, float(v), op["time"], step] for step, v in enumerate(values))
    calls = [create]
    calls += _batch_calls(client, lambda: op["child_run_id"], metrics, op["params"], op["tags"])
    calls.append(lambda: _finish_child(client, op["child_run_id"], op["time"]))
    return calls


def _finish_child(client: Any, run_id: str, end_time: int) -> None:
    from mlflow.entities import RunStatus

    # the store call skips what set_terminated adds over HTTP: an extra GET and two lines
    # printed to stdout per run, which for hundreds of trials is noise and wasted round trips
    store = getattr(getattr(client, "_tracking_client", None), "store", None)
    if store is not None and hasattr(store, "update_run_info"):
        store.update_run_info(run_id, RunStatus.FINISHED, end_time, None)
    else:
        client.set_terminated(run_id, "FINISHED", end_time)


def _log_path(client: Any, run_id: str, local_path: str, artifact_path: str | None) -> None:
    if os.path.isdir(local_path):
        # a directory keeps its own name under artifact_path, as a file does
        target = posixpath.join(artifact_path or "", os.path.basename(local_path))
        client.log_artifacts(run_id, local_path, target)
    else:
        client.log_artifact(run_id, local_path, artifact_path)


def _remove(path: str) -> None:
    if os.path.isdir(path):
        shutil.rmtree(path, ignore_errors=True)
    elif os.path.exists(path):
        os.remove(path)


