import importlib.util
import os
import shutil
import sys

import pytest

# Tests run on the CPU with one device; tests/test_sharding.py starts its own process with
# several host devices (multi-device programs on 2 loaded cores are slow to compile).
os.environ.setdefault("MPLBACKEND", "Agg")
os.environ.setdefault("JAX_PLATFORMS", "cpu")


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
