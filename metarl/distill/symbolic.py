"""Symbolic distillation of a learned drift function into a short closed-form expression.

A learned update rule in the LPO family (Lu et al. 2022, "Discovered Policy Optimisation") is a
*drift* ``drift(r, A)`` of the probability ratio ``r = pi_new / pi_old`` and the advantage ``A``
with ``drift >= 0`` and ``drift(1, A) = 0``. A neural drift is hard to read and to reuse, so
:func:`fit_symbolic` approximates it by a sparse linear combination of hand-picked candidate
terms, each of which vanishes at ``r = 1`` -- any combination then respects ``drift(1, A) = 0``
by construction rather than approximately.

The sparse regression is sequentially thresholded least squares (STLSQ), the sparse solver of
SINDy (Brunton, Proctor & Kutz 2016, "Discovering governing equations from data by sparse
identification of nonlinear dynamical systems", PNAS 113(15)): solve least squares, zero every
coefficient below a threshold, refit on the survivors, repeat until the support stops changing.
The threshold is swept over a grid. Because the library is strongly correlated ((r-1) and log r
agree to 4% on [0.5, 2]), STLSQ's dense starting fit can spread weight over cancelling pairs, so
the supports of forward orthogonal least squares (Chen, Billings & Luo 1989, "Orthogonal least
squares methods and their application to non-linear system identification", Int. J. Control
50(5)) join the candidates. The sparsest candidate whose validation error is within a tolerance
of the best is kept. Only ``numpy.linalg`` and a seeded ``numpy`` generator are involved, so the
fit is deterministic for a given seed (on a given machine and BLAS).

The solver (:func:`sparse_regression`) knows nothing of drifts: `metarl.distill.optimizer`
distils learned optimizers with it too.
"""

from __future__ import annotations

import contextlib
import functools
import math
import textwrap
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from types import CodeType
from typing import Any, TypeVar

import jax
import jax.numpy as jnp
import numpy as np

try:  # optional; installed alongside scikit-learn
    from threadpoolctl import threadpool_limits
except ImportError:  # pragma: no cover
    threadpool_limits = None

__all__ = ["CANDIDATE_TERMS", "FitMetrics", "SparseSolution", "SymbolicFit", "fit_metrics",
           "fit_symbolic", "one_blas_thread", "sparse_regression"]

T = TypeVar("T")

# Each candidate is (readable name, jax.numpy source). The source is the single definition of
# the term: it is compiled once and evaluated with `jnp` bound to numpy or jax.numpy, and it is
# pasted verbatim into `python_source`, so the generated code and `__call__` cannot drift apart.
# Every term is zero at r = 1. The order is a priority: when terms in a support are linearly
# dependent (relu(x) - relu(-x) = x), the one listed first wins ties.
_CANDIDATES: tuple[tuple[str, str], ...] = (
    ("(r-1)", "(r - 1.0)"),
    ("(r-1)**2", "(r - 1.0) ** 2"),
    ("(r-1)**3", "(r - 1.0) ** 3"),
    ("log(r)", "jnp.log(r)"),
    ("log(r)**2", "jnp.log(r) ** 2"),
    ("(r-1)*A", "(r - 1.0) * A"),
    ("(r-1)**2*A", "(r - 1.0) ** 2 * A"),
    ("log(r)*A", "jnp.log(r) * A"),
    ("log(r)**2*A", "jnp.log(r) ** 2 * A"),
    ("(r-1)**2*A**2", "(r - 1.0) ** 2 * A**2"),
    ("|A|*(r-1)**2", "jnp.abs(A) * (r - 1.0) ** 2"),
    ("|A|*(r-1)", "jnp.abs(A) * (r - 1.0)"),
    ("relu((r-1)*A)", "jnp.maximum((r - 1.0) * A, 0.0)"),
    ("relu(-(r-1)*A)", "jnp.maximum(-(r - 1.0) * A, 0.0)"),
    ("relu(log(r)*A)", "jnp.maximum(jnp.log(r) * A, 0.0)"),
    ("relu(-log(r)*A)", "jnp.maximum(-jnp.log(r) * A, 0.0)"),
    ("|r-1|*relu((r-1)*A)", "jnp.abs(r - 1.0) * jnp.maximum((r - 1.0) * A, 0.0)"),
    ("|r-1|*relu(-(r-1)*A)", "jnp.abs(r - 1.0) * jnp.maximum(-(r - 1.0) * A, 0.0)"),
)

#: Names of the candidate terms, in priority order; pass a subset as ``library=``.
CANDIDATE_TERMS: tuple[str, ...] = tuple(name for name, _ in _CANDIDATES)
_SOURCE: dict[str, str] = dict(_CANDIDATES)
_CODE: dict[str, CodeType] = {
    name: compile(src, f"<term {name}>", "eval") for name, src in _CANDIDATES
}

# Columns whose residual after projection on the others is below this (relative to their own
# norm) are exact identities such as relu(x) - relu(-x) = x, not near-collinearity worth keeping.
_DEPENDENCE_TOL = 1e-8
# Held-out MSE differences below this fraction of E[y^2] are float32 rounding in the drift
# network, not signal; without a floor an exact fit would keep terms that "explain" rounding.
_MSE_FLOOR = 1e-12


def _eval_term(name: str, r: Any, a: Any, xp: Any) -> Any:
    # Only the module's own constant sources are ever compiled, never caller-supplied text.
    return eval(_CODE[name], {"__builtins__": {}}, {"jnp": xp, "r": r, "A": a})


@dataclass(frozen=True)
class FitMetrics:
    """Error of an expression on the held-out sample."""

    r2: float
    rmse: float
    max_abs_error: float


@dataclass(frozen=True)
class SymbolicFit:
    """A sparse closed-form drift ``sum_i coefficients[i] * terms[i]``, optionally relu'd.

    ``r2``, ``rmse`` and ``max_abs_error`` describe the expression as :meth:`__call__` evaluates
    it (relu-wrapped when ``nonnegative``), on a held-out sample drawn like the training one.
    ``linear`` and ``relu`` hold the same metrics for the raw linear combination and for its
    relu; since the target drift is >= 0, the relu is never worse pointwise.
    """

    terms: list[str]
    coefficients: list[float]
    r2: float
    rmse: float
    max_abs_error: float
    nonnegative: bool = True
    linear: FitMetrics | None = None
    relu: FitMetrics | None = None
    found_by: str = ""  # which search path first produced the chosen support
    progress: float | None = None  # the fixed progress a temporal drift was distilled at
    n_train: int = 0
    n_test: int = 0
    method: str = "STLSQ (Brunton et al. 2016) + forward OLS (Chen et al. 1989)"

    def __post_init__(self) -> None:
        unknown = [t for t in self.terms if t not in _SOURCE]
        if unknown:
            raise ValueError(f"unknown terms {unknown}; known: {list(CANDIDATE_TERMS)}")
        if len(self.terms) != len(self.coefficients):
            raise ValueError("terms and coefficients differ in length")

    def __hash__(self) -> int:
        # Lets jax.jit take a fit as its function; consistent with the generated __eq__.
        return hash((tuple(self.terms), tuple(self.coefficients), self.nonnegative))

    def expression(self, precision: int = 4) -> str:
        """A readable formula, e.g. ``relu(0.5*(r-1)**2 + 2*relu((r-1)*A))``."""
        parts: list[str] = []
        for name, c in zip(self.terms, self.coefficients, strict=True):
            mag = f"{abs(c):.{precision}g}"
            if not parts:
                parts.append(f"{'-' if c < 0 else ''}{mag}*{name}")
            else:
                parts.append(f"{'-' if c < 0 else '+'} {mag}*{name}")
        body = " ".join(parts) if parts else "0"
        return f"relu({body})" if self.nonnegative and parts else body

    def python_source(self, func_name: str = "drift_symbolic") -> str:
        """A function definition to paste into a module that has ``import jax.numpy as jnp``.

        Coefficients are written with ``repr`` (all digits), and the terms are summed in the same
        order as :meth:`__call__` sums them, so both give the same floats on the same inputs.
        """
        if not func_name.isidentifier():
            raise ValueError(f"not a Python identifier: {func_name!r}")
        doc = (f"Closed-form drift distilled by {self.method}; held-out r2={self.r2:.6g}, "
               f"rmse={self.rmse:.3g}.")
        if self.progress is not None:
            doc += f" Distilled at progress={self.progress:g}."
        lines = [
            f"def {func_name}(ratio, advantage):",
            '    """' + "\n    ".join(textwrap.wrap(doc, 88)),
            "",
            *textwrap.wrap(self.expression(), 88, initial_indent="    ",
                           subsequent_indent="        ", break_long_words=False,
                           break_on_hyphens=False),
            '    """',
            "    r = jnp.asarray(ratio)",
            "    A = jnp.asarray(advantage)",
        ]
        if not self.terms:
            lines.append("    out = jnp.zeros(jnp.broadcast_shapes(r.shape, A.shape))")
        for i, (name, c) in enumerate(zip(self.terms, self.coefficients, strict=True)):
            mag = repr(abs(float(c)))
            if i == 0:
                lines.append(f"    out = {'-' if c < 0 else ''}{mag} * {_SOURCE[name]}")
            else:
                lines.append(f"    out = out {'-' if c < 0 else '+'} {mag} * {_SOURCE[name]}")
        lines.append("    return jnp.maximum(out, 0.0)" if self.nonnegative else "    return out")
        return "\n".join(lines) + "\n"

    def __call__(self, ratio: Any, advantage: Any) -> Any:
        """Evaluate elementwise; jax inputs (tracers included) give jax output, else numpy."""
        if isinstance(ratio, jax.Array) or isinstance(advantage, jax.Array):
            xp: Any = jnp
            r, a = jnp.asarray(ratio), jnp.asarray(advantage)
        else:
            xp = np
            r, a = np.asarray(ratio, dtype=np.float64), np.asarray(advantage, dtype=np.float64)
        out = _linear(self.terms, self.coefficients, r, a, xp)
        return xp.maximum(out, 0.0) if self.nonnegative else out


def _linear(terms: Sequence[str], coefs: Sequence[float], r: Any, a: Any, xp: Any) -> Any:
    # Mirrors python_source line by line: subtracting |c| * t equals adding (-|c|) * t in IEEE
    # arithmetic, so the two agree to the last bit on the same backend.
    if not terms:
        return xp.zeros(np.broadcast_shapes(np.shape(r), np.shape(a)))
    out = None
    for name, c in zip(terms, coefs, strict=True):
        mag, t = abs(float(c)), _eval_term(name, r, a, xp)
        if out is None:
            out = -mag * t if c < 0 else mag * t
        else:
            out = out - mag * t if c < 0 else out + mag * t
    return out


def _sample(rng: np.random.Generator, n: int, ratio_range: tuple[float, float],
            adv_range: tuple[float, float], band: float, band_fraction: float,
            ) -> tuple[np.ndarray, np.ndarray]:
    lo, hi = ratio_range
    b_lo, b_hi = max(lo, 1.0 - band), min(hi, 1.0 + band)
    # Trained policies keep the ratio near 1, so that is where the distilled rule must be most
    # faithful; the band is skipped if the range does not straddle 1.
    n_band = int(round(n * band_fraction)) if b_hi > b_lo else 0
    r = rng.uniform(lo, hi, n - n_band)
    if n_band:
        r = np.concatenate([r, rng.uniform(b_lo, b_hi, n_band)])
    a = rng.uniform(adv_range[0], adv_range[1], n)
    return r, a


def _evaluate(drift_fn: Callable[..., Any], r: np.ndarray, a: np.ndarray,
              progress: float | None) -> np.ndarray:
    out = drift_fn(r, a) if progress is None else drift_fn(r, a, progress)
    y = np.asarray(out, dtype=np.float64)
    if y.shape != r.shape:
        raise ValueError(f"drift_fn returned shape {y.shape} for inputs of shape {r.shape}; it "
                         "must be elementwise")
    if not np.all(np.isfinite(y)):
        raise ValueError("drift_fn returned non-finite values on the sampled range")
    return y


def _compress(x: np.ndarray, y: np.ndarray) -> np.ndarray:
    """The triangular factor ``R`` of ``[x | y] = Q R``.

    For any coefficients ``xi``, ``|x @ xi - y| = |R[:, :-1] @ xi - R[:, -1]|``, so every
    least-squares solve and error in the support search runs on a (p+1)-row matrix instead of
    the n-row sample: one QR, then only tiny solves that need no BLAS threads.
    """
    return np.linalg.qr(np.column_stack([x, y]), mode="r")


def _solve(rm: np.ndarray, support: Sequence[int]) -> np.ndarray:
    xi = np.zeros(rm.shape[1] - 1)
    if support:
        xi[list(support)] = np.linalg.lstsq(rm[:, list(support)], rm[:, -1], rcond=None)[0]
    return xi


def _sse(rm: np.ndarray, xi: np.ndarray) -> float:
    v = rm[:, :-1] @ xi - rm[:, -1]
    return float(v @ v)


def _independent(rm: np.ndarray, cols: Sequence[int], given: Sequence[int] = ()) -> list[int]:
    """The columns of ``cols`` (in the given order) outside the span of ``given`` and of the
    earlier ones; ``R`` preserves inner products, so this is the same test as on the sample."""
    basis: list[np.ndarray] = []
    kept: list[int] = []
    for j in [*given, *cols]:
        v = rm[:, j].copy()
        norm = np.linalg.norm(v)
        for _ in range(2):  # twice: one pass of classical Gram-Schmidt loses orthogonality
            for q in basis:
                v -= (q @ v) * q
        res = np.linalg.norm(v)
        if norm > 0 and res > _DEPENDENCE_TOL * norm:
            basis.append(v / res)
            if j in cols:
                kept.append(j)
    return kept


def _stlsq(rm: np.ndarray, threshold: float, max_terms: int) -> tuple[int, ...]:
    """STLSQ (Brunton et al. 2016) on unit-RMS columns, capped at ``max_terms`` terms.

    Each pass refits on the support and drops coefficients below ``threshold``; the support only
    shrinks, so at most ``p`` passes run. Linearly dependent survivors are pruned (largest
    coefficient kept) since least squares cannot tell them apart. If more than ``max_terms``
    survive, the smallest is removed one at a time with a refit in between (backward
    elimination): with correlated terms a one-shot top-k of a dense fit keeps cancelling pairs.
    """
    support = list(range(rm.shape[1] - 1))
    xi = _solve(rm, support)
    while True:
        big = sorted((j for j in support if abs(xi[j]) >= threshold), key=lambda j: -abs(xi[j]))
        new = sorted(_independent(rm, big))
        if new == support:
            break
        support = new
        xi = _solve(rm, support)
    while len(support) > max_terms:
        support.remove(min(support, key=lambda j: abs(xi[j])))
        xi = _solve(rm, support)
    return tuple(support)


def _forward(rm: np.ndarray, max_terms: int) -> list[tuple[int, ...]]:
    """Forward orthogonal least squares (Chen, Billings & Luo 1989): grow the support by the
    term that most reduces the residual, refitting all coefficients at every step."""
    support: list[int] = []
    path: list[tuple[int, ...]] = []
    floor = _MSE_FLOOR * float(rm[:, -1] @ rm[:, -1])
    for _ in range(max_terms):
        rest = _independent(rm, [j for j in range(rm.shape[1] - 1) if j not in support], support)
        if not rest or _sse(rm, _solve(rm, support)) <= floor:
            break
        # min() keeps the first of equal errors: library order breaks ties deterministically.
        support.append(min(rest, key=lambda j: _sse(rm, _solve(rm, [*support, j]))))
        path.append(tuple(sorted(support)))
    return path


def fit_metrics(pred: np.ndarray, y: np.ndarray) -> FitMetrics:
    """R2, RMSE and largest error of predictions ``pred`` of ``y``."""
    err = pred - y
    sse = float(err @ err)
    sst = float(((y - y.mean()) ** 2).sum())
    if sst > 0:
        r2 = 1.0 - sse / sst
    else:  # constant target: r2 is undefined; call an exact fit perfect
        r2 = 1.0 if sse <= _MSE_FLOOR * max(float(y @ y), 1.0) else 0.0
    return FitMetrics(r2=r2, rmse=math.sqrt(sse / y.size), max_abs_error=float(np.abs(err).max()))


@dataclass(frozen=True)
class SparseSolution:
    """A support chosen by :func:`sparse_regression` and its least-squares coefficients."""

    support: tuple[int, ...]  # ascending column indices of the library matrix
    coefficients: np.ndarray  # one per support column, in the columns' own units
    found_by: str  # which search path first produced the support


def sparse_regression(theta: np.ndarray, y: np.ndarray, rng: np.random.Generator, *,
                      max_terms: int, tolerance: float, n_thresholds: int) -> SparseSolution:
    """Sparse ``y ~ theta @ xi``: STLSQ (Brunton et al. 2016) swept over ``n_thresholds``
    thresholds plus the forward-OLS path (Chen et al. 1989) propose supports of at most
    ``max_terms`` columns; each is fitted on 80% of the rows (split by ``rng``) and scored on
    the rest, and the sparsest within ``tolerance`` of the validation variance of the best is
    refitted on all rows. Columns that are zero on every row are never chosen; columns are
    scaled to unit RMS for the search, so thresholds do not depend on the terms' units. The
    order of the columns is the tie-break priority.
    """
    n = theta.shape[0]
    scale = np.sqrt((theta**2).mean(axis=0))
    # A term that is identically zero on the sample carries no information.
    usable = [j for j in range(theta.shape[1]) if scale[j] > 0]
    theta, scale = theta[:, usable], scale[usable]
    theta_n = theta / scale
    y_scale = math.sqrt(float((y**2).mean())) or 1.0
    y_n = y / y_scale

    perm = rng.permutation(n)
    n_fit = int(0.8 * n)
    fit_idx, val_idx = perm[:n_fit], perm[n_fit:]
    rm_fit, rm_val = _compress(theta_n[fit_idx], y_n[fit_idx]), _compress(
        theta_n[val_idx], y_n[val_idx])
    y_val = y_n[val_idx]
    val_var = float(((y_val - y_val.mean()) ** 2).sum()) or float(y_val @ y_val) or 1.0

    found: dict[tuple[int, ...], str] = {(): "empty"}
    if float(y_n @ y_n) > 0:
        dense = _solve(rm_fit, list(range(len(usable))))
        top = max(float(np.abs(dense).max(initial=0.0)), 1.0) * 1.01
        for lam in np.concatenate([[0.0], np.geomspace(1e-6, top, n_thresholds)]):
            found.setdefault(_stlsq(rm_fit, float(lam), max_terms), f"STLSQ threshold {lam:.3g}")
        for k, support in enumerate(_forward(rm_fit, max_terms), start=1):
            found.setdefault(support, f"forward step {k}")
    val_err = {s: _sse(rm_val, _solve(rm_fit, s)) for s in found}
    best = min(val_err.values())
    slack = tolerance * val_var + _MSE_FLOOR * float(y_val @ y_val)
    chosen = min((s for s in found if val_err[s] <= best + slack),
                 key=lambda s: (len(s), val_err[s], s))

    xi = _solve(_compress(theta_n, y_n), chosen) * y_scale / scale
    return SparseSolution(support=tuple(usable[j] for j in chosen),
                          coefficients=np.array([xi[j] for j in chosen]),
                          found_by=found[chosen])


def one_blas_thread(fn: Callable[..., T]) -> Callable[..., T]:
    # The linear algebra here is one tall 19-column QR and many tiny solves. OpenBLAS threads on
    # such sizes mostly spin against each other: on a shared 2-core machine the fit runs 3x
    # faster on one thread, and it leaves the other core to whoever shares the machine.
    @functools.wraps(fn)
    def wrapper(*args: Any, **kwargs: Any) -> T:
        limit = (threadpool_limits(1, user_api="blas") if threadpool_limits is not None
                 else contextlib.nullcontext())
        with limit:
            return fn(*args, **kwargs)

    return wrapper


@one_blas_thread
def fit_symbolic(
    drift_fn: Callable[..., Any],
    *,
    ratio_range: tuple[float, float] = (0.5, 2.0),
    adv_range: tuple[float, float] = (-3.0, 3.0),
    n_samples: int = 20000,
    max_terms: int = 6,
    seed: int = 0,
    progress: float | None = None,
    library: Sequence[str] | None = None,
    nonnegative: bool = True,
    tolerance: float = 0.002,
    band: float = 0.2,
    band_fraction: float = 1.0 / 3.0,
    n_thresholds: int = 60,
) -> SymbolicFit:
    """Distil ``drift_fn(ratio, advantage)`` into a sparse closed form.

    Sampling: points are drawn uniformly on ``ratio_range x adv_range``, except that
    ``band_fraction`` of them are drawn with ``|r - 1| <= band``, where trained policies live.
    ``drift_fn`` is called on 1-D float64 numpy arrays of ratios and advantages (jax functions
    accept these) and must return one value per point. For a temporal rule pass ``progress``:
    ``drift_fn`` is then called as ``drift_fn(r, A, progress)`` with ``progress`` a Python
    float, and the fit describes the rule frozen at that point of training.

    Sparse regression: candidate supports come from two deterministic paths over the
    unit-RMS library -- sequentially thresholded least squares (STLSQ; Brunton, Proctor &
    Kutz 2016, PNAS 113(15), the SINDy solver) swept over ``n_thresholds`` thresholds, and
    forward orthogonal least squares (Chen, Billings & Luo 1989, Int. J. Control 50(5)), which
    STLSQ needs beside it because on a strongly correlated library its dense starting fit
    spreads weight over cancelling pairs. Every support is fitted on 80% of the training points
    and scored on the other 20%; the chosen one is the sparsest whose validation error exceeds
    the best candidate's by at most ``tolerance`` of the validation variance (an r2 drop; ties
    go to lower error, then library order), refitted by least squares on all training points.
    Errors are reported on a separate held-out sample of ``max(n_samples // 4, 1000)`` points.

    Args:
        drift_fn: elementwise drift ``(r, A) -> value`` (or ``(r, A, progress) -> value``).
        ratio_range: ``(lo, hi)`` with ``0 < lo < hi``.
        adv_range: ``(lo, hi)`` advantage range.
        n_samples: training points.
        max_terms: most terms in the expression.
        seed: seeds all sampling; the same seed gives the same fit.
        progress: fixed training progress for temporal drifts, or None.
        library: candidate term names (a subset of :data:`CANDIDATE_TERMS`); default all.
        nonnegative: wrap the linear combination in relu (a drift is >= 0).
        tolerance: validation r2 given up, at most, for a sparser expression.
        band: half-width of the dense band around ``r = 1``.
        band_fraction: fraction of points drawn in that band.
        n_thresholds: number of STLSQ thresholds tried.
    """
    lo, hi = (float(v) for v in ratio_range)
    if not 0.0 < lo < hi:
        raise ValueError(f"ratio_range must satisfy 0 < lo < hi, got {ratio_range}")
    if not adv_range[0] < adv_range[1]:
        raise ValueError(f"adv_range must satisfy lo < hi, got {adv_range}")
    if max_terms < 0 or n_samples < 10 or tolerance < 0:
        raise ValueError("need max_terms >= 0, n_samples >= 10 and tolerance >= 0")
    names = list(CANDIDATE_TERMS if library is None else library)
    unknown = [t for t in names if t not in _SOURCE]
    if unknown:
        raise ValueError(f"unknown terms {unknown}; known: {list(CANDIDATE_TERMS)}")
    # Library order is the tie-break priority, so use the canonical order whatever was passed.
    names = [t for t in CANDIDATE_TERMS if t in set(names)]
    progress = None if progress is None else float(progress)

    train_seq, test_seq = np.random.SeedSequence(seed).spawn(2)
    train_rng, test_rng = np.random.default_rng(train_seq), np.random.default_rng(test_seq)
    r, a = _sample(train_rng, n_samples, (lo, hi), adv_range, band, band_fraction)
    n_test = max(n_samples // 4, 1000)
    r_test, a_test = _sample(test_rng, n_test, (lo, hi), adv_range, band, band_fraction)
    y, y_test = _evaluate(drift_fn, r, a, progress), _evaluate(drift_fn, r_test, a_test, progress)

    theta = np.stack([_eval_term(t, r, a, np) for t in names], axis=1)
    solution = sparse_regression(theta, y, train_rng, max_terms=max_terms, tolerance=tolerance,
                                 n_thresholds=n_thresholds)
    terms = [names[j] for j in solution.support]
    coefs = [float(c) for c in solution.coefficients]
    lin = _linear(terms, coefs, r_test, a_test, np)
    linear_m, relu_m = fit_metrics(lin, y_test), fit_metrics(np.maximum(lin, 0.0), y_test)
    final = relu_m if nonnegative else linear_m
    return SymbolicFit(
        terms=terms, coefficients=coefs, r2=final.r2, rmse=final.rmse,
        max_abs_error=final.max_abs_error, nonnegative=nonnegative, linear=linear_m,
        relu=relu_m, found_by=solution.found_by, progress=progress, n_train=n_samples,
        n_test=n_test,
    )
