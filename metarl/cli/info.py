"""`metarl envs list`, `metarl tasks list` and `metarl ui`."""

from __future__ import annotations

import click
from rich.console import Console
from rich.table import Table

from metarl.cli.errors import fail
from metarl.cli.paths import shipped_specs


@click.group()
def envs() -> None:
    """Environments available to task suites."""


@envs.command("list")
@click.option("--prefix", default="", help="Only names starting with this, e.g. brax/.")
def envs_list(prefix: str) -> None:
    """Every registered environment name (gymnax/..., brax/...)."""
    from metarl.envs import list_envs

    for name in list_envs():
        if name.startswith(prefix):
            click.echo(name)


@click.group()
def tasks() -> None:
    """Task-suite specs (tasks/*.toml)."""


@tasks.command("list")
def tasks_list() -> None:
    """The shipped task suites with their environments."""
    table = Table("suite", "description", "train", "held out")
    for shown, data in shipped_specs("tasks"):
        table.add_row(shown, data.get("description", ""), _task_names(data, "train"),
                      _task_names(data, "held_out"))
    Console().print(table)


def _task_names(suite: dict, split: str) -> str:
    return ", ".join(t.get("name") or t.get("env", "?") for t in suite.get(split, []))


@click.command()
@click.option("--tracking-uri", default=None, help="Store to show (default: "
              "$MLFLOW_TRACKING_URI, else sqlite:///mlflow.db).")
@click.option("--port", default=5000, show_default=True, type=click.IntRange(1, 65535))
def ui(tracking_uri: str | None, port: int) -> None:
    """Serve the MLflow UI on http://127.0.0.1:PORT for a local store.

    Once the UI answers, prints the address of the newest search's runs (trials nested under
    their search run, fitness and hyperparameter columns) to stdout. An http(s) store is
    already a server: open it in a browser instead.

    \b
    Example:
      metarl ui --port 5001
    """
    from metarl.tracking import resolve_tracking_uri
    from metarl.tracking.ui import check_port_free, first_page_url, serve, ui_command

    uri = resolve_tracking_uri(tracking_uri)
    cmd = ui_command(uri, port)  # raises UserError for a store it cannot serve
    check_port_free(port)
    url = first_page_url(uri, port)
    click.echo(f"Starting the MLflow UI for {uri} on http://127.0.0.1:{port} (Ctrl-C to stop)",
               err=True)
    status = serve(cmd, port, on_ready=lambda: click.echo(url))
    if status != 0:
        fail(f"the MLflow UI server exited with status {status} (its messages are above)", 1)
