"""`metarl search run | resume | list`."""

from __future__ import annotations

import math
import sys
from typing import TYPE_CHECKING

import click

from metarl.cli.paths import find_spec, shipped_specs

if TYPE_CHECKING:  # the heavy modules load when a command runs, so --help answers at once
    from rich.console import Console

    from metarl.programs.runner import SearchResult
    from metarl.spec import SearchSpec

TRACKING_HELP = ("MLflow tracking URI (default: $MLFLOW_TRACKING_URI, else "
                 "sqlite:///mlflow.db in the working directory).")


@click.group()
def search() -> None:
    """Run, resume and list searches."""


@search.command("run")
@click.argument("spec_file", metavar="SPEC")
@click.option("--set", "overrides", multiple=True, metavar="KEY=VALUE",
              help="Override a spec field, e.g. --set outer.population_size=32 (repeatable).")
@click.option("--tracking-uri", default=None, help=TRACKING_HELP)
@click.option("--dry-run", is_flag=True, help="Validate the spec (env names and env params "
              "included) and show the plan; compute nothing, run nothing, log nothing.")
@click.option("--quiet", is_flag=True, help="No progress bar.")
def run_cmd(spec_file: str, overrides: tuple[str, ...], tracking_uri: str | None,
            dry_run: bool, quiet: bool) -> None:
    """Launch the search described by SPEC (a TOML file, a shipped spec's name, or the path
    `metarl search list` shows).

    \b
    Examples:
      metarl search run search/quickstart.toml
      metarl search run quickstart --set outer.generations=3 --set seed=1
      metarl search run search/quickstart.toml --tracking-uri http://127.0.0.1:5000
      metarl search run search/quickstart.toml --dry-run
    """
    if not dry_run:  # before anything starts the XLA backend (validating a spec does)
        from metarl.outer.sharding import maybe_initialize_distributed

        maybe_initialize_distributed()
    from metarl.spec import load_spec
    from metarl.tracking import check_tracking_uri, resolve_tracking_uri

    path = find_spec(spec_file, "search")
    spec = load_spec(path, list(overrides))
    uri = None if dry_run else resolve_tracking_uri(tracking_uri)
    _check_envs(spec, path)
    _print_plan(spec)
    if dry_run:
        return
    from metarl.programs.runner import Search, run_search

    check_tracking_uri(uri)  # an unreachable store fails before anything is built
    search = Search(spec)
    progress = None if quiet else _progress(spec)
    result = run_search(spec, uri, path.read_text(), progress, search=search)
    _print_result(result, uri)


@search.command("resume")
@click.argument("run_id")
@click.option("--tracking-uri", default=None, help=TRACKING_HELP)
@click.option("--quiet", is_flag=True, help="No progress bar.")
def resume_cmd(run_id: str, tracking_uri: str | None, quiet: bool) -> None:
    """Continue the search RUN_ID (or a unique prefix of it) from its last checkpoint, in the
    same MLflow run.

    \b
    Example:
      metarl search resume 3f2c9a0e
    """
    from metarl.outer.sharding import maybe_initialize_distributed

    maybe_initialize_distributed()  # before anything starts the XLA backend
    from metarl.programs.runner import load_run_spec, resume_search
    from metarl.tracking import check_tracking_uri, resolve_run_id, resolve_tracking_uri

    uri = resolve_tracking_uri(tracking_uri)
    check_tracking_uri(uri)
    run_id = resolve_run_id(uri, run_id)
    spec = load_run_spec(run_id, uri)
    progress = None if quiet else _progress(spec)
    result = resume_search(run_id, uri, progress)
    _print_result(result, uri)


@search.command("list")
def list_cmd() -> None:
    """List the shipped search specs with their descriptions."""
    from rich.table import Table

    table = Table("spec", "kind", "description")
    for shown, data in shipped_specs("search"):
        table.add_row(shown, str(data.get("kind", "?")), str(data.get("description", "")))
    _stdout().print(table)


def _check_envs(spec: SearchSpec, path: object) -> None:
    """Every task's env and env-param names, before a run exists or anything computes."""
    from metarl.errors import UserError
    from metarl.spec import SpecError

    for split in ("train", "held_out"):
        for i, task in enumerate(getattr(spec.tasks, split)):
            try:
                spec.inner.check_task(task, f"tasks.{split}[{i}]")
            except UserError as err:
                raise SpecError(f"{path}: {err}") from None


def _progress(spec: SearchSpec):  # noqa: ANN202
    from metarl.cli.progress import SearchProgress

    return SearchProgress(spec.outer.generations, console=_stderr())


def _stdout() -> Console:
    from rich.console import Console

    return Console()


def _stderr() -> Console:
    from rich.console import Console

    return Console(stderr=True)


def _print_plan(spec: SearchSpec) -> None:
    from metarl.outer.settings import members_per_step
    from metarl.spec import spec_hash

    outer, inner = spec.outer, spec.inner
    update = inner.steps_per_update
    run_steps = sum(t.timesteps // update * update for t in spec.tasks.train) * inner.seeds
    members = members_per_step(outer.algorithm, outer.model_dump())
    each = ("whole runs" if outer.truncations == 1
            else f"1/{outer.truncations} of a run each")
    _stdout().print(
        f"[bold]{spec.name}[/bold] ({spec.kind}, spec {spec_hash(spec)}): "
        f"{outer.algorithm}, {members} member(s) x {outer.generations} steps ({each}) on "
        f"{len(spec.tasks.train)} task(s) [{', '.join(t.label for t in spec.tasks.train)}], "
        f"{inner.seeds} seed(s) each; "
        f"{run_steps * members * outer.generations // outer.truncations:,} env steps in all")


def _print_result(result: SearchResult, uri: str) -> None:
    from metarl.tracking.uri import is_http

    out = _stdout()
    best = ("no candidate scored yet" if math.isnan(result.best_fitness)
            else f"best fitness {result.best_fitness:.4f}")
    out.print(f"[bold]{result.status}[/bold]: run {result.run_id}, "
              f"{result.generations} generation(s), {best}")
    for name, values in result.headline.items():
        if values:
            shown = ", ".join(f"{k}={v:.4g}" for k, v in values.items())
            out.print(f"  {name}: {shown}")
    where = "open it in a browser" if is_http(uri) else "open with `metarl ui`"
    out.print(f"  tracking: {uri}  ({where})")
    if result.status == "KILLED":
        out.print(f"  interrupted; continue with `metarl search resume {result.run_id}`")
        sys.exit(130)
