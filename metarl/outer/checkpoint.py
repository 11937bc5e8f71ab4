"""Saving and restoring the outer-loop state (strategy state, keys, generation, best)."""

from __future__ import annotations

import json
import os
import tempfile
import uuid
from pathlib import Path
from typing import Any

import jax
import numpy as np

from metarl.errors import UserError

PyTree = Any


class CheckpointError(UserError, RuntimeError):
    """A checkpoint that is missing, unreadable or from another spec."""

    exit_code = 1


class StorageError(UserError):
    """A folder a search must write to that cannot be written: read-only, full, or not a
    folder. The message names the folder."""

    exit_code = 1  # the spec was fine; the disk was not


def check_writable(folder: str | Path, purpose: str, fix: str = "") -> None:
    """Create `folder` if needed and write a file in it, so that a search learns it cannot
    save before it spends minutes compiling rather than after."""
    folder = Path(folder)
    try:
        folder.mkdir(parents=True, exist_ok=True)
        fd, probe = tempfile.mkstemp(dir=folder, prefix=".metarl-write-check-")
        os.close(fd)
        os.unlink(probe)
    except OSError as err:
        hint = fix or "launch the search from a folder you can write to, with free space"
        raise StorageError(f"cannot write {purpose} in {folder.absolute()} "
                           f"({err.strerror or err}): {hint}") from None


def save_checkpoint(path: str | Path, state: PyTree, host: dict[str, Any]) -> Path:
    """Write `state` (any pytree of arrays) and JSON-able host-side data atomically."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    leaves = [np.asarray(x) for x in jax.tree.leaves(jax.device_get(state))]
    arrays = {f"leaf_{i:05d}": leaf for i, leaf in enumerate(leaves)}
    arrays["host_json"] = np.frombuffer(json.dumps(host).encode(), np.uint8)
    # write to a temp file and rename, so a kill mid-write never leaves a torn checkpoint;
    # os.open applies the umask (mkstemp would make the file private to its owner)
    tmp = path.with_name(f".{path.name}.{os.getpid()}.{uuid.uuid4().hex[:8]}.tmp")
    try:
        with os.fdopen(os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o666), "wb") as fh:
            np.savez(fh, **arrays)
        os.replace(tmp, path)
    except BaseException:
        tmp.unlink(missing_ok=True)  # a full disk must not also keep a half-written file
        raise
    return path


def load_checkpoint(path: str | Path, template: PyTree) -> tuple[PyTree, dict[str, Any]]:
    """Restore a state saved by `save_checkpoint` into the structure of `template`."""
    path = Path(path)
    try:
        with np.load(path) as data:
            host = json.loads(bytes(data["host_json"]).decode())
            n = len([k for k in data.files if k.startswith("leaf_")])
            leaves = [data[f"leaf_{i:05d}"] for i in range(n)]
    except (OSError, ValueError, KeyError) as err:
        raise CheckpointError(f"{path}: not a readable metarl checkpoint ({err})") from None
    t_leaves, treedef = jax.tree.flatten(template)
    if len(t_leaves) != len(leaves) or any(
            np.shape(a) != np.shape(b) for a, b in zip(t_leaves, leaves, strict=True)):
        raise CheckpointError(f"{path}: checkpoint does not match this search's state "
                              "(was the spec changed?)")
    # a template may be real arrays or `jax.eval_shape`'s shapes and dtypes
    leaves = [np.asarray(v, dtype=_dtype(t)) for v, t in zip(leaves, t_leaves, strict=True)]
    return jax.tree.unflatten(treedef, leaves), host


def _dtype(template_leaf: Any) -> np.dtype:
    dtype = getattr(template_leaf, "dtype", None)  # arrays and ShapeDtypeStructs have one
    return np.asarray(template_leaf).dtype if dtype is None else dtype
