"""Reading search runs back: the list `metarl runs` shows, and artifact downloads."""

from __future__ import annotations

import os
import posixpath
import re
from datetime import datetime
from typing import Any

from metarl.errors import UserError
from metarl.tracking.tags import RUN_TYPE_TAG
from metarl.tracking.tracker import _client, _unavailable
from metarl.tracking.uri import existing_store
from metarl.tracking.writer import is_rejection

_RUN_ID = re.compile(r"[0-9a-f]{1,32}")


class UnknownRun(UserError):
    """A RUN_ID that is malformed, names no search run, or is an ambiguous prefix."""


def check_run_id(given: str) -> str:
    """`given` if it can be (a prefix of) an MLflow run id: hex digits only, so that no id
    can name a path outside metarl's folders (`../x`, `/etc`)."""
    if not _RUN_ID.fullmatch(given):
        raise UnknownRun(f"RUN_ID {given!r} is not a run id: give the 32 hex digits `metarl "
                         "runs list` shows, or any unique prefix of them")
    return given


def resolve_run_id(tracking_uri: str, given: str) -> str:
    """The full id of the one search run whose id starts with `given`. Creates nothing: a
    SQLite store that does not exist yet has no runs."""
    check_run_id(given)
    if not existing_store(tracking_uri):
        raise UnknownRun(f"no search run {given!r}: the tracking store {tracking_uri} does "
                         "not exist yet (no search has logged there; choose it with "
                         "--tracking-uri or MLFLOW_TRACKING_URI)")
    ids = [r["run_id"] for r in list_search_runs(tracking_uri, max_results=None)]
    hits = [i for i in ids if i.startswith(given)]
    if len(hits) == 1:
        return hits[0]
    if not hits:
        raise UnknownRun(f"no search run {given!r} in {tracking_uri} (`metarl runs list "
                         "--tracking-uri ...` shows the search runs there)")
    shown = ", ".join(hits[:5]) + (", ..." if len(hits) > 5 else "")
    raise UnknownRun(f"RUN_ID {given!r} is ambiguous: {len(hits)} search runs start with it "
                     f"({shown}); give more digits")


def list_search_runs(tracking_uri: str, max_results: int | None = 50) -> list[dict[str, Any]]:
    """Search runs (never their trials), newest first, across all active experiments; all
    of them for `max_results=None`. A SQLite store that does not exist yet has none (and is
    not created)."""
    if not existing_store(tracking_uri):
        return []
    client = _client(tracking_uri)
    try:
        experiments = _all_experiments(client)
        if not experiments:
            return []
        runs = _search_runs(client, list(experiments), max_results)
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


def _search_runs(client: Any, experiment_ids: list[str], max_results: int | None) -> list:
    runs: list = []
    token = None
    while max_results is None or len(runs) < max_results:
        page = client.search_runs(
            experiment_ids, filter_string=f"tags.`{RUN_TYPE_TAG}` = 'search'",
            max_results=1000 if max_results is None else max_results - len(runs),
            order_by=["attributes.start_time DESC"], page_token=token)
        runs.extend(page)
        token = page.token
        if not token:
            break
    return runs


def _all_experiments(client: Any) -> dict[str, str]:
    names: dict[str, str] = {}
    token = None
    while True:
        page = client.search_experiments(max_results=1000, page_token=token)
        names.update((e.experiment_id, e.name) for e in page)
        token = page.token
        if not token:
            return names


