"""Which MLflow store a search logs to, and a fast check that it can be used.

The check runs before any computing so that a search never spends an hour of accelerator time
and then discovers at its first log call that the server address was mistyped.
"""

from __future__ import annotations

import os
from pathlib import Path
from urllib.parse import urlparse

from metarl.errors import UserError
from metarl.tracking.errors import TrackingUnavailable

_SQLITE_SUFFIXES = (".db", ".sqlite", ".sqlite3")
# stores MLflow 3 maintains; its file store ("file:", a bare folder) is in maintenance mode
# and refuses to open unless an opt-out variable is set
SUPPORTED_SCHEMES = ("sqlite", "http", "https", "postgresql", "mysql", "mssql", "databricks")
SUPPORTED_HELP = ("use sqlite:///path/to/mlflow.db (or just a path ending in .db), "
                  "http(s)://host:port for a tracking server, or postgresql://, mysql://, "
                  "mssql:// or databricks")


class UnsupportedTrackingUri(UserError):
    """A tracking URI whose scheme metarl cannot log to."""
_SQLITE_MAGIC = b"SQLite format 3\x00"


def resolve_tracking_uri(uri: str | None = None) -> str:
    """The store to use: `uri` if given, else $MLFLOW_TRACKING_URI, else ./mlflow.db (absolute).

    SQLite locations are made absolute so the URI means the same file from any working
    directory (the `metarl ui` subprocess, a resumed search started elsewhere).
    Raises `UnsupportedTrackingUri` for a scheme metarl cannot log to (file stores, typos).
    """
    chosen = (uri or "").strip() or os.environ.get("MLFLOW_TRACKING_URI", "").strip()
    if not chosen:
        return f"sqlite:///{Path.cwd() / 'mlflow.db'}"
    if "://" not in chosen and chosen.endswith(_SQLITE_SUFFIXES):
        return f"sqlite:///{Path(chosen).expanduser().resolve()}"
    _check_scheme(chosen)
    if chosen.startswith("sqlite:///"):
        path = sqlite_path(chosen)
        if path is not None and not path.is_absolute():
            return f"sqlite:///{path.resolve()}"
    return chosen


def _check_scheme(uri: str) -> None:
    scheme = urlparse(uri).scheme.lower().split("+", 1)[0]
    if scheme in SUPPORTED_SCHEMES:
        return
    if scheme in ("", "file"):
        why = "MLflow 3's file store is in maintenance mode and metarl does not log to it"
    else:
        why = f"unknown scheme {scheme + '://'!r}"
    raise UnsupportedTrackingUri(f"tracking URI {uri!r}: {why}; {SUPPORTED_HELP}")


def existing_store(uri: str) -> bool:
    """False for a SQLite store whose file does not exist yet: commands that only read must
    then say so rather than let MLflow create an empty database. Other stores: True."""
    path = sqlite_path(uri) if urlparse(uri).scheme.lower() == "sqlite" else None
    return path is None or path.is_file()


def sqlite_path(uri: str) -> Path | None:
    """The database file of a sqlite:// URI (None for an in-memory database)."""
    rest = uri[len("sqlite://"):].split("?", 1)[0]
    # sqlite:///rel.db -> "/rel.db" -> relative; sqlite:////abs.db -> "//abs.db" -> absolute
    rest = rest[1:] if rest.startswith("/") else rest
    if rest in ("", ":memory:"):
        return None
    return Path(rest).expanduser()


def is_http(uri: str) -> bool:
    return urlparse(uri).scheme.lower() in ("http", "https")


def check_tracking_uri(uri: str, timeout: float = 5.0) -> None:
    """Raise `TrackingUnavailable` unless the store at `uri` looks usable.

    http(s): the server must answer the MLflow REST API within `timeout` seconds (no retries).
    sqlite: the location must be writable. Database URIs (postgresql://, ...):
    a connection must open. Other schemes (databricks, plugins) are not checked.
    """
    scheme = urlparse(uri).scheme.lower()
    if scheme in ("http", "https"):
        _check_http(uri, timeout)
    elif scheme == "sqlite":
        _check_sqlite(uri)
    elif scheme.split("+", 1)[0] in ("postgresql", "postgres", "mysql", "mssql"):
        _check_database(uri, timeout)


def http_auth() -> tuple[dict[str, str], tuple[str, str] | None, bool | str]:
    """Headers, basic auth and TLS verification the MLflow client itself would use."""
    headers: dict[str, str] = {}
    auth = None
    user, password = os.environ.get("MLFLOW_TRACKING_USERNAME"), os.environ.get(
        "MLFLOW_TRACKING_PASSWORD")
    if user and password:
        auth = (user, password)
    elif token := os.environ.get("MLFLOW_TRACKING_TOKEN"):
        headers["Authorization"] = f"Bearer {token}"
    verify: bool | str = True
    if os.environ.get("MLFLOW_TRACKING_INSECURE_TLS", "").lower() == "true":
        verify = False
    elif cert := os.environ.get("MLFLOW_TRACKING_SERVER_CERT_PATH"):
        verify = cert
    return headers, auth, verify


def _check_http(uri: str, timeout: float) -> None:
    import requests

    url = uri.rstrip("/") + "/api/2.0/mlflow/experiments/search"
    headers, auth, verify = http_auth()
    try:
        response = requests.get(url, params={"max_results": 1}, headers=headers, auth=auth,
                                verify=verify, timeout=(timeout, timeout))
    except requests.exceptions.Timeout:
        raise TrackingUnavailable(uri, f"no answer within {timeout:g} s") from None
    except requests.exceptions.ConnectionError as e:
        raise TrackingUnavailable(
            uri, f"nothing answers there (connection failed: {_root_cause(e)})") from None
    except requests.exceptions.RequestException as e:
        raise TrackingUnavailable(uri, f"the request failed: {e}") from None
    if response.status_code in (401, 403):
        raise TrackingUnavailable(
            uri, f"the server refused access (HTTP {response.status_code})",
            "Set MLFLOW_TRACKING_USERNAME and MLFLOW_TRACKING_PASSWORD (or MLFLOW_TRACKING_TOKEN) "
            "to credentials the server accepts.")
    try:
        body = response.json() if response.status_code == 200 else None
    except ValueError:
        body = None
    if not isinstance(body, dict):
        raise TrackingUnavailable(
            uri, f"it answered HTTP {response.status_code} to the MLflow REST API "
            f"({url}), so it is not an MLflow tracking server or the URI has the wrong path")


def _root_cause(e: BaseException) -> str:
    # requests nests urllib3 errors two or three deep; the innermost one says what happened
    while e.__context__ is not None and e.__context__ is not e:
        e = e.__context__
    return str(e).split(": ", 1)[-1] or type(e).__name__


def _check_sqlite(uri: str) -> None:
    path = sqlite_path(uri)
    if path is None:
        return
    path = path if path.is_absolute() else Path.cwd() / path
    directory = path.parent
    if not directory.is_dir():
        raise TrackingUnavailable(
            uri, f"the directory {directory} does not exist",
            f"Create it (mkdir -p {directory}) or choose another location with --tracking-uri "
            "or MLFLOW_TRACKING_URI.")
    # SQLite writes a journal file next to the database, so the directory must be writable too
    if not os.access(directory, os.W_OK | os.X_OK):
        raise TrackingUnavailable(uri, f"the directory {directory} is not writable")
    if path.exists():
        if path.is_dir():
            raise TrackingUnavailable(uri, f"{path} is a directory, not a SQLite database file")
        if not os.access(path, os.R_OK | os.W_OK):
            raise TrackingUnavailable(uri, f"{path} is not readable and writable")
        with open(path, "rb") as f:
            head = f.read(len(_SQLITE_MAGIC))
        if head and head != _SQLITE_MAGIC:
            raise TrackingUnavailable(uri, f"{path} exists but is not a SQLite database")


def _check_database(uri: str, timeout: float) -> None:
    try:
        import sqlalchemy

        connect_args = {} if uri.startswith("mssql") else {"connect_timeout": max(1, int(timeout))}
        engine = sqlalchemy.create_engine(uri, connect_args=connect_args)
        try:
            with engine.connect():
                pass
        finally:
            engine.dispose()
    except ImportError as e:
        raise TrackingUnavailable(uri, f"its database driver is not installed ({e})",
                                  "Install the driver (for PostgreSQL: pip install psycopg2-binary)"
                                  " or choose another store.") from None
    except Exception as e:  # sqlalchemy wraps every driver error differently
        raise TrackingUnavailable(uri, f"could not connect to the database "
                                  f"({str(e).splitlines()[0]})") from None
