"""Reading search runs back: the list `metarl runs` shows, and artifact downloads."""

from __future__ import annotations

import os
import posixpath
from datetime import datetime
from typing import Any

from metarl.tracking.tracker import RUN_TYPE_TAG, _client, _unavailable
from metarl.tracking.writer import is_rejection


def list_search_runs(tracking_uri: str, max_results: int = 50) -> list[dict[str, Any]]:
    """Search runs (never their trials), newest first, across all active experiments."""
    client = _client(tracking_uri)
    try:
        experiments = _all_experiments(client)
        if not experiments:
            return []
        runs = client.search_runs(
            list(experiments), filter_string=f"tags.`{RUN_TYPE_TAG}` = 'search'",
            max_results=max_results, order_by=["attributes.start_time DESC"])
    except Exception as e:
        raise _unavailable(tracking_uri, "could not list runs", e) from e
    listed = []
    for run in runs:
        metrics = run.data.metrics
        generation = metrics.get("generation")
        listed.append({
            "run_id": run.info.run_id,
            "search": experiments.get(run.info.experiment_id, run.info.experiment_id),
            "status": run.info.status,
            "generations": None if generation is None else int(generation) + 1,
            "best_fitness": metrics.get("best_fitness"),
            # local time, timezone-aware: what a person reading `metarl runs` expects
            "started": datetime.fromtimestamp(run.info.start_time / 1000).astimezone(),
        })
    return listed


def download_artifact(tracking_uri: str, run_id: str, artifact_path: str, dst_dir: str) -> str:
    """Copy one artifact file or directory of a run into `dst_dir`; returns its local path."""
    client = _client(tracking_uri)
    os.makedirs(dst_dir, exist_ok=True)
    try:
        return client.download_artifacts(run_id, artifact_path, dst_dir)
    except Exception as e:
        error: BaseException = e
    # tell "no such artifact" (say what there is) from "store unreachable"
    wanted = artifact_path.strip("/")
    parent = posixpath.dirname(wanted)
    try:
        siblings = sorted(a.path for a in client.list_artifacts(run_id, parent or None))
    except Exception as e:
        if is_rejection(e):
            raise ValueError(f"no run {run_id!r} in the MLflow store {tracking_uri}") from e
        raise _unavailable(tracking_uri, f"could not download {artifact_path}", error) from error
    if wanted not in siblings:
        where = f" in {parent}/" if parent else ""
        raise FileNotFoundError(f"run {run_id} has no artifact {artifact_path!r}; it has{where}: "
                                f"{', '.join(siblings) or 'nothing'}") from error
    raise _unavailable(tracking_uri, f"could not download {artifact_path}", error) from error


def _all_experiments(client: Any) -> dict[str, str]:
    names: dict[str, str] = {}
    token = None
    while True:
        page = client.search_experiments(max_results=1000, page_token=token)
        names.update((e.experiment_id, e.name) for e in page)
        token = page.token
        if not token:
            return names


