"""Where tracking writes go when MLflow cannot take them, and how they get sent later.

`.metarl/unsent/<run_id>.jsonl` holds one op per line, in the order they were logged, after a
header line naming the store. Files an op uploads (artifacts, population.csv) move next to
it, into `.metarl/unsent/<run_id>/`. Nothing in here is ever dropped silently: ops MLflow
refused outright (a 4xx answer) stay in the file marked "rejected" for a person to look at.
"""

from __future__ import annotations

import json
import logging
import os
import posixpath
import shutil
from collections.abc import Callable
from pathlib import Path

from metarl.tracking.ops import Op, execute

log = logging.getLogger("metarl.tracking")

SPILL_DIR = Path(".metarl") / "unsent"


def spill_dir(base: Path | None = None) -> Path:
    """The folder unsent tracking data of searches launched in `base` (default: here) go to."""
    return (base or Path.cwd()) / SPILL_DIR


def spill_path_for(run_id: str, base: Path | None = None) -> Path:
    return spill_dir(base) / f"{run_id}.jsonl"


class Spill:
    """An append-only log of ops that could not be written, replayable in order."""

    def __init__(self, path: Path, tracking_uri: str, run_id: str) -> None:
        self.path = path
        self.files_dir = path.with_suffix("")
        self.tracking_uri = tracking_uri
        self.run_id = run_id
        self._lines = 0 if not path.exists() else sum(
            1 for op in _read(path) if not op.get("rejected"))
        self._owned_files = {op["local_path"] for op in _read(path) if op["op"] == "file"} \
            if path.exists() else set()

    @property
    def pending(self) -> int:
        """Ops waiting to be sent (not counting rejected ones)."""
        return self._lines

    def append(self, op: Op, rejected: str | None = None) -> None:
        op = self._own_files(op)
        if op is None:  # a newer copy of a file already waiting: the older line sends it
            return
        if rejected:
            op["rejected"] = rejected
        else:
            self._lines += 1
        self._write([op], mode="a")

    def replay(self, client: object, is_rejection: Callable[[BaseException], bool]) -> int:
        """Send the waiting ops in order; stop at the first failure that is not a rejection.

        Returns how many were sent. Re-raises that failure after saving what is left.
        """
        if not self.path.exists():
            return 0
        ops = list(_read(self.path))
        sent, left, error = 0, [], None
        for i, op in enumerate(ops):
            if op.get("rejected"):
                left.append(op)
                continue
            try:
                execute(op, client)
                sent += 1
            except Exception as e:
                if is_rejection(e):
                    op["rejected"] = _short(e)
                    left.append(op)
                    continue
                left.extend(ops[i:])
                error = e
                break
        self._rewrite(left)
        if error is not None:
            raise error
        return sent

    def _own_files(self, op: Op) -> Op | None:
        """Move the file an op uploads next to the spill file (text becomes a file)."""
        if op["op"] == "text":
            directory, name = posixpath.split(op["artifact_file"])
            dest = self._file_dest(directory or None, name)
            dest.parent.mkdir(parents=True, exist_ok=True)
            dest.write_text(op["text"], encoding="utf-8")
            op = {**op, "op": "file", "local_path": str(dest), "artifact_path": directory or None}
            del op["text"], op["artifact_file"]
        elif op["op"] == "file":
            src = op["local_path"]
            dest = self._file_dest(op["artifact_path"], os.path.basename(src))
            if str(dest) != src:
                if dest.is_dir():
                    shutil.rmtree(dest)
                dest.parent.mkdir(parents=True, exist_ok=True)
                shutil.move(src, dest)
                op = {**op, "local_path": str(dest)}
        else:
            return op
        # population.csv and checkpoints are rewritten under one name: keep the newest content,
        # sent once, at the position of its first unsent line
        if op["local_path"] in self._owned_files:
            return None
        self._owned_files.add(op["local_path"])
        return op

    def _file_dest(self, artifact_path: str | None, name: str) -> Path:
        return self.files_dir / "files" / (artifact_path or "_root") / name

    def _write(self, ops: list[Op], mode: str, path: Path | None = None) -> None:
        path = path or self.path
        path.parent.mkdir(parents=True, exist_ok=True)
        new = mode == "w" or not path.exists() or path.stat().st_size == 0
        with open(path, mode, encoding="utf-8") as f:
            if new:
                f.write(json.dumps({"op": "header", "version": 1, "run_id": self.run_id,
                                    "tracking_uri": self.tracking_uri}) + "\n")
            for op in ops:
                f.write(json.dumps(op) + "\n")

    def _rewrite(self, ops: list[Op]) -> None:
        self._lines = sum(1 for op in ops if not op.get("rejected"))
        self._owned_files = {op["local_path"] for op in ops if op["op"] == "file"}
        if not ops:
            self.path.unlink(missing_ok=True)
            shutil.rmtree(self.files_dir, ignore_errors=True)
            return
        # write-then-rename: a crash while rewriting must not lose the ops not yet sent
        tmp = self.path.with_suffix(".jsonl.tmp")
        self._write(ops, mode="w", path=tmp)
        os.replace(tmp, self.path)


def read_header(path: Path) -> dict:
    with open(path, encoding="utf-8") as f:
        first = json.loads(f.readline() or "{}")
    if first.get("op") != "header":
        raise ValueError(f"{path} is not a metarl unsent-tracking file")
    return first


def replay_unsent(path: str | os.PathLike, tracking_uri: str | None = None) -> int:
    """Send what a search saved in `path` when MLflow was unreachable; returns how many ops.

    `tracking_uri` defaults to the store the search was logging to. The file shrinks to the
    ops still unsent (or disappears), so running this again is safe.
    """
    from mlflow.tracking import MlflowClient

    from metarl.tracking.writer import is_rejection

    path = Path(path)
    header = read_header(path)
    uri = tracking_uri or header["tracking_uri"]
    spill = Spill(path, uri, header["run_id"])
    return spill.replay(MlflowClient(uri), is_rejection)


def _read(path: Path):
    with open(path, encoding="utf-8") as f:
        for n, line in enumerate(f, 1):
            if not line.strip():
                continue
            try:
                op = json.loads(line)
            except ValueError:  # a line cut short when a process died mid-write
                log.warning("%s line %d is not valid JSON; skipped", path, n)
                continue
            if op.get("op") != "header":
                yield op


def _short(e: BaseException) -> str:
    return f"{type(e).__name__}: {str(e).splitlines()[0] if str(e) else ''}"[:300]
