"""Tags that make a search run reproducible: code version, spec, hardware, host."""

from __future__ import annotations

import socket
import subprocess
from collections import Counter
from pathlib import Path

import metarl

RUN_TYPE_TAG = "metarl.run_type"  # "search" for a search's run, "trial" for its children


def default_tags(spec_hash: str) -> dict[str, str]:
    return {
        "metarl.version": metarl.__version__,
        "metarl.git_commit": git_commit(),
        "metarl.spec_hash": spec_hash,
        "metarl.jax_devices": jax_devices(),
        "metarl.hostname": socket.gethostname(),
    }


def git_commit(folder: str | Path | None = None) -> str:
    """Short SHA of HEAD of the git checkout that holds the running metarl (or `folder`), or
    "unknown" when it is installed from a wheel: the code that ran, not the launch folder's."""
    folder = Path(folder or Path(metarl.__file__).parent)
    # the package must be tracked there: a wheel installed into a venv inside some other
    # repository would otherwise report that repository's commit
    tracked = _git(folder, "ls-files", "--error-unmatch", "--", "__init__.py")
    return (_git(folder, "rev-parse", "--short", "HEAD") if tracked is not None else None) \
        or "unknown"


def _git(folder: Path, *args: str) -> str | None:
    """git's stdout in `folder`, None when git fails or is missing."""
    try:
        out = subprocess.run(["git", *args], cwd=folder, capture_output=True, text=True,
                             timeout=5, check=False)
    except (OSError, subprocess.SubprocessError):  # git not installed, or hung on a network fs
        return None
    return out.stdout.strip() if out.returncode == 0 else None


def jax_devices() -> str:
    """Devices JAX computes on, counted per platform: "cpu:1", "gpu:8", "tpu:4"."""
    try:
        import jax

        counts = Counter(d.platform for d in jax.devices())
    except Exception:  # a broken accelerator plugin must not stop the search from logging
        return "unknown"
    return ",".join(f"{platform}:{n}" for platform, n in sorted(counts.items()))
