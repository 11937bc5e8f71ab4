"""`metarl runs list | replay`."""

from __future__ import annotations

import click

TRACKING_HELP = ("MLflow tracking URI (default: $MLFLOW_TRACKING_URI, else "
                 "sqlite:///mlflow.db in the working directory).")
SHORT_ID = 8  # like a short git SHA: what fits a table and what people type


@click.group()
def runs() -> None:
    """Inspect searches recorded in the tracking store."""


@runs.command("list")
@click.option("--tracking-uri", default=None, help=TRACKING_HELP)
@click.option("-n", "--max-results", default=50, show_default=True,
              type=click.IntRange(min=1), help="How many runs.")
@click.option("--full-ids", is_flag=True, help="Show whole run ids instead of short prefixes.")
def list_cmd(tracking_uri: str | None, max_results: int, full_ids: bool) -> None:
    """Table of searches, newest first: run id, search, status, generations, best fitness.

    Run ids are shown as their shortest unique prefix (at least 8 digits); every command
    that takes a RUN_ID accepts such a prefix.

    \b
    Example:
      metarl runs list --tracking-uri http://127.0.0.1:5000
    """
    from rich.console import Console
    from rich.table import Table

    from metarl.tracking import check_tracking_uri, list_search_runs, resolve_tracking_uri

    uri = resolve_tracking_uri(tracking_uri)
    check_tracking_uri(uri)
    listed = list_search_runs(uri, None)
    if not listed:
        click.echo(f"no search runs in {uri}", err=True)
        return
    ids = [r["run_id"] for r in listed]
    table = Table("run id", "search", "status", "generations", "best fitness", "started")
    table.columns[0].no_wrap = True
    for r in listed[:max_results]:
        best = r.get("best_fitness")
        started = r.get("started")
        table.add_row(r["run_id"] if full_ids else short_id(r["run_id"], ids), r["search"],
                      r["status"], str(r.get("generations") or "-"),
                      "-" if best is None else f"{best:.4f}",
                      started.strftime("%Y-%m-%d %H:%M") if started else "-")
    Console().print(table)


def short_id(run_id: str, all_ids: list[str]) -> str:
    """The shortest prefix of `run_id`, at least `SHORT_ID` long, that no other id shares."""
    for n in range(SHORT_ID, len(run_id)):
        prefix = run_id[:n]
        if sum(i.startswith(prefix) for i in all_ids) == 1:
            return prefix
    return run_id


@runs.command("replay")
@click.argument("run_id", required=False)
@click.option("--tracking-uri", default=None, help="Send to this store instead of the one "
              "the search was logging to.")
def replay_cmd(run_id: str | None, tracking_uri: str | None) -> None:
    """Send tracking that a search kept on disk while MLflow was unreachable
    (.metarl/unsent/RUN_ID.jsonl); without RUN_ID, every search's. Safe to repeat.

    \b
    Example:
      metarl runs replay 3f2c9a0e
    """
    from pathlib import Path

    from metarl.tracking import check_run_id, replay_unsent
    from metarl.tracking.spill import SPILL_DIR

    folder = Path.cwd() / SPILL_DIR
    pattern = "*.jsonl" if run_id is None else f"{check_run_id(run_id)}*.jsonl"
    files = sorted(folder.glob(pattern)) if folder.is_dir() else []
    if not files:
        what = "nothing" if run_id is None else f"nothing for run {run_id!r}"
        click.echo(f"{what} to send: {folder} holds no unsent tracking", err=True)
        return
    uri = tracking_uri
    if uri is not None:
        from metarl.tracking import resolve_tracking_uri

        uri = resolve_tracking_uri(uri)
    for path in files:
        sent = replay_unsent(path, uri)
        left = "all sent" if not path.exists() else f"{path} still holds the rest"
        click.echo(f"run {path.stem}: sent {sent} write(s); {left}")
