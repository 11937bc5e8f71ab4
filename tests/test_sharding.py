"""The population axis split over several devices gives the same search as one device.

Runs in a child process with 4 host devices, so the rest of the suite keeps one device."""

import os
import subprocess
import sys
from pathlib import Path

SCRIPT = """
import jax, numpy as np
assert len(jax.devices()) == 4
import test_outer as T
_, state4, outs4 = T.run("open_es", generations=4)
_, state1, outs1 = T.run("open_es", generations=4, devices=1)
assert len(outs4[-1].fitness.sharding.device_set) == 4, outs4[-1].fitness.sharding
np.testing.assert_allclose(outs4[-1].fitness, outs1[-1].fitness, rtol=1e-6)
np.testing.assert_allclose(state4.best_fitness, state1.best_fitness, rtol=1e-6)
print("sharded == single")
"""


def test_sharded_population_equals_single_device():
    env = {**os.environ, "XLA_FLAGS": "--xla_force_host_platform_device_count=4",
           "PYTHONPATH": str(Path(__file__).parent)}
    out = subprocess.run([sys.executable, "-c", SCRIPT], env=env, capture_output=True,
                         text=True, timeout=600)
    assert out.returncode == 0, out.stdout + out.stderr
    assert "sharded == single" in out.stdout
