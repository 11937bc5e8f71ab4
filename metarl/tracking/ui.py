"""`metarl ui`: the MLflow UI for a local store, opening on the newest search's runs."""

from __future__ import annotations

import errno
import logging
import os
import socket
import subprocess
import sys
import time
from collections.abc import Callable
from urllib.parse import urlparse

from metarl.errors import UserError
from metarl.tracking.uri import existing_store, is_http

log = logging.getLogger("metarl.tracking")

HOST = "127.0.0.1"
# stores `mlflow ui` serves from this machine: databases (MLflow's file store is refused)
_SERVABLE_SCHEMES = ("sqlite", "postgresql", "postgres", "mysql", "mssql")
_SERVABLE_HELP = "sqlite:///path/to/mlflow.db, postgresql://, mysql:// or mssql://"


class UiUnavailable(UserError, ValueError):
    """A store `metarl ui` cannot serve, or a port it cannot listen on."""


def check_servable(tracking_uri: str) -> None:
    """Raise `UiUnavailable` unless `mlflow ui` can serve `tracking_uri` from here."""
    if is_http(tracking_uri):
        raise UiUnavailable(f"{tracking_uri} is already a tracking server with its own UI: "
                            f"open {tracking_uri} in a browser")
    scheme = urlparse(tracking_uri).scheme.lower().split("+", 1)[0]
    if scheme not in _SERVABLE_SCHEMES:
        raise UiUnavailable(f"metarl ui cannot serve {tracking_uri!r}: it serves a database "
                            f"store ({_SERVABLE_HELP})")


def ui_command(tracking_uri: str, port: int = 5000) -> list[str]:
    """argv for `mlflow ui` on 127.0.0.1 reading `tracking_uri` (a resolved database URI).

    Runs mlflow through the current interpreter so it is the same installation metarl uses,
    even when the `mlflow` script is not on PATH.
    """
    check_servable(tracking_uri)
    return [sys.executable, "-m", "mlflow", "ui", "--backend-store-uri", tracking_uri,
            "--host", HOST, "--port", str(port)]


def check_port_free(port: int, host: str = HOST) -> None:
    """Raise `UiUnavailable` if nothing can listen on host:port (MLflow would only print an
    error from a server process and carry on)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        if os.name == "posix":  # as servers do: a port left in TIME_WAIT is free
            s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            s.bind((host, port))
        except OSError as e:
            why = "is already in use" if e.errno == errno.EADDRINUSE else f"cannot be used ({e})"
            raise UiUnavailable(f"port {port} on {host} {why}: choose another with --port, "
                                f"e.g. metarl ui --port {port % 65535 + 1}") from None


def first_page_url(tracking_uri: str, port: int) -> str:
    """Where a user should land: the newest search's runs, after tagging every metarl
    experiment for the UI (see experiment_view.py). The UI's home page if there is none."""
    from metarl.tracking.experiment_view import refresh_views, runs_page_url
    from metarl.tracking.tracker import _client

    base = f"http://{HOST}:{port}"
    if not existing_store(tracking_uri):  # MLflow will create it; it has no searches yet
        return runs_page_url(base, None)
    try:
        return runs_page_url(base, refresh_views(_client(tracking_uri)))
    except Exception as e:  # the UI is still worth starting: it shows MLflow's own error
        log.warning("could not read the searches in %s: %s", tracking_uri, e)
        return runs_page_url(base, None)


def serve(cmd: list[str], port: int, on_ready: Callable[[], None],
          poll_s: float = 0.25) -> int:
    """Run the server `cmd` until it exits; call `on_ready` once it listens on `port`.

    Returns its exit status, 0 after Ctrl-C (which stops the server too: same process group).
    """
    # MLflow prints to stdout too: send that to stderr (fd 2) and keep stdout for the address
    proc = subprocess.Popen(cmd, stdout=2)
    try:
        if _wait_until_listening(proc, port, poll_s):
            on_ready()
        return proc.wait()
    except KeyboardInterrupt:
        _stop(proc)
        return 0


def _wait_until_listening(proc: subprocess.Popen, port: int, poll_s: float) -> bool:
    while proc.poll() is None:
        with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
            s.settimeout(1.0)
            if s.connect_ex((HOST, port)) == 0:
                return True
        time.sleep(poll_s)
    return False


def _stop(proc: subprocess.Popen, timeout_s: float = 30.0) -> None:
    try:  # it got the same SIGINT; its workers take 10-20 s to stop on 2 cores
        proc.wait(timeout=timeout_s)
    except (subprocess.TimeoutExpired, KeyboardInterrupt):  # or a second Ctrl-C
        proc.kill()
        proc.wait()
