"""The `metarl` command line: help, listings, clear errors, and a search killed with SIGKILL
and resumed ends exactly where an uninterrupted one does."""

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
from click.testing import CliRunner
from mlflow.tracking import MlflowClient

from metarl import __version__
from metarl.cli import main

ROOT = Path(__file__).resolve().parents[1]


def cli(*args):
    result = CliRunner().invoke(main, list(args), env={"COLUMNS": "250"})
    return result.exit_code, result.output


def test_version_and_help():
    code, out = cli("--version")
    assert code == 0 and __version__ in out
    for args in ([], ["search"], ["search", "run"], ["runs", "list"], ["ui"]):
        code, out = cli(*args, "--help")
        assert code == 0 and "Usage" in out


def test_listings():
    code, out = cli("search", "list")
    assert code == 0 and "quickstart" in out
    code, out = cli("tasks", "list")
    assert code == 0 and "classic_control" in out
    code, out = cli("envs", "list", "--prefix", "gymnax/")
    assert code == 0 and "gymnax/CartPole-v1" in out and "brax/" not in out


@pytest.mark.parametrize("args,needle", [
    (["--set", "outer.populaton_size=8"], "field 'outer.populaton_size': unknown field"),
    (["--set", "tasks.train.0.env=gymnax/Cartpol-v1"], "Did you mean gymnax/CartPole-v1"),
    (["--set", "outer.generations=-1"], "field 'outer.generations'"),
])
def test_bad_spec_exits_2_without_traceback(args, needle):
    code, out = cli("search", "run", str(ROOT / "search/quickstart.toml"), *args)
    assert code == 2
    assert needle in out and "quickstart.toml" in out
    assert "Traceback" not in out


def test_env_param_typo_fails_before_any_run(tmp_path):
    code, out = cli("search", "run", "quickstart", "--set",
                    "tasks.train.0.env_params.gravty=3.0", "--tracking-uri",
                    f"sqlite:///{tmp_path}/x.db")
    assert code == 2 and "quickstart.toml" in out and "tasks.train[0]" in out
    assert "has no parameter 'gravty'" in out and "Traceback" not in out
    assert not (tmp_path / "x.db").exists()


def test_missing_spec_file():
    code, out = cli("search", "run", "no/such/spec.toml")
    assert code == 2 and "no such spec file" in out


def test_dry_run_shows_plan(tmp_path):
    code, out = cli("search", "run", "quickstart", "--dry-run",
                    "--tracking-uri", f"sqlite:///{tmp_path}/x.db")
    assert code == 0 and "open_es, 8 member(s) x 8 steps" in out
    assert not (tmp_path / "x.db").exists()  # nothing was logged


def test_unreachable_server_stops_before_computing(tmp_path):
    code, out = cli("search", "run", "quickstart", "--tracking-uri", "http://127.0.0.1:9")
    assert code == 1 and "127.0.0.1:9" in out and "Traceback" not in out


def test_runs_list_on_a_store_that_does_not_exist_creates_none(tmp_path):
    code, out = cli("runs", "list", "--tracking-uri", f"sqlite:///{tmp_path}/empty.db")
    assert code == 0 and "no search runs" in out
    assert not (tmp_path / "empty.db").exists()


KILL_SPEC = """
name = "killme"
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
algorithm = "snes"
population_size = 4
generations = 6
[search_space]
lr = { low = 1e-4, high = 1e-2, log = true }
[tracking]
checkpoint_every = 1
trials = "best"
"""


def metarl(args, cwd, env, **kw):
    return subprocess.Popen([sys.executable, "-m", "metarl", *args], cwd=cwd, env=env,
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, **kw)


def test_sigkill_then_resume_equals_uninterrupted(tmp_path):
    (tmp_path / "spec.toml").write_text(KILL_SPEC)
    env = {**os.environ, "JAX_COMPILATION_CACHE_DIR": str(tmp_path / "jaxcache"),
           "XLA_FLAGS": ""}
    env.pop("MLFLOW_TRACKING_URI", None)
    uri = f"sqlite:///{tmp_path}/mlflow.db"
    args = ["search", "run", "spec.toml", "--quiet", "--tracking-uri", uri]

    whole = metarl(args, tmp_path, env)
    out, _ = whole.communicate(timeout=600)
    assert whole.returncode == 0, out

    whole_id = _run_ids(uri)[0]

    victim = metarl(args, tmp_path, env)
    ckpts = tmp_path / ".metarl" / "checkpoints"
    killed = None
    deadline = time.time() + 300
    while time.time() < deadline and victim.poll() is None:
        others = {p.parent.name for p in ckpts.glob("*/latest.npz")} - {whole_id}
        if others and _generation_logged(uri, next(iter(others))) >= 2:
            killed = next(iter(others))
            break
        time.sleep(0.2)
    victim.send_signal(signal.SIGKILL)
    victim.wait()
    assert killed and victim.returncode == -signal.SIGKILL, "finished before it was killed"

    resumed = metarl(["search", "resume", killed, "--quiet", "--tracking-uri", uri], tmp_path,
                     env)
    out, _ = resumed.communicate(timeout=600)
    assert resumed.returncode == 0, out

    client = MlflowClient(uri)
    first = whole_id
    for name in ("best_params.json", "mean_params.json"):
        a = json.loads(Path(client.download_artifacts(first, name)).read_text())
        b = json.loads(Path(client.download_artifacts(killed, name)).read_text())
        assert a == b
    hist = [m.value for m in client.get_metric_history(first, "best_fitness")]
    hist_resumed = {m.step: m.value for m in client.get_metric_history(killed, "best_fitness")}
    assert [hist_resumed[s] for s in range(6)] == hist
    assert client.get_run(killed).info.status == "FINISHED"


def _run_ids(uri):
    """Search run ids, oldest first."""
    client = MlflowClient(uri)
    exps = client.search_experiments()
    runs = client.search_runs([e.experiment_id for e in exps],
                              "tags.`metarl.run_type` = 'search'", order_by=["start_time ASC"])
    return [r.info.run_id for r in runs]


def _generation_logged(uri, run_id):
    try:
        hist = MlflowClient(uri).get_metric_history(run_id, "generation")
    except Exception:  # noqa: BLE001 - the run may not exist yet
        return -1
    return max((int(m.value) for m in hist), default=-1)


def test_progress_prints_meta_test_beside_its_baseline():
    import io

    from rich.console import Console

    from metarl.cli.progress import SearchProgress

    buf = io.StringIO()
    progress = SearchProgress(10, console=Console(file=buf, width=200))
    progress.meta_test(9, {"normalised_return": 0.84, "ppo_clip/normalised_return": 0.8,
                           "ratio_to_ppo_clip": 1.05, "return/lowg": 300.0})
    progress.stop()
    assert "meta-test g0009: held-out normalised 0.840, ppo_clip 0.800 (ratio 1.050)" in (
        buf.getvalue())
