"""A real `mlflow server` on 127.0.0.1 for tests, and a pre-migrated SQLite database.

Use from a test module (tests/ is on sys.path when pytest imports it):

    pytest_plugins = ["mlflow_server"]

`mlflow_server` (module-scoped) is a running server with its own temporary SQLite store and
artifact directory, killed at teardown. A test may `kill()` it to simulate a crash; the next
test that asks for the fixture gets it restarted on the same store.

Creating an MLflow SQLite database runs ~50 schema migrations (about 8 s on 2 cores), so
`mlflow_db_template` (session-scoped) does that once and stores are copies of it.
"""

from __future__ import annotations

import os
import shutil
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import pytest

STARTUP_TIMEOUT_S = 120.0  # a loaded 2-core CI machine takes 10-20 s


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def make_sqlite_store(path: Path) -> str:
    """Create an MLflow SQLite database at `path` (all migrations applied); returns its URI."""
    from mlflow.tracking import MlflowClient

    uri = f"sqlite:///{path}"
    MlflowClient(uri).search_experiments(max_results=1)
    return uri


class MlflowServer:
    """`mlflow server` bound to 127.0.0.1 in its own process group."""

    def __init__(self, root: Path, db_template: Path | None = None) -> None:
        self.root = root
        self.root.mkdir(parents=True, exist_ok=True)
        self.db_path = root / "mlflow.db"
        if db_template is not None and not self.db_path.exists():
            shutil.copy(db_template, self.db_path)
        self.artifacts_dir = root / "artifacts"
        self.log_path = root / "server.log"
        self.port = free_port()
        self._proc: subprocess.Popen | None = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @property
    def backend_store_uri(self) -> str:
        return f"sqlite:///{self.db_path}"

    @property
    def alive(self) -> bool:
        return self._proc is not None and self._proc.poll() is None

    def start(self) -> MlflowServer:
        """Launch without waiting (call `wait_ready`), so other work overlaps the startup."""
        if self.alive:
            return self
        env = dict(os.environ,
                   # the job runner is a second process a test server does not need
                   MLFLOW_SERVER_ENABLE_JOB_EXECUTION="false",
                   MLFLOW_DISABLE_TELEMETRY="true")
        cmd = [sys.executable, "-m", "mlflow", "server",
               "--backend-store-uri", self.backend_store_uri,
               "--artifacts-destination", str(self.artifacts_dir),
               "--host", "127.0.0.1", "--port", str(self.port), "--workers", "1"]
        with open(self.log_path, "ab") as log:
            # own session: kill() reaches the uvicorn worker the CLI spawns, too;
            # cwd=root: the repo's mlflow/ folder must not be on the server's import path
            self._proc = subprocess.Popen(cmd, stdout=log, stderr=subprocess.STDOUT,
                                          cwd=self.root, env=env, start_new_session=True)
        return self

    def wait_ready(self, timeout: float = STARTUP_TIMEOUT_S) -> MlflowServer:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if not self.alive:
                raise RuntimeError(f"mlflow server exited during startup:\n{self._log_tail()}")
            try:
                with urllib.request.urlopen(f"{self.url}/health", timeout=1) as r:
                    if r.status == 200:
                        return self
            except OSError:
                pass
            time.sleep(0.2)
        raise RuntimeError(f"mlflow server not ready after {timeout:g} s:\n{self._log_tail()}")

    def ensure_running(self) -> MlflowServer:
        if not self.alive:
            self.start()
        return self.wait_ready()

    def kill(self) -> None:
        """SIGKILL the whole server, as a crash or an OOM kill would."""
        self._signal(signal.SIGKILL)

    def stop(self) -> None:
        self._signal(signal.SIGTERM)
        if self._proc is not None and self._proc.poll() is None:
            self._signal(signal.SIGKILL)

    def _signal(self, sig: int) -> None:
        if self._proc is None or self._proc.poll() is not None:
            return
        try:
            os.killpg(self._proc.pid, sig)
        except ProcessLookupError:
            return
        try:
            self._proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            pass

    def _log_tail(self, n: int = 30) -> str:
        try:
            return "\n".join(self.log_path.read_text(errors="replace").splitlines()[-n:])
        except OSError:
            return "(no server log)"


@pytest.fixture(scope="session")
def mlflow_db_template(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("mlflow-template") / "mlflow.db"
    make_sqlite_store(path)
    return path


@pytest.fixture(scope="module")
def mlflow_server_process(tmp_path_factory: pytest.TempPathFactory,
                          mlflow_db_template: Path) -> Iterator[MlflowServer]:
    """A launched server that may still be starting; see `mlflow_server`."""
    server = MlflowServer(tmp_path_factory.mktemp("mlflow-server"), mlflow_db_template).start()
    try:
        yield server
    finally:
        server.stop()


@pytest.fixture
def mlflow_server(mlflow_server_process: MlflowServer) -> MlflowServer:
    """A running server (restarted if an earlier test killed it)."""
    return mlflow_server_process.ensure_running()
