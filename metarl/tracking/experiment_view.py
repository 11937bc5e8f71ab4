"""What the MLflow UI shows first for a metarl experiment: its runs, not the GenAI overview.

MLflow 3's UI has two faces. Its GenAI face (traces, token usage, an assistant) is the default,
and the runs table lives in its "Model training" face. Three things choose the second one:

* the experiment tag `mlflow.experimentKind = custom_model_development`, the experiment's
  declared kind (the experiment page's kind selector writes the same tag);
* the URL parameter `workflowType=machine_learning`, which MLflow 3.17 and 3.18 obey before the
  tag and before the browser's remembered choice;
* a saved view: the experiment tag `mlflow.sharedViewState.<id>`, listed in the runs page's
  "Views" menu and opened by `viewStateShareKey=<id>` in the URL. The runs table's columns
  can only be chosen this way (its URL parameters cover sorting and filtering only).

The view keeps the default order (newest first), because MLflow nests trials under their
search run only then; sorting by fitness would list every run flat.
"""

from __future__ import annotations

import json
import logging
import time
from collections.abc import Iterable
from typing import Any
from urllib.parse import urlencode

from metarl.tracking.tags import RUN_TYPE_TAG

log = logging.getLogger("metarl.tracking")

KIND_TAG = "mlflow.experimentKind"
KIND_MODEL_TRAINING = "custom_model_development"
VIEW_ID = "metarl"
VIEW_TAG = f"mlflow.sharedViewState.{VIEW_ID}"
VIEW_NAME = "metarl: fitness and hyperparameters"
# fitness of each trial, best so far of each search run (metarl.programs.runner logs both)
METRIC_COLUMNS = ("fitness", "best_fitness")
MAX_PARAM_COLUMNS = 24  # MLflow refuses a saved view over 20,000 characters
TRIALS_SAMPLED = 100


def view_state(param_keys: Iterable[str] = ()) -> dict[str, Any]:
    """The runs-table state the saved view holds: fitness and the trials' params as columns."""
    columns = [f"metrics.`{k}`" for k in METRIC_COLUMNS]
    columns += [f"params.`{k}`" for k in sorted(set(param_keys))[:MAX_PARAM_COLUMNS]]
    return {"selectedColumns": columns}


def view_tags(param_keys: Iterable[str] = (), created_ms: int | None = None) -> dict[str, str]:
    """Experiment tags that make the UI open on the runs table with metarl's columns."""
    now = int(time.time() * 1000)
    envelope = {"name": VIEW_NAME, "createdAt": created_ms or now, "updatedAt": now,
                "state": json.dumps(view_state(param_keys))}
    return {KIND_TAG: KIND_MODEL_TRAINING, VIEW_TAG: json.dumps(envelope)}


def mark_experiment(client: Any, experiment_id: str) -> None:
    """Tag a new experiment so the UI shows it as model training, with metarl's saved view.

    A search must not fail over how it will look in the UI, so errors are only logged.
    """
    try:
        for key, value in view_tags().items():
            client.set_experiment_tag(experiment_id, key, value)
    except Exception as e:  # any store error; the search itself is unaffected
        log.warning("could not tag experiment %s for the MLflow UI: %s", experiment_id, e)


def runs_page_url(base_url: str, experiment_id: str | None, with_view: bool = True) -> str:
    """The UI page listing an experiment's runs in the model-training face (the UI's home page
    when there is no experiment)."""
    base = base_url.rstrip("/")
    if experiment_id is None:
        return f"{base}/"
    query = {"workflowType": "machine_learning"}
    if with_view:
        query["viewStateShareKey"] = VIEW_ID
    return f"{base}/#/experiments/{experiment_id}/runs?{urlencode(query)}"


def refresh_views(client: Any) -> str | None:
    """Tag every experiment that holds a metarl search (views get the searched hyperparameters
    as columns) and return the id of the experiment with the newest search, None if none."""
    newest_first = _search_experiments(client)
    for experiment_id in newest_first:
        refresh_view(client, experiment_id)
    return newest_first[0] if newest_first else None


def refresh_view(client: Any, experiment_id: str) -> None:
    """Rewrite metarl's saved view with the columns the experiment's trials have now. An
    explicit experiment kind is left as it is: someone chose it."""
    experiment = client.get_experiment(experiment_id)
    tags = view_tags(_trial_param_keys(client, experiment_id),
                     _created_ms(experiment.tags.get(VIEW_TAG)))
    if KIND_TAG in experiment.tags:
        del tags[KIND_TAG]
    if _same_view(experiment.tags.get(VIEW_TAG), tags[VIEW_TAG]):
        del tags[VIEW_TAG]
    for key, value in tags.items():
        client.set_experiment_tag(experiment_id, key, value)


def _search_experiments(client: Any) -> list[str]:
    """Active experiments holding one of the newest 1000 metarl search runs, the newest
    search's first."""
    ids = _experiment_ids(client)
    if not ids:
        return []
    runs = client.search_runs(ids, filter_string=f"tags.`{RUN_TYPE_TAG}` = 'search'",
                              max_results=1000, order_by=["attributes.start_time DESC"])
    return list(dict.fromkeys(run.info.experiment_id for run in runs))


def _experiment_ids(client: Any) -> list[str]:
    ids: list[str] = []
    token = None
    while True:
        page = client.search_experiments(max_results=1000, page_token=token)
        ids.extend(e.experiment_id for e in page)
        token = page.token
        if not token:
            return ids


def _trial_param_keys(client: Any, experiment_id: str) -> set[str]:
    """Param names of the newest candidate trials: the hyperparameters the search varies.
    (Evaluations of the search mean carry only a `generation` param.)"""
    runs = client.search_runs([experiment_id], filter_string=f"tags.`{RUN_TYPE_TAG}` = 'trial'",
                              max_results=TRIALS_SAMPLED,
                              order_by=["attributes.start_time DESC"])
    return {key for run in runs if run.data.tags.get("metarl.trial", "candidate") == "candidate"
            for key in run.data.params}


def _envelope(value: str | None) -> dict[str, Any] | None:
    try:
        envelope = json.loads(value) if value else None
    except ValueError:
        return None
    return envelope if isinstance(envelope, dict) else None


def _created_ms(value: str | None) -> int | None:
    created = (_envelope(value) or {}).get("createdAt")
    return created if isinstance(created, int) else None


def _same_view(old: str | None, new: str) -> bool:
    """Same name and columns, whatever the timestamps: no write is needed."""
    old_envelope, new_envelope = _envelope(old), _envelope(new)
    return old_envelope is not None and all(
        old_envelope.get(k) == new_envelope[k] for k in ("name", "state"))
