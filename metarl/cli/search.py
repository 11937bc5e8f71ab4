"""`metarl search run | resume | list`."""

from __future__ import annotations

import sys
from typing import TYPE_CHECKING

import click
from rich.console import Console
from rich.table import Table

from metarl.cli.errors import fail
from metarl.cli.paths import find_spec, shipped_specs
from metarl.cli.progress import SearchProgress
from metarl.envs import EnvParamError
from metarl.spec import SearchSpec, SpecError, load_spec, spec_hash
from metarl.tracking import resolve_tracking_uri

if TYPE_CHECKING:
    from metarl.programs.runner import SearchResult

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
@click.option("--dry-run", is_flag=True, help="Validate the spec and show the plan; compute "
              "nothing, log nothing.")
@click.option("--quiet", is_flag=True, help="No progress bar.")
def run_cmd(spec_file: str, overrides: tuple[str, ...], tracking_uri: str | None,
            dry_run: bool, quiet: bool) -> None:
    """Launch the search described by SPEC (a TOML file or a shipped spec name).

    \b
    Examples:
      metarl search run search/quickstart.toml
      metarl search run quickstart --set outer.generations=3 --set seed=1
      metarl search run search/quickstart.toml --tracking-uri http://127.0.0.1:5000
      metarl search run search/quickstart.toml --dry-run
    """
    from metarl.outer.sharding import maybe_initialize_distributed
    from metarl.programs.runner import Search, run_search

    path = find_spec(spec_file, "search")
    spec = load_spec(path, list(overrides))
    console = Console(stderr=True)
    _print_plan(console, spec)
    try:  # builds the envs, so env-param mistakes surface here, before any run exists
        search = Search(spec)
    except EnvParamError as err:
        raise SpecError(f"{path}: {err}") from None
    if dry_run:
        return
    maybe_initialize_distributed()
    uri = resolve_tracking_uri(tracking_uri)
    progress = None if quiet else SearchProgress(spec.outer.generations, console=console)
    result = run_search(spec, uri, path.read_text(), progress, search=search)
    _print_result(console, result, uri)


@search.command("resume")
@click.argument("run_id")
@click.option("--tracking-uri", default=None, help=TRACKING_HELP)
@click.option("--quiet", is_flag=True, help="No progress bar.")
def resume_cmd(run_id: str, tracking_uri: str | None, quiet: bool) -> None:
    """Continue the search RUN_ID from its last checkpoint, in the same MLflow run.

    \b
    Example:
      metarl search resume 3f2c9a0e5b1d4c7e9f00aa11bb22cc33
    """
    from metarl.outer.sharding import maybe_initialize_distributed
    from metarl.programs.runner import load_run_spec, resume_search

    maybe_initialize_distributed()
    uri = resolve_tracking_uri(tracking_uri)
    console = Console(stderr=True)
    try:
        spec = load_run_spec(run_id, uri)
    except Exception as err:  # noqa: BLE001 - any lookup failure means the same to the user
        fail(f"cannot resume run {run_id!r} from {uri}: {err}")
    progress = None if quiet else SearchProgress(spec.outer.generations, console=console)
    result = resume_search(run_id, uri, progress)
    _print_result(console, result, uri)


@search.command("list")
def list_cmd() -> None:
    """List the shipped search specs with their descriptions."""
    table = Table("spec", "kind", "description")
    for shown, data in shipped_specs("search"):
        table.add_row(shown, str(data.get("kind", "?")), str(data.get("description", "")))
    Console().print(table)


def _print_plan(console: Console, spec: SearchSpec) -> None:
    outer, inner = spec.outer, spec.inner
    steps = sum((t.timesteps // (inner.num_envs * inner.num_steps)) * inner.num_envs
                * inner.num_steps for t in spec.tasks.train) * inner.seeds
    console.print(
        f"[bold]{spec.name}[/bold] ({spec.kind}, spec {spec_hash(spec)}): "
        f"{outer.algorithm} population {outer.population_size} x {outer.generations} "
        f"generations on {len(spec.tasks.train)} task(s) "
        f"[{', '.join(t.label for t in spec.tasks.train)}], {inner.seeds} seed(s) each; "
        f"{steps * outer.population_size * outer.generations:,} env steps in all")


def _print_result(console: Console, result: SearchResult, uri: str) -> None:
    console.print(f"[bold]{result.status}[/bold]: run {result.run_id}, "
                  f"{result.generations} generation(s), best fitness {result.best_fitness:.4f}")
    for name, payload in (("best", result.best), ("mean", result.mean)):
        values = payload.get("hparams")
        if values:
            shown = ", ".join(f"{k}={v:.4g}" for k, v in values.items())
            console.print(f"  {name}: {shown}")
    console.print(f"  tracking: {uri}  (open with `metarl ui`)")
    if result.status == "KILLED":
        console.print(f"  interrupted; continue with `metarl search resume {result.run_id}`")
        sys.exit(130)
