"""Writing a rule to a standalone Python module, and the steps every export shares."""

from __future__ import annotations

import datetime
import os
import secrets
from pathlib import Path
from typing import Any

import metarl
from metarl.export.codegen import render_module
from metarl.learned.base import LearnedObjective


def write_module(objective: LearnedObjective, meta_params: Any, path: str | Path,
                 provenance: dict[str, Any] | None = None) -> Path:
    """Write `objective` with `meta_params` as a self-contained module at `path`.

    `provenance` (run id, spec name, fitness, ...) goes into the module's docstring and its
    `PROVENANCE` dict, in the given order; the metarl version and the export time (UTC) are
    added unless given. The module imports only `jax.numpy` (and `hashlib`) and defines
    `policy_objective(...)` (and `drift(...)` for drift-based rules); see docs/update-rules.md.
    Raises `ExportError` for an objective it cannot export.
    """
    source = render_module(objective, meta_params, stamped(provenance))
    return write_source(path, source)


def stamped(provenance: dict[str, Any] | None) -> dict[str, Any]:
    """`provenance` (in its order) plus the metarl version and the export time (UTC) unless
    given: what every exported module records about where it came from."""
    info = dict(provenance or {})
    info.setdefault("metarl_version", metarl.__version__)
    info.setdefault("exported_at", datetime.datetime.now(datetime.UTC)
                    .replace(microsecond=0).isoformat())
    return info


def write_source(path: str | Path, source: str) -> Path:
    """Write `source` to `path` atomically, creating its folder; returns the path."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    # temp file + rename: a crash mid-write never leaves a half-written module behind
    tmp = path.parent / f".{path.name}.{os.getpid()}.{secrets.token_hex(4)}.tmp"
    try:
        # mode 0o666 less the umask, as for any file the user writes (mkstemp would give 0600)
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o666)
        with os.fdopen(fd, "w", encoding="utf-8") as fh:
            fh.write(source)
        os.replace(tmp, path)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise
    return path
