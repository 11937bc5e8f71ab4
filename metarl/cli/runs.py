"""`metarl runs list`."""

from __future__ import annotations

import click
from rich.console import Console
from rich.table import Table

from metarl.tracking import check_tracking_uri, list_search_runs, resolve_tracking_uri


@click.group()
def runs() -> None:
    """Inspect searches recorded in the tracking store."""


@runs.command("list")
@click.option("--tracking-uri", default=None, help="MLflow tracking URI (default: "
              "$MLFLOW_TRACKING_URI, else sqlite:///mlflow.db).")
@click.option("-n", "--max-results", default=50, show_default=True, help="How many runs.")
def list_cmd(tracking_uri: str | None, max_results: int) -> None:
    """Table of searches, newest first: run id, search, status, generations, best fitness.

    \b
    Example:
      metarl runs list --tracking-uri http://127.0.0.1:5000
    """
    uri = resolve_tracking_uri(tracking_uri)
    check_tracking_uri(uri)
    table = Table("run id", "search", "status", "generations", "best fitness", "started")
    for r in list_search_runs(uri, max_results):
        best = r.get("best_fitness")
        started = r.get("started")
        table.add_row(r["run_id"], r["search"], r["status"], str(r.get("generations") or "-"),
                      "-" if best is None else f"{best:.4f}",
                      started.strftime("%Y-%m-%d %H:%M") if started else "-")
    Console().print(table)
