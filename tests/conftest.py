import importlib.util
import os
import shutil
import sys

import pytest

# Tests run on the CPU with one device; tests/test_sharding.py starts its own process with
# several host devices (multi-device programs on 2 loaded cores are slow to compile).
os.environ.setdefault("MPLBACKEND", "Agg")
os.environ.setdefault("JAX_PLATFORMS", "cpu")
# The CLI turns on JAX's persistent compilation cache for the whole process, and tests call
# the CLI in-process: then every later test writes its compiled programs to disk, most of
# them compiled once. On 2 cores that made the suite 18 min 21 s against 13 min 57 s without
# (fresh clones, 2026-12-01). Tests of the cache set the folder themselves.
os.environ.setdefault("JAX_COMPILATION_CACHE_DIR", "")


@pytest.fixture(scope="session")
def ruff() -> list[str]:
    """The command that runs ruff. It is in the `test` extra: this interpreter's copy first,
    so a venv whose bin/ is not on PATH still runs the checks instead of skipping them."""
    if importlib.util.find_spec("ruff") is not None:
        return [sys.executable, "-m", "ruff"]
    exe = shutil.which("ruff")
    if exe is None:
        pytest.skip("ruff is not installed (pip install -e '.[test]')")
    return [exe]
