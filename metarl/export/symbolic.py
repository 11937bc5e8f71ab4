"""A closed-form approximation of an exported rule's drift, appended to its module."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import jax.numpy as jnp
import numpy as np

from metarl.learned.base import LearnedObjective


def append_symbolic(path: Path, objective: LearnedObjective, params: Any) -> None:
    """Distil the drift into a formula and add it to the module, outside the checksummed
    weights (the formula is derived from them, not an input)."""
    from metarl.distill import fit_symbolic

    temporal = bool(getattr(objective, "temporal", False))

    def drift(r, a, p=None):  # noqa: ANN001, ANN202
        prog = None if p is None else jnp.full(np.shape(r), p, jnp.float32)
        return np.asarray(objective.drift(params, jnp.asarray(r, jnp.float32),
                                          jnp.asarray(a, jnp.float32), prog), np.float64)

    fit = fit_symbolic(drift, progress=0.5 if temporal else None)
    where = "at progress 0.5, " if temporal else ""
    note = ("\n\n# Closed-form distillation of `drift` by sparse regression\n"
            f"# ({where}r in [0.5, 2], A in [-3, 3]); held-out fit: r2 = {fit.r2:.4f},\n"
            f"# rmse = {fit.rmse:.4g}. See drift_symbolic's docstring for the formula.\n\n\n")
    with path.open("a", encoding="utf-8") as fh:
        fh.write(note + fit.python_source("drift_symbolic").rstrip() + "\n")
