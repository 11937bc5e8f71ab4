"""MLflow tracking for searches: one parent run per search launch, child runs for trials.

Nothing here runs inside `jit`: a search calls it between generations, and every write goes
through one background thread so logging overlaps with the next generation's compute.
"""

from metarl.tracking.errors import TrackingUnavailable
from metarl.tracking.runs import (
    UnknownRun,
    check_run_id,
    download_artifact,
    list_search_runs,
    resolve_run_id,
)
from metarl.tracking.spill import replay_unsent
from metarl.tracking.tags import default_tags
from metarl.tracking.tracker import SearchTracker
from metarl.tracking.ui import ui_command
from metarl.tracking.uri import (
    UnsupportedTrackingUri,
    check_tracking_uri,
    existing_store,
    resolve_tracking_uri,
)

__all__ = [
    "SearchTracker", "TrackingUnavailable", "UnknownRun", "UnsupportedTrackingUri",
    "check_run_id", "check_tracking_uri", "default_tags", "download_artifact",
    "existing_store", "list_search_runs", "replay_unsent", "resolve_run_id",
    "resolve_tracking_uri", "ui_command",
]
