"""Tags that make a search run reproducible: code version, spec, hardware, host."""

from __future__ import annotations

import socket
import subprocess
from collections import Counter

import metarl


def default_tags(spec_hash: str) -> dict[str, str]:
    return {
        "metarl.version": metarl.__version__,
        "metarl.git_commit": git_commit(),
        "metarl.spec_hash": spec_hash,
        "metarl.jax_devices": jax_devices(),
        "metarl.hostname": socket.gethostname(),
    }


def git_commit() -> str:
    """Short SHA of HEAD in the working directory, or "unknown" outside a repository."""
    try:
        out = subprocess.run(["git", "rev-parse", "--short", "HEAD"], capture_output=True,
                             text=True, timeout=5, check=False)
    except (OSError, subprocess.SubprocessError):  # git not installed, or hung on a network fs
        return "unknown"
    sha = out.stdout.strip()
    return sha if out.returncode == 0 and sha else "unknown"


def jax_devices() -> str:
    """Devices JAX computes on, counted per platform: "cpu:1", "gpu:8", "tpu:4"."""
    try:
        import jax

        counts = Counter(d.platform for d in jax.devices())
    except Exception:  # a broken accelerator plugin must not stop the search from logging
        return "unknown"
    return ",".join(f"{platform}:{n}" for platform, n in sorted(counts.items()))
