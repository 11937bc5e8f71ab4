"""One search as two `jax.distributed` processes on localhost gives the result of one process.

Each process has 2 host devices, so the population axis spans 4 devices in 2 processes, which
talk through jax's CPU collectives (gloo, jax's default on the CPU since 0.4.36). The processes
find each other through the standard variables (JAX_COORDINATOR_ADDRESS, JAX_NUM_PROCESSES,
JAX_PROCESS_ID), as they would on several hosts.

A process whose peer died waits on the coordinator or on a collective for minutes, so every
child runs under a deadline and the survivors are killed as soon as one fails: a broken setup
fails this test in seconds and never hangs the suite.
"""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
import time
from pathlib import Path

import jax
import numpy as np
import pytest

TESTS = Path(__file__).parent
PROCESSES = 2
DEVICES_PER_PROCESS = 2

# The toy search of tests/test_outer.py in every process; process-local results are printed as
# JSON. jax.distributed.initialize gets the count and the id as arguments because jax 0.10
# reads only JAX_COORDINATOR_ADDRESS from the environment itself.
TOY_SCRIPT = """
import json, os
import jax
if "JAX_COORDINATOR_ADDRESS" in os.environ:
    jax.distributed.initialize(os.environ["JAX_COORDINATOR_ADDRESS"],
                               int(os.environ["JAX_NUM_PROCESSES"]),
                               int(os.environ["JAX_PROCESS_ID"]))
import numpy as np
from jax.experimental import multihost_utils
import test_outer as T

loop, state, outs = T.run("open_es", generations=4)
fitness = outs[-1].fitness  # sharded over all 4 devices: each process holds its half
print("RESULT", json.dumps({
    "processes": jax.process_count(), "devices": jax.device_count(),
    "fitness_devices": len(fitness.sharding.device_set),
    "fitness": np.asarray(multihost_utils.process_allgather(fitness, tiled=True)).tolist(),
    "best_fitness": float(state.best_fitness),
    "mean": [np.asarray(x).tolist() for x in jax.tree.leaves(loop.mean(state.loop))],
}))
"""

SPEC = """
name = "multihost"
kind = "hparams"
seed = 7
[[tasks.train]]
env = "gymnax/CartPole-v1"
timesteps = 512
return_range = [22.0, 500.0]
[inner]
num_envs = 4
num_steps = 32
update_epochs = 1
num_minibatches = 2
hidden_sizes = [8, 8]
rollout_unroll = 1
minibatch_unroll = 1
[outer]
algorithm = "open_es"
population_size = 4
generations = 2
sigma_init = 1.0
learning_rate = 0.3
[search_space]
lr = { low = 1e-4, high = 1e-2, log = true }
[tracking]
checkpoint_every = 1
trials = "best"
"""


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def base_env(devices: int) -> dict[str, str]:
    env = {**os.environ, "JAX_PLATFORMS": "cpu", "PYTHONPATH": str(TESTS),
           "XLA_FLAGS": f"--xla_force_host_platform_device_count={devices}"}
    for var in ("JAX_COORDINATOR_ADDRESS", "JAX_NUM_PROCESSES", "JAX_PROCESS_ID",
                "MLFLOW_TRACKING_URI"):
        env.pop(var, None)
    return env


def process_envs(n: int = PROCESSES) -> list[dict[str, str]]:
    """The variables a cluster launcher would set, for `n` processes on this machine."""
    port = free_port()
    common = {**base_env(DEVICES_PER_PROCESS), "JAX_NUM_PROCESSES": str(n),
              "JAX_COORDINATOR_ADDRESS": f"127.0.0.1:{port}",
              # loopback only: the default binds the coordinator on every interface
              "JAX_COORDINATOR_BIND_ADDRESS": f"127.0.0.1:{port}"}
    return [{**common, "JAX_PROCESS_ID": str(i)} for i in range(n)]


def launch(argv: list[str], envs: list[dict[str, str]], cwds: list[Path], logs: Path,
           timeout: float) -> list[str]:
    """Run one process per env to completion; their outputs. The first failure (or the
    deadline) kills the others, which would otherwise wait for their peer."""
    logs.mkdir(parents=True, exist_ok=True)
    files = [open(logs / f"process{i}.log", "w+") for i in range(len(envs))]  # noqa: SIM115
    procs = [subprocess.Popen(argv, env=env, cwd=cwd, stdout=fh, stderr=subprocess.STDOUT,
                              text=True)
             for env, cwd, fh in zip(envs, cwds, files, strict=True)]
    deadline, timed_out = time.monotonic() + timeout, False
    try:
        while any(p.poll() is None for p in procs):
            if any(p.poll() not in (None, 0) for p in procs):
                break
            if time.monotonic() > deadline:
                timed_out = True
                break
            time.sleep(0.2)
    finally:
        for p in procs:
            if p.poll() is None:
                p.kill()
            p.wait()
        outputs = []
        for fh in files:
            fh.seek(0)
            outputs.append(fh.read())
            fh.close()
    report = "\n".join(f"--- process {i} (exit {p.returncode}) ---\n{out[-4000:]}"
                       for i, (p, out) in enumerate(zip(procs, outputs, strict=True)))
    if timed_out:
        pytest.fail(f"no result within {timeout:.0f} s, processes killed\n{report}")
    assert all(p.returncode == 0 for p in procs), report
    return outputs


def result_of(output: str) -> dict:
    lines = [ln for ln in output.splitlines() if ln.startswith("RESULT ")]
    assert lines, output[-4000:]
    return json.loads(lines[-1][len("RESULT "):])


def test_two_processes_give_the_single_process_search(tmp_path):
    outputs = launch([sys.executable, "-c", TOY_SCRIPT], process_envs(),
                     [tmp_path] * PROCESSES, tmp_path / "logs", timeout=240)
    results = [result_of(out) for out in outputs]
    assert results[0] == results[1]  # every process ends with the whole, same search
    multi = results[0]
    assert multi["processes"] == PROCESSES
    assert multi["devices"] == multi["fitness_devices"] == PROCESSES * DEVICES_PER_PROCESS

    from test_outer import run  # the same search in this process, on its one device

    loop, state, outs = run("open_es", generations=4)
    np.testing.assert_allclose(multi["fitness"], np.asarray(outs[-1].fitness), rtol=1e-6)
    np.testing.assert_allclose(multi["best_fitness"], float(state.best_fitness), rtol=1e-6)
    for got, want in zip(multi["mean"], jax.tree.leaves(loop.mean(state.loop)), strict=True):
        np.testing.assert_allclose(got, np.asarray(want), rtol=1e-6, atol=1e-7)


def _checkpoints(cwd: Path) -> list[Path]:
    return sorted((cwd / ".metarl" / "checkpoints").glob("*/latest.npz"))


def test_cli_search_on_two_processes_equals_one_process(tmp_path):
    (tmp_path / "spec.toml").write_text(SPEC)
    uri = f"sqlite:///{tmp_path / 'multi.db'}"  # one store for all, as a shared server is
    argv = [sys.executable, "-m", "metarl", "search", "run", str(tmp_path / "spec.toml"),
            "--quiet"]
    cwds = [tmp_path / f"process{i}" for i in range(PROCESSES)]
    for cwd in cwds:
        cwd.mkdir()
    outputs = launch([*argv, "--tracking-uri", uri], process_envs(), cwds,
                     tmp_path / "logs2", timeout=300)
    assert all("FINISHED" in out for out in outputs), outputs
    single = tmp_path / "single"
    single.mkdir()
    launch([*argv, "--tracking-uri", f"sqlite:///{tmp_path / 'single.db'}"],
           [base_env(PROCESSES * DEVICES_PER_PROCESS)], [single], tmp_path / "logs1",
           timeout=240)

    # only process 0 tracks and checkpoints
    assert len(_checkpoints(cwds[0])) == 1 and not _checkpoints(cwds[1])
    from metarl.tracking import list_search_runs

    runs = list_search_runs(uri)
    assert [r["status"] for r in runs] == ["FINISHED"]

    # the same state and history as one process with the same 4 devices; collectives may
    # reduce in another order, so the last bits may differ (as with 4 devices against 1)
    with np.load(_checkpoints(cwds[0])[0]) as got, np.load(_checkpoints(single)[0]) as want:
        assert got.files == want.files
        for name in got.files:
            if name == "host_json":
                h_got, h_want = (json.loads(bytes(d[name]).decode()) for d in (got, want))
                assert h_got["generation"] == h_want["generation"] == 2
                for k, v in h_want["history"].items():
                    np.testing.assert_allclose(h_got["history"][k], v, rtol=1e-6)
            else:
                np.testing.assert_allclose(got[name], want[name], rtol=1e-6, atol=1e-7)
