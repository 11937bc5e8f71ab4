"""Many finished trials written to an MLflow SQL store in one transaction.

Through MlflowClient a trial costs create_run, log_batch (which opens a session each for
params, metrics and tags) and a status update: six or more commits. On SQLite each commit
is a file sync plus SQLAlchemy bookkeeping, about 40 ms of CPU per trial, and on a 2-core
machine that CPU is taken from the search. Here a generation's trials are rows added in one
session and committed once, which is what the store does internally, minus the round trips.
"""

from __future__ import annotations

import uuid
from typing import Any

Op = dict[str, Any]  # a materialised trial op, see metarl.tracking.ops



def trial_run_tags(op: Op) -> dict[str, str]:
    """The tags that make a trial op's run a named child of its search's run."""
    return {"mlflow.parentRunId": op["parent_run_id"], "mlflow.runName": op["name"],
            "metarl.run_type": "trial"}


def sql_store(client: Any) -> Any | None:
    """The client's SqlAlchemyStore, or None for HTTP, file and other stores."""
    from mlflow.store.tracking.sqlalchemy_store import SqlAlchemyStore

    store = getattr(getattr(client, "_tracking_client", None), "store", None)
    return store if isinstance(store, SqlAlchemyStore) else None


def insert_trials(store: Any, trials: list[Op]) -> None:
    """Create each materialised trial op as a FINISHED child run; all or none are written."""
    from mlflow.store.tracking.dbmodels.models import SqlRun
    from mlflow.utils.uri import append_to_uri_path

    locations: dict[str, str] = {}
    rows: list[Any] = []
    with store.ManagedSessionMaker(read_only=False) as session:
        for op in trials:
            exp = op["experiment_id"]
            if exp not in locations:
                locations[exp] = store.get_experiment(exp).artifact_location
            run_id = uuid.uuid4().hex
            run = SqlRun(name=op["name"],
                         artifact_uri=append_to_uri_path(locations[exp], run_id, "artifacts"),
                         run_uuid=run_id, experiment_id=int(exp), source_type="UNKNOWN",
                         source_name="", entry_point_name="", user_id="unknown",
                         status="FINISHED", start_time=op["time"], end_time=op["time"],
                         deleted_time=None, source_version="", lifecycle_stage="active")
            rows.append(run)
            rows.extend(_children(store, op, run_id))
            op["child_run_id"] = run_id
        session.add_all(rows)


def _children(store: Any, op: Op, run_id: str) -> list[Any]:
    from mlflow.store.tracking.dbmodels.models import (
        SqlLatestMetric,
        SqlMetric,
        SqlParam,
        SqlTag,
    )

    tags = {**trial_run_tags(op), **dict(op["tags"])}
    rows: list[Any] = [SqlTag(key=k, value=v, run_uuid=run_id) for k, v in tags.items()]
    rows += [SqlParam(key=k, value=v, run_uuid=run_id) for k, v in dict(op["params"]).items()]
    for key, value in op["metrics"].items():
        values = value if isinstance(value, list) else [value]
        for step, v in enumerate(values):
            is_nan, v = store.sanitize_metric_value(float(v))
            rows.append(SqlMetric(key=key, value=v, timestamp=op["time"], step=step,
                                  is_nan=is_nan, run_uuid=run_id))
        if values:
            rows.append(SqlLatestMetric(key=key, value=v, timestamp=op["time"],
                                        step=len(values) - 1, is_nan=is_nan, run_uuid=run_id))
    return rows
