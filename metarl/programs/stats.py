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


def _resample(scores: np.ndarray, reps: int, seed: int) -> np.ndarray:
    """`(reps, runs, tasks, ...)` stratified resamples of `(runs, tasks, ...)` scores: runs
    are drawn with replacement within each task (trailing axes move together)."""
    runs, tasks = scores.shape[:2]
    idx = np.random.default_rng(seed).integers(0, runs, size=(reps, runs, tasks))
    idx = idx.reshape(idx.shape + (1,) * (scores.ndim - 2))
    return np.take_along_axis(scores[None], idx, axis=1)


def _as_runs_by_tasks(scores: np.ndarray) -> np.ndarray:
    scores = np.asarray(scores, np.float64)
    return scores[:, None] if scores.ndim == 1 else scores


def _quantiles(stats: np.ndarray, level: float) -> tuple[float, float]:
    alpha = (1.0 - level) / 2
    return float(np.quantile(stats, alpha)), float(np.quantile(stats, 1 - alpha))


def bootstrap_ci(scores: np.ndarray, statistic=iqm, reps: int = 2000, level: float = 0.95,
                 seed: int = 0) -> tuple[float, float]:
    """Percentile CI of `statistic` over `(runs, tasks)` scores, resampling runs within each
    task (stratified bootstrap). With one run per task there is nothing to resample: the
    interval is (nan, nan), never a width-0 interval that looks like certainty."""
    scores = _as_runs_by_tasks(scores)
    if len(scores) < 2:
        return float("nan"), float("nan")
    samples = _resample(scores, reps, seed)
    return _quantiles(np.array([statistic(s) for s in samples]), level)


def ratio_ci(scores: np.ndarray, baseline: np.ndarray, reps: int = 2000, level: float = 0.95,
             seed: int = 0) -> tuple[float, float, float]:
    """`iqm(scores) / iqm(baseline)` with a paired stratified-bootstrap CI.

    Both arrays are `(runs, tasks)` and run `i` of a task used the same seed for both rules
    (common random numbers), so the bootstrap resamples the same runs from both: the CI
    then reflects the noise of the comparison, not that of each rule's IQM separately.
    A ratio needs a positive baseline: where the baseline's IQM is <= 0 (a baseline no
    better than random) all three numbers are nan; with one run per task the CI is.
    """
    a, b = _as_runs_by_tasks(scores), _as_runs_by_tasks(baseline)
    if a.shape != b.shape:
        raise ValueError(f"paired scores need equal shapes, got {a.shape} and {b.shape}")
    if iqm(b) <= 0:
        return (float("nan"),) * 3
    if len(a) < 2:
        return iqm(a) / iqm(b), float("nan"), float("nan")
    both = _resample(np.stack([a, b], -1), reps, seed)  # the same run indices for both rules
    stats = np.array([iqm(s[..., 0]) / max(iqm(s[..., 1]), 1e-12) for s in both])
    return (iqm(a) / iqm(b), *_quantiles(stats, level))
