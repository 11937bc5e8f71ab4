"""The pictures a search logs: axes that agree with MLflow, labels that can be read."""

import itertools
import os
import subprocess
import sys

import jax
import numpy as np
from matplotlib.backends.backend_agg import FigureCanvasAgg

from metarl.learned import MLPObjective
from metarl.programs.curves import fitness_figure
from metarl.programs.drift_plot import drift_figure


def test_learning_curve_counts_generations_from_zero_like_mlflow_steps():
    history = {k: [0.1, 0.2, 0.3] for k in ("best_fitness", "gen_best_fitness",
                                            "mean_fitness", "median_fitness")}
    fig = fitness_figure(history, "t")
    for line in fig.axes[0].lines:
        assert list(line.get_xdata()) == [0, 1, 2]


def test_drift_heatmap_ratio_labels_do_not_overlap():
    rule = MLPObjective(hidden_sizes=(4,), base_clip_eps=0.2)
    fig = drift_figure(rule, rule.init(jax.random.PRNGKey(0)), "t")
    canvas = FigureCanvasAgg(fig)  # the figure is made without pyplot, so without a canvas
    canvas.draw()
    renderer = canvas.get_renderer()
    heatmaps = [ax for ax in fig.axes if ax.get_xlabel() == "ratio r"]
    assert len(heatmaps) == 3  # progress 0, 0.5 and 1
    for ax in heatmaps:
        labels = [t for t in ax.get_xticklabels(minor=False) + ax.get_xticklabels(minor=True)
                  if t.get_visible() and t.get_text()]
        assert [t.get_text() for t in labels] == ["0.5", "0.75", "1", "1.5", "2"]
        boxes = [t.get_window_extent(renderer) for t in labels]
        for a, b in itertools.combinations(boxes, 2):
            assert not a.overlaps(b), (a, b)
        assert np.isclose(ax.get_xlim()[0], 0.5, rtol=0.05)


def test_importing_the_figure_modules_leaves_matplotlib_alone():
    # a library that picks a backend at import overrides the user's (a notebook's inline
    # backend, MPLBACKEND); figures built on matplotlib.figure.Figure need none
    script = ("import sys, matplotlib\n"
              "import metarl.programs.curves, metarl.programs.drift_plot, "
              "metarl.programs.evaluation\n"
              "assert 'matplotlib.pyplot' not in sys.modules, 'pyplot imported'\n"
              "assert matplotlib.get_backend().lower() == 'svg', matplotlib.get_backend()\n")
    out = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True,
                         env={**os.environ, "MPLBACKEND": "svg"}, timeout=300)
    assert out.returncode == 0, out.stderr
