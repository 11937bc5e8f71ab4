"""Aggregate statistics for comparing algorithms over tasks and seeds.

Interquartile mean with stratified-bootstrap confidence intervals, following Agarwal et al.
2021, "Deep Reinforcement Learning at the Edge of the Statistical Precipice".
"""

from __future__ import annotations

import numpy as np


def iqm(scores: np.ndarray) -> float:
    """Mean of the middle 50% of all scores (runs x tasks, flattened)."""
    flat = np.sort(np.asarray(scores, np.float64).ravel())
    n = len(flat)
    lo, hi = int(np.floor(0.25 * n)), int(np.ceil(0.75 * n))
    return float(flat[lo:hi].mean()) if hi > lo else float(flat.mean())


def bootstrap_ci(scores: np.ndarray, statistic=iqm, reps: int = 2000, level: float = 0.95,
                 seed: int = 0) -> tuple[float, float]:
    """Percentile CI of `statistic` over `(runs, tasks)` scores, resampling runs within each
    task (stratified bootstrap)."""
    scores = np.asarray(scores, np.float64)
    if scores.ndim == 1:
        scores = scores[:, None]
    rng = np.random.default_rng(seed)
    runs, tasks = scores.shape
    idx = rng.integers(0, runs, size=(reps, runs, tasks))
    samples = np.take_along_axis(scores[None].repeat(reps, 0), idx, axis=1)
    stats = np.array([statistic(s) for s in samples])
    alpha = (1.0 - level) / 2
    return float(np.quantile(stats, alpha)), float(np.quantile(stats, 1 - alpha))
