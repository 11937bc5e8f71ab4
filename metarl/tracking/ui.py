"""The command line that serves the MLflow UI for a local store."""

from __future__ import annotations

import sys

from metarl.tracking.uri import is_http


def ui_command(tracking_uri: str, port: int = 5000) -> list[str]:
    """argv for `mlflow ui` on 127.0.0.1 reading `tracking_uri` (a resolved, non-http URI).

    Runs mlflow through the current interpreter so it is the same installation metarl uses,
    even when the `mlflow` script is not on PATH.
    """
    if is_http(tracking_uri):
        raise ValueError(f"{tracking_uri} is already a tracking server: open it in a browser "
                         "instead of starting a UI")
    return [sys.executable, "-m", "mlflow", "ui", "--backend-store-uri", tracking_uri,
            "--host", "127.0.0.1", "--port", str(port)]
