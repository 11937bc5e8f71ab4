"""Symbolic distillation: exact recovery, a usable PPO-clip fit, generated code, determinism."""

import subprocess
from pathlib import Path

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from metarl.distill import CANDIDATE_TERMS, SymbolicFit, fit_symbolic
from metarl.distill.symbolic import _eval_term

PYPROJECT = Path(__file__).resolve().parents[1] / "pyproject.toml"


def known_drift(r, a):
    return 0.5 * (r - 1) ** 2 + 2 * jnp.maximum((r - 1) * a, 0)


def ppo_clip_drift(r, a):
    return jnp.maximum((r - jnp.clip(r, 0.8, 1.2)) * a, 0)


@pytest.fixture(scope="module")
def known_fit():
    return fit_symbolic(known_drift)


@pytest.fixture(scope="module")
def ppo_fit():
    return fit_symbolic(ppo_clip_drift)


def _exec_source(fit: SymbolicFit, name: str = "drift_symbolic"):
    namespace = {"jnp": jnp}
    exec(fit.python_source(name), namespace)
    return namespace[name]


def _grid():
    r, a = np.meshgrid(np.linspace(0.5, 2.0, 41), np.linspace(-3.0, 3.0, 31))
    return r.ravel(), a.ravel()


def test_every_candidate_vanishes_at_ratio_one():
    a = np.linspace(-3, 3, 13)
    for name in CANDIDATE_TERMS:
        for xp in (np, jnp):
            assert np.all(np.asarray(_eval_term(name, xp.ones_like(a), xp.asarray(a), xp)) == 0)


def test_recovers_known_sparse_drift(known_fit):
    coef = dict(zip(known_fit.terms, known_fit.coefficients, strict=True))
    assert set(coef) == {"(r-1)**2", "relu((r-1)*A)"}
    assert abs(coef["(r-1)**2"] - 0.5) < 1e-3
    assert abs(coef["relu((r-1)*A)"] - 2.0) < 1e-3
    assert known_fit.r2 > 0.999 and known_fit.linear.r2 > 0.999
    assert known_fit.expression() == "relu(0.5*(r-1)**2 + 2*relu((r-1)*A))"


def test_ppo_clip_fit_is_compact_and_accurate(ppo_fit):
    assert ppo_fit.r2 > 0.8
    assert 1 <= len(ppo_fit.terms) <= 6
    # The target is >= 0, so clipping the linear fit at zero can only reduce pointwise error.
    assert ppo_fit.relu.rmse <= ppo_fit.linear.rmse
    assert ppo_fit.r2 == ppo_fit.relu.r2
    small = fit_symbolic(ppo_clip_drift, max_terms=2, n_samples=5000)
    assert len(small.terms) <= 2 and small.r2 > 0.8


def test_python_source_matches_call(known_fit, ppo_fit):
    r, a = _grid()
    for fit in (known_fit, ppo_fit):
        fn = _exec_source(fit, "distilled")
        rj, aj = jnp.asarray(r, jnp.float32), jnp.asarray(a, jnp.float32)
        np.testing.assert_allclose(fn(rj, aj), fit(rj, aj), atol=1e-6, rtol=0)
        # numpy float64 __call__ against the float32 jax source: only float32 rounding apart.
        np.testing.assert_allclose(fn(rj, aj), fit(r, a), atol=1e-5, rtol=1e-5)
        assert isinstance(fit(r, a), np.ndarray) and isinstance(fit(rj, aj), jax.Array)
        np.testing.assert_allclose(jax.jit(fit)(rj, aj), fit(rj, aj), atol=1e-6, rtol=0)


def test_python_source_is_ruff_clean(ppo_fit, tmp_path, ruff):
    module = tmp_path / "distilled.py"
    module.write_text("import jax.numpy as jnp\n\n\n" + ppo_fit.python_source())
    out = subprocess.run([*ruff, "check", "--config", str(PYPROJECT), str(module)],
                         capture_output=True, text=True)
    assert out.returncode == 0, out.stdout + out.stderr


def test_expression_vanishes_at_ratio_one(known_fit, ppo_fit):
    a = np.linspace(-3, 3, 101)
    for fit in (known_fit, ppo_fit):
        assert np.all(fit(np.ones_like(a), a) == 0)
        assert np.all(np.asarray(_exec_source(fit)(jnp.ones_like(a), jnp.asarray(a))) == 0)


def test_same_seed_same_fit(ppo_fit):
    again = fit_symbolic(ppo_clip_drift)
    assert again == ppo_fit
    assert again.python_source() == ppo_fit.python_source()
    other = fit_symbolic(ppo_clip_drift, seed=1)
    assert other.coefficients != ppo_fit.coefficients


def test_progress_is_passed_to_temporal_drift():
    seen = []

    def temporal(r, a, progress):
        seen.append(progress)
        return (1 - progress) * (r - 1) ** 2 + progress * jnp.maximum(jnp.log(r) * a, 0)

    fit = fit_symbolic(temporal, progress=0.25, n_samples=4000)
    assert seen and all(p == 0.25 and isinstance(p, float) for p in seen)
    coef = dict(zip(fit.terms, fit.coefficients, strict=True))
    assert set(coef) == {"(r-1)**2", "relu(log(r)*A)"}
    np.testing.assert_allclose([coef["(r-1)**2"], coef["relu(log(r)*A)"]], [0.75, 0.25],
                               atol=1e-3)
    assert fit.progress == 0.25 and "progress=0.25" in fit.python_source()


def test_linear_output_and_library_subset():
    fit = fit_symbolic(lambda r, a: np.log(r) * a, nonnegative=False, n_samples=2000,
                       library=["log(r)*A", "(r-1)*A", "(r-1)**2"])
    assert fit.terms == ["log(r)*A"] and not fit.expression().startswith("relu")
    r, a = _grid()
    np.testing.assert_allclose(fit(r, a), np.log(r) * a, atol=1e-9)


def test_zero_drift_gives_empty_expression():
    fit = fit_symbolic(lambda r, a: np.zeros_like(r), n_samples=1000)
    assert fit.terms == [] and fit.expression() == "0" and fit.r2 == 1.0
    assert np.all(_exec_source(fit)(jnp.ones(3), jnp.ones(3)) == 0)


def test_rejects_bad_inputs():
    with pytest.raises(ValueError, match="ratio_range"):
        fit_symbolic(known_drift, ratio_range=(0.0, 2.0))
    with pytest.raises(ValueError, match="elementwise"):
        fit_symbolic(lambda r, a: jnp.sum(r * a), n_samples=100)
    with pytest.raises(ValueError, match="unknown terms"):
        fit_symbolic(known_drift, library=["sin(r)"])
