"""Every class of CLI mistake: one line naming what is wrong and what is allowed, exit 2, no
traceback, and a command that only reads creates nothing (no mlflow.db, no .metarl/)."""

import pytest
from click.testing import CliRunner
from mlflow.tracking import MlflowClient

from metarl.cli import main
from metarl.tracking import UnknownRun, resolve_run_id
from metarl.tracking import runs as tracking_runs

MISSING = "0123456789abcdef0123456789abcdef"


@pytest.fixture(scope="module")
def store(tmp_path_factory):
    """A store with one search run and one trial under it (MLflow's own client, no search)."""
    folder = tmp_path_factory.mktemp("store")
    uri = f"sqlite:///{folder / 'mlflow.db'}"
    client = MlflowClient(uri)
    exp = client.create_experiment("fake", artifact_location=str(folder / "artifacts"))
    run = client.create_run(exp, tags={"metarl.run_type": "search"})
    client.create_run(exp, tags={"metarl.run_type": "trial",
                                 "mlflow.parentRunId": run.info.run_id})
    return uri, run.info.run_id


def invoke(args, env=None):
    result = CliRunner().invoke(main, args, env={"COLUMNS": "200", **(env or {})})
    assert result.exception is None or isinstance(result.exception, SystemExit), \
        f"uncaught {result.exception!r}"
    return result.exit_code, result.output


NO_STORE = ["--tracking-uri", "sqlite:///{tmp}/none.db"]
CASES = {
    # malformed ids never become paths
    "resume ../..": (["search", "resume", "../../etc", *NO_STORE], "is not a run id"),
    "export ../": (["export", "../../../X", *NO_STORE], "is not a run id"),
    "evaluate /abs": (["evaluate", "/etc/passwd", *NO_STORE], "is not a run id"),
    # well-formed ids of runs that are not there
    "resume, no store": (["search", "resume", MISSING, *NO_STORE], "does not exist yet"),
    "export, no store": (["export", "deadbeef", *NO_STORE], "does not exist yet"),
    "evaluate, unknown": (["evaluate", MISSING, "--tracking-uri", "{store}"],
                          "no search run"),
    "export, a trial id": (["export", "{trial}", "--tracking-uri", "{store}"],
                           "no search run"),
    # counts
    "seeds 0": (["evaluate", "deadbeef", "--seeds", "0"], "--seeds"),
    "seeds -1": (["evaluate", "deadbeef", "--seeds", "-1"], "--seeds"),
    "generation -1": (["export", "deadbeef", "--generation", "-1"], "--generation"),
    "runs list -n 0": (["runs", "list", "-n", "0"], "--max-results"),
    # choices
    "baselines": (["evaluate", "deadbeef", "--baselines", "ppo_clip,sac", *NO_STORE],
                  "'sac'"),
    # stores metarl cannot use
    "file store": (["runs", "list", "--tracking-uri", "file:///{tmp}/mlruns"],
                   "file store"),
    "bogus scheme": (["search", "resume", "deadbeef", "--tracking-uri", "bogus://x"],
                     "unknown scheme 'bogus://'"),
    "bare folder": (["export", "deadbeef", "--tracking-uri", "{tmp}/mlruns"], "file store"),
    # files
    "spec file": (["search", "run", "no/such.toml"], "no such spec file"),
    "task suite": (["evaluate", "deadbeef", "--tasks", "no_such_suite", *NO_STORE],
                   "no such task suite file"),
    "nan in --set": (["search", "run", "quickstart", "--dry-run", "--set", "inner.lr=nan"],
                     "inner.lr"),
    "experiment name": (["search", "run", "quickstart", "--dry-run", "--set",
                         "tracking.experiment=' x'"], "an experiment name is 1-250 printable"),
}


@pytest.mark.parametrize("case", list(CASES))
def test_mistake_gets_one_line_and_exit_2(case, store, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    uri, run_id = store
    trial = MlflowClient(uri).search_runs(
        [MlflowClient(uri).get_run(run_id).info.experiment_id],
        "tags.`metarl.run_type` = 'trial'")[0].info.run_id
    args, needle = CASES[case]
    args = [a.format(tmp=tmp_path, store=uri, trial=trial) for a in args]
    code, out = invoke(args)
    assert code == 2, out
    assert needle in out, out
    assert "Traceback" not in out
    assert sorted(p.name for p in tmp_path.iterdir()) == [], "a failed command wrote files"


def test_run_id_prefixes_resolve_and_ambiguity_is_named(store, monkeypatch):
    uri, run_id = store
    assert resolve_run_id(uri, run_id[:6]) == run_id
    fake = [{"run_id": "abc1" + "0" * 28}, {"run_id": "abc2" + "0" * 28}]
    monkeypatch.setattr(tracking_runs, "list_search_runs", lambda *a, **k: fake)
    with pytest.raises(UnknownRun, match="ambiguous: 2 search runs"):
        resolve_run_id(uri, "abc")
    assert resolve_run_id(uri, "abc2") == fake[1]["run_id"]


def test_runs_list_shows_ids_that_fit_and_accepts_full(store):
    uri, run_id = store
    code, out = invoke(["runs", "list", "--tracking-uri", uri], env={"COLUMNS": "80"})
    assert code == 0 and run_id[:8] in out and run_id not in out
    code, out = invoke(["runs", "list", "--tracking-uri", uri, "--full-ids"],
                       env={"COLUMNS": "120"})
    assert code == 0 and run_id in out


def test_shipped_specs_resolve_from_any_folder(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    for given in ("quickstart", "quickstart.toml", "search/quickstart.toml"):
        code, out = invoke(["search", "run", given, "--dry-run"])
        assert code == 0 and "quickstart (hparams" in out, (given, out)
    assert list(tmp_path.iterdir()) == []


def test_help_and_listings_do_not_import_jax_or_mlflow():
    import subprocess
    import sys

    code = ("import sys; from click.testing import CliRunner; from metarl.cli import main; "
            "r = [CliRunner().invoke(main, a) for a in (['--help'], ['search', 'list'], "
            "['tasks', 'list'], ['envs', 'list'], ['search', 'run', '--help'])]; "
            "assert all(x.exit_code == 0 for x in r), [x.output for x in r]; "
            "heavy = {'jax', 'mlflow', 'brax', 'gymnax'} & set(sys.modules); "
            "assert not heavy, heavy")
    subprocess.run([sys.executable, "-c", code], check=True)
