"""A PBT population's lineage (who copied whom, when) and schedules, read off the population
table a search keeps (one row per interval: every member's score, hyperparameters and the
member whose state it started the interval from, `copied_from`)."""

from __future__ import annotations

import json
from collections.abc import Sequence
from typing import Any

import numpy as np
from matplotlib.figure import Figure

SOURCE_COLUMN = "copied_from"


def copy_events(rows: Sequence[dict[str, Any]]) -> list[dict[str, int]]:
    """Every copy: after interval `after`, `member` took the state and hyperparameters of
    `copied`, and trained interval `after + 1` from there."""
    events = []
    for row in rows:
        sources = row["extra"].get(SOURCE_COLUMN, [])
        for member, src in enumerate(sources):
            if int(src) != member:
                events.append({"after": int(row["generation"]) - 1, "member": member,
                               "copied": int(src)})
    return events


def member_series(rows: Sequence[dict[str, Any]], member: int) -> dict[str, list[float]]:
    """One member's columns over the intervals: `fitness` and every extra column."""
    out: dict[str, list[float]] = {"fitness": [float(r["fitness"][member]) for r in rows]}
    for name in rows[0]["extra"] if rows else ():
        out[name] = [float(r["extra"][name][member]) for r in rows]
    return out


def lineage_json(rows: Sequence[dict[str, Any]], names: Sequence[str]) -> str:
    """The lineage artifact: the copies, and each member's schedule and scores."""
    population = len(rows[0]["fitness"]) if rows else 0
    members = {str(m): {k: v for k, v in member_series(rows, m).items()
                        if k in (*names, "fitness", SOURCE_COLUMN)}
               for m in range(population)}
    return json.dumps({"intervals": len(rows), "copies": copy_events(rows),
                       "members": members}, indent=1)


def lineage_figure(rows: Sequence[dict[str, Any]], names: Sequence[str], title: str) -> Figure:
    """Left: members (rows) over intervals, a line from the copied member to the copier at
    each copy, points coloured by score. Right: each member's schedule, one panel per
    hyperparameter (log axis for values spanning more than a decade)."""
    fig = Figure(figsize=(4 + 3.2 * len(names), 3.8), dpi=110)
    axes = fig.subplots(1, 1 + len(names), squeeze=False)[0]
    scores = np.array([r["fitness"] for r in rows], np.float64)  # (intervals, pop)
    t = np.arange(len(rows))
    ax = axes[0]
    for e in copy_events(rows):
        ax.plot([e["after"], e["after"] + 1], [e["copied"], e["member"]], "-", color="tab:red",
                lw=0.8, alpha=0.7)
    grid_t, grid_m = np.meshgrid(t, np.arange(scores.shape[1]), indexing="ij")
    points = ax.scatter(grid_t.ravel(), grid_m.ravel(), c=scores.ravel(), s=14, cmap="viridis")
    fig.colorbar(points, ax=ax, label="score")
    ax.set(xlabel="interval", ylabel="member", title="lineage (red: copies)")
    for ax, name in zip(axes[1:], names, strict=True):
        values = np.array([r["extra"][name] for r in rows], np.float64)
        ax.plot(t, values, lw=1)
        if values.size and np.nanmin(values) > 0 and np.nanmax(values) > 10 * np.nanmin(values):
            ax.set_yscale("log")
        ax.set(xlabel="interval", title=name)
        ax.grid(alpha=0.3)
    fig.suptitle(title)
    fig.tight_layout()
    return fig
