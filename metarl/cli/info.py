"""`metarl envs list`, `metarl tasks list` and `metarl ui`."""

from __future__ import annotations

import subprocess

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
@click.option("--port", default=5000, show_default=True)
def ui(tracking_uri: str | None, port: int) -> None:
    """Open the MLflow UI on http://127.0.0.1:PORT for the local store.

    \b
    Example:
      metarl ui --port 5001
    """
    from metarl.tracking import resolve_tracking_uri, ui_command

    try:
        cmd = ui_command(resolve_tracking_uri(tracking_uri), port)
    except ValueError as err:  # e.g. an http:// store already has its own UI
        fail(str(err), 2)
    click.echo(f"MLflow UI on http://127.0.0.1:{port}  (Ctrl-C to stop)", err=True)
    try:
        subprocess.run(cmd, check=False)
    except KeyboardInterrupt:
        pass
