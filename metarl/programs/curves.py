"""The learning-curve picture of a search (fitness per generation)."""

from __future__ import annotations

from collections.abc import Sequence

from matplotlib.figure import Figure


def fitness_figure(history: dict[str, Sequence[float]], title: str) -> Figure:
    fig = Figure(figsize=(6, 3.6), dpi=110)
    ax = fig.subplots()
    gens = range(len(history["mean_fitness"]))  # 0-based, as MLflow steps and trial names
    for key, style in (("best_fitness", "-"), ("gen_best_fitness", "--"),
                       ("mean_fitness", "-"), ("median_fitness", ":")):
        ax.plot(gens, history[key], style, label=key.replace("_", " "))
    ax.set_xlabel("generation")
    ax.set_ylabel("fitness (normalised return)")
    ax.set_title(title)
    ax.grid(alpha=0.3)
    ax.legend(fontsize=8)
    fig.tight_layout()
    return fig
