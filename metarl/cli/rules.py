"""`metarl evaluate` and `metarl export`: what a search discovered, compared and taken away."""

from __future__ import annotations

import contextlib
import logging
import math
from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING

import click

from metarl.cli.errors import fail
from metarl.cli.paths import find_spec

if TYPE_CHECKING:
    from metarl.tracking import SearchTracker

TRACKING_HELP = "MLflow tracking URI (default: $MLFLOW_TRACKING_URI, else sqlite:///mlflow.db)."


def _store(tracking_uri: str | None) -> str:
    from metarl.tracking import check_tracking_uri, resolve_tracking_uri

    uri = resolve_tracking_uri(tracking_uri)
    check_tracking_uri(uri)
    return uri


def _candidates(run_id: str, uri: str, generation: int | None):  # noqa: ANN202
    from metarl.programs.candidates import load_candidates
    from metarl.tracking import resolve_run_id

    run_id = resolve_run_id(uri, run_id)
    try:
        return load_candidates(run_id, uri, generation)
    except FileNotFoundError as err:
        fail(f"run {run_id!r} has no stored spec in {uri}: {err}")


@click.command()
@click.argument("run_id")
@click.option("--tasks", "tasks_file", default=None, metavar="SUITE",
              help="Task suite (tasks/*.toml); all its tasks are evaluated. Default: the "
              "search's own held-out tasks, else its training tasks.")
@click.option("--seeds", default=10, show_default=True, type=click.IntRange(min=1),
              help="Training runs per candidate and task (2 or more for confidence intervals).")
@click.option("--which", type=click.Choice(["mean", "best"]), default="mean",
              show_default=True, help="The search mean, or the best candidate evaluated.")
@click.option("--generation", type=click.IntRange(min=0), default=None,
              help="Use the checkpoint after this many generations (default: the last).")
@click.option("--baselines", default=None, metavar="NAMES",
              help="Comma-separated baselines to compare with, '' for none (default: every "
              "one the search's kind offers: ppo_clip,dpo for learned rules, inner for "
              "hyperparameters, adam,adamw,sgd_momentum,symbolic for optimizers).")
@click.option("--final-fraction", type=click.FloatRange(0, 1, min_open=True), default=None,
              help="Score a run by its mean return over this last fraction of updates "
              "(default: the search's outer.final_fraction).")
@click.option("--tracking-uri", default=None, help=TRACKING_HELP)
def evaluate(run_id: str, tasks_file: str | None, seeds: int, which: str,
             generation: int | None, baselines: str | None, final_fraction: float | None,
             tracking_uri: str | None) -> None:
    """Train agents with what RUN_ID discovered and with its kind's baselines (PPO-clip and
    DPO for a learned rule, the [inner] hyperparameters for an hparams search) on a task suite,
    same budget and seeds; report per-task means, IQM and bootstrap 95% CIs.

    \b
    Example:
      metarl evaluate 3f2c9a0e --tasks tasks/held_out.toml --seeds 10
    """
    from metarl.programs.evaluation import reference_results
    from metarl.programs.stats import ratio_ci
    from metarl.spec import load_task_suite

    asked = None if baselines is None else _known_baselines(baselines)
    suite_path = find_spec(tasks_file, "tasks") if tasks_file else None
    suite = load_task_suite(suite_path) if suite_path else None
    uri = _store(tracking_uri)
    cands = _candidates(run_id, uri, generation)
    run_id = cands.run_id
    spec, program = cands.search.spec, cands.search.program
    names = _baselines_of(program, asked)
    if suite is not None:
        tasks = [*suite.train, *suite.held_out]
        batch = spec.inner.steps_per_update
        for where, task in suite.shorter_than(batch)[:1]:
            fail(f"{suite_path}: {where} {task.label!r} has timesteps = {task.timesteps}, less "
                 f"than one update of the run's inner loop ({spec.inner.update_size_name} = "
                 f"{batch})", 2)
    else:
        tasks = list(spec.tasks.held_out or spec.tasks.train)
    fraction = spec.outer.final_fraction if final_fraction is None else final_fraction
    candidate = cands.mean if which == "mean" else cands.best
    results = program.compare(candidate, tasks, seeds, names, fraction, seed=spec.seed + 1)
    # classic algorithms of the tasks themselves (e.g. Thompson sampling beside RL²)
    results.update(reference_results(spec.inner, tasks, seeds, seed=spec.seed + 2))
    first = next(iter(results))
    results = {f"{first} ({which})" if k == first else k: v for k, v in results.items()}
    learned, *others = results.values()
    # paired: every run trained on the same seeds
    ratios = {name: ratio_ci(learned.scores(), res.scores())
              for name, res in zip(list(results)[1:], others, strict=True)}
    extra = program.comparison_metrics(results)
    _print_table(results, ratios, cands.generation, extra)
    with _kept_if_logging_fails("the table above"):
        _log_evaluation(uri, run_id, results, ratios, which, cands.generation, tasks_file, seeds,
                        fraction, extra)


def _known_baselines(baselines: str) -> list[str]:
    """The names asked for, each offered by some kind (checked before anything is read)."""
    from metarl.programs.kind import kind_class, kind_names

    offered = sorted({b for k in kind_names() for b in kind_class(k).baselines})
    names = list(dict.fromkeys(b.strip() for b in baselines.split(",") if b.strip()))
    unknown = [n for n in names if n not in offered]
    if unknown:
        fail(f"--baselines: unknown baseline(s) {', '.join(map(repr, unknown))}; allowed: "
             f"{', '.join(offered)} (comma-separated, or '' for none)")
    return names


def _baselines_of(program, asked: list[str] | None) -> list[str]:  # noqa: ANN001
    """The baselines to train: those asked for, which the run's kind must offer."""
    if asked is None:
        return list(program.baselines)
    foreign = [n for n in asked if n not in program.baselines]
    if foreign:
        fail(f"--baselines: a {program.name!r} search compares with "
             f"{', '.join(program.baselines) or 'nothing'}, not {', '.join(foreign)}")
    return asked


def _interval(lo: float, hi: float, digits: int) -> str:
    import math

    if math.isnan(lo) or math.isnan(hi):
        return "[no CI]"
    return f"[{lo:.{digits}f}, {hi:.{digits}f}]"


def _print_table(results: dict, ratios: dict, generation: int,  # noqa: ANN001
                 extra: dict[str, float]) -> None:
    from rich.console import Console
    from rich.table import Table

    from metarl.programs.stats import bootstrap_ci

    # the CI goes under the mean so that a row of three rules fits an 80-column terminal
    table = Table("task", *results, title=f"final return, mean and [95% CI] (generation "
                  f"{generation})")
    first = next(iter(results.values()))
    for task in first.final:
        cells = []
        for res in results.values():
            f = res.final[task]
            lo, hi = bootstrap_ci(f, statistic=lambda s: float(s.mean()))
            cells.append(f"{f.mean():.1f}\n{_interval(lo, hi, 1)}")
        table.add_row(task, *cells)
    cells = []
    for res in results.values():
        m, lo, hi = res.iqm()
        cells.append(f"{m:.3f}\n{_interval(lo, hi, 3)}")
    table.add_row("[bold]IQM normalised", *cells)
    out = Console()
    out.print(table)
    for name, (m, lo, hi) in ratios.items():
        out.print(f"learned / {name} IQM: {m:.3f} {_interval(lo, hi, 3)} "
                  "(paired bootstrap 95% CI)")
    for name, res in results.items():
        for task, value in res.settings.items():
            out.print(f"{name} on {task}: tuned learning rate {value:.3g}")
    for key, value in extra.items():
        out.print(f"{key}: {value:.3f}")
    if len(first.scores()) < 2:
        out.print("no confidence intervals: a bootstrap over one seed per task has nothing "
                  "to resample; run with --seeds 2 or more")


def _log_evaluation(uri: str, run_id: str, results: dict, ratios: dict, which: str,  # noqa: ANN001
                    generation: int, tasks_file: str | None, seeds: int,
                    final_fraction: float, extra: dict[str, float] | None = None) -> None:
    """A child run of the search, `evaluate-{which}-g{generation}`, tagged as an evaluation."""
    from metarl.programs.evaluation import curves_figure, regret_figure
    from metarl.tracking import SearchTracker

    params = {"which": which, "generation": generation, "seeds": seeds,
              "tasks": tasks_file or "(search's own)", "final_fraction": final_fraction}
    metrics: dict[str, float] = {}
    for name, res in results.items():
        key = name.split(" ")[0]
        m, lo, hi = res.iqm()
        metrics.update({f"{key}/iqm": m, f"{key}/iqm_ci_low": lo, f"{key}/iqm_ci_high": hi})
        for task, f in res.final.items():
            metrics[f"{key}/return/{task}"] = float(f.mean())
        for task, value in res.settings.items():
            metrics[f"{key}/tuned_lr/{task}"] = value
    metrics.update(extra or {})
    for name, (m, lo, hi) in ratios.items():
        for suffix, v in (("", m), ("_ci_low", lo), ("_ci_high", hi)):
            metrics[f"ratio_to_{name}{suffix}"] = v
    fig = curves_figure(results, f"run {run_id[:8]}: {which} rule vs baselines")
    regret = regret_figure(results, f"run {run_id[:8]}: regret against the oracle")
    with _reported_by_the_cli():
        search = SearchTracker.open(run_id, uri)
        try:
            child = search.start_child(f"evaluate-{which}-g{generation}", params,
                                       tags={"metarl.trial": "evaluation"})
        finally:
            search.close()
        with child:  # FINISHED, or FAILED if logging raises
            child.log_metrics(_finite(metrics), step=0)
            child.log_figure(fig, "learning_curves.png")
            if regret is not None:
                child.log_figure(regret, "regret_curves.png")
    _check_sent(child)
    click.echo(f"logged as run {child.run_id} under search {run_id}", err=True)


@contextlib.contextmanager
def _kept_if_logging_fails(what: str) -> Iterator[None]:
    """Results are computed and shown before they are logged: a store that fails now costs
    the MLflow record, never the results (one line, exit 1)."""
    try:
        yield
    except Exception as err:  # noqa: BLE001 - any store failure means the same here
        first = str(err).strip().splitlines()[0] if str(err).strip() else type(err).__name__
        fail(f"{what} is complete, but logging it to MLflow failed: {first}", 1)


def _finite(metrics: dict[str, float]) -> dict[str, float]:
    """`metrics` without NaN (a CI that could not be computed): MLflow would chart a gap."""
    return {k: v for k, v in metrics.items() if not math.isnan(v)}


@contextlib.contextmanager
def _reported_by_the_cli() -> Iterator[None]:
    """Quiets the tracker's outage warnings, written for a long search ("the search goes
    on ... sent when the store answers again"): here the command is about to end, and
    `_check_sent` says in one line what was kept and how to send it."""
    tracking_log = logging.getLogger("metarl.tracking")
    level = tracking_log.level
    tracking_log.setLevel(logging.ERROR)
    try:
        yield
    finally:
        tracking_log.setLevel(level)


def _check_sent(tracker: SearchTracker) -> None:
    """Raise (for `_kept_if_logging_fails`) when writes of `tracker` did not reach MLflow."""
    if tracker.failed_writes:
        raise RuntimeError(
            f"{tracker.failed_writes} writes could not be sent to {tracker.tracking_uri}; they "
            f"are kept in {tracker.spill_path}: send them with "
            f"metarl.tracking.replay_unsent({str(tracker.spill_path)!r})")


@click.command("export")
@click.argument("run_id")
@click.option("-o", "--output", default=None, help="Module file to write (default: "
              "<spec name>_rule.py for a learned rule).")
@click.option("--which", type=click.Choice(["mean", "best"]), default="mean",
              show_default=True)
@click.option("--generation", type=click.IntRange(min=0), default=None,
              help="Use the checkpoint after this many generations (default: the last).")
@click.option("--symbolic/--no-symbolic", default=True, show_default=True,
              help="Also fit and write a closed-form approximation (`drift_symbolic` for a rule, "
              "`symbolic_optimizer` for an optimizer).")
@click.option("--tracking-uri", default=None, help=TRACKING_HELP)
def export(run_id: str, output: str | None, which: str, generation: int | None,
           symbolic: bool, tracking_uri: str | None) -> None:
    """Write what RUN_ID discovered as a standalone Python module: an update rule (jax.numpy
    only) or an optimizer (jax, optax and numpy).

    \b
    Examples:
      metarl export 3f2c9a0e --output my_rule.py
      python -c "import my_rule; print(my_rule.drift(1.2, 0.5))"
      metarl export 7be01d44 --output my_opt.py
      python -c "import my_opt; tx = my_opt.optimizer(learning_rate=1e-3)"
    """
    uri = _store(tracking_uri)
    cands = _candidates(run_id, uri, generation)
    run_id = cands.run_id
    program = cands.search.program
    params = cands.mean if which == "mean" else cands.best
    path = Path(output or program.default_module_name())
    provenance = {"run_id": run_id, "search": cands.search.spec.name, "which": which,
                  "generation": cands.generation, "best_fitness": cands.best_fitness,
                  "tracking_uri": uri}
    program.export_module(params, path, provenance, symbolic)
    click.echo(f"wrote {path}")
    with _kept_if_logging_fails(str(path)):
        _log_export(uri, run_id, path)


def _log_export(uri: str, run_id: str, path: Path) -> None:
    """The module, as written, under the search run's `exports/`; its status is left as is."""
    from metarl.tracking import SearchTracker

    with _reported_by_the_cli():
        search = SearchTracker.open(run_id, uri)
        try:
            search.log_artifact(str(path), "exports")  # copied now: the user may edit the file
        finally:
            search.close()
    _check_sent(search)
