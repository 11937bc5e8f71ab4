"""The rich progress bar of a running search."""

from __future__ import annotations

from typing import Any

from rich.console import Console
from rich.progress import (
    BarColumn,
    MofNCompleteColumn,
    Progress,
    TextColumn,
    TimeElapsedColumn,
    TimeRemainingColumn,
)


class SearchProgress:
    """Generation bar with best fitness, env steps/s and ETA; `update` is called once per
    generation from the host loop."""

    def __init__(self, total: int, start: int = 0, console: Console | None = None):
        self.console = console or Console(stderr=True)
        self.bar = Progress(
            TextColumn("[bold]{task.description}"), BarColumn(), MofNCompleteColumn(),
            TextColumn("best [green]{task.fields[best]}"),
            TextColumn("{task.fields[sps]} steps/s"), TimeElapsedColumn(), TextColumn("eta"),
            TimeRemainingColumn(), console=self.console, transient=False)
        self.task = self.bar.add_task("compiling", total=total, completed=start, best="-",
                                      sps="-")
        self.bar.start()

    def compiling(self) -> None:
        self.bar.update(self.task, description="compiling")

    def update(self, generation: int, stats: dict[str, Any]) -> None:
        self.bar.update(self.task, completed=generation, description="generation",
                        best=_shown(stats.get("best_fitness")),
                        sps=f"{stats['env_steps_per_second']:,.0f}")

    def meta_test(self, generation: int, metrics: dict[str, float]) -> None:
        """One line above the bar: the search mean on the held-out tasks, and its baseline."""
        score = metrics["normalised_return"]
        line = f"meta-test g{generation:04d}: held-out normalised {score:.3f}"
        for key, value in metrics.items():
            if key.startswith("ratio_to_"):
                base = key.removeprefix("ratio_to_")
                line += (f", {base} {metrics[f'{base}/normalised_return']:.3f}"
                         f" (ratio {value:.3f})")
        self.bar.console.print(line)

    def stop(self) -> None:
        self.bar.stop()


def _shown(best: float | None) -> str:
    """The best fitness so far, or "-" while no member has scored (NaN or not logged)."""
    return "-" if best is None or best != best else f"{best:.3f}"
