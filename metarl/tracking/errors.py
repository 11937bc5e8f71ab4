"""The one error the tracking layer raises when it cannot reach or write its store."""

from __future__ import annotations

from metarl.errors import UserError

DEFAULT_FIX = (
    "Start a tracking server with `mlflow/serve.sh` (see mlflow/README.md), or choose another "
    "store with --tracking-uri or the MLFLOW_TRACKING_URI environment variable "
    "(for example sqlite:///mlflow.db for a local file)."
)


class TrackingUnavailable(UserError, RuntimeError):
    """The MLflow store named by `uri` cannot be used; the message says why and how to fix it."""

    exit_code = 1  # the spec was fine; the store was not

    def __init__(self, uri: str, problem: str, fix: str = DEFAULT_FIX) -> None:
        self.uri = uri
        self.problem = problem
        self.fix = fix
        super().__init__(f"MLflow tracking store {uri!r} is unavailable: {problem}. {fix}")
