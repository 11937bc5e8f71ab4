"""Distilling learned optimizers into closed forms (metarl.distill.optimizer): the Adam start
distils to Adam, known targets are recovered, the generated source is the transformation."""

from __future__ import annotations

import math
import subprocess
from pathlib import Path

import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest

from metarl.distill.optimizer import (
    OptimizerFit,
    candidate_terms,
    fit_optimizer,
    fit_transformation,
)
from metarl.learned_optimizers import get_learned_optimizer

PYPROJECT = Path(__file__).resolve().parents[1] / "pyproject.toml"
KEY = jax.random.PRNGKey(0)
ADAM = "m_hat/(sqrt(v_hat)+eps)"
FAST = {"n_steps": 100, "n_samples": 6000}  # 100 steps x 577 parameters to draw from
PARAMS = {"w": jnp.array([[1.0, -2.0, 0.3], [0.5, 3.0, -1.2]]), "b": jnp.array([0.3, -0.7])}


def loss(params):
    return jnp.sum(jnp.sin(params["w"]) ** 2 * jnp.arange(1.0, 4.0)) + jnp.sum(params["b"] ** 4)


def run(tx, steps: int = 6, **extra):
    """The updates of `steps` steps of `tx` on `loss`."""
    params, state, out = PARAMS, tx.init(PARAMS), []
    for _ in range(steps):
        updates, state = tx.update(jax.grad(loss)(params), state, params, **extra)
        out.append(updates)
        params = optax.apply_updates(params, updates)
    return out


def max_diff(a, b) -> float:
    return max(float(jnp.max(jnp.abs(x - y))) for x, y in
               zip(jax.tree.leaves(a), jax.tree.leaves(b), strict=True))


def exec_source(fit: OptimizerFit, name: str = "symbolic_optimizer"):
    namespace = {"jax": jax, "jnp": jnp, "optax": optax}
    exec(fit.source(name), namespace)
    return namespace[name]


@pytest.fixture(scope="module")
def adam_fit() -> OptimizerFit:
    meta = get_learned_optimizer("mlp").adam_init_meta(KEY)
    return fit_optimizer("mlp", meta, {"learning_rate": 0.01}, **FAST)


def test_adam_start_distils_to_adam(adam_fit):
    assert adam_fit.terms == [ADAM]
    assert abs(adam_fit.coefficients[0] - 1.0) < 1e-4
    assert adam_fit.relative_rmse < 1e-4 and adam_fit.r2 > 0.9999
    assert adam_fit.expression() == f"1*{ADAM}"
    # and the closed form it generates is optax's Adam
    for ours, ref in zip(run(adam_fit.transformation(0.05)), run(optax.adam(0.05)),
                         strict=True):
        assert max_diff(ours, ref) <= 1e-6


def test_recovers_a_known_multiple_of_adam():
    # the MLP's log-magnitude output bias: update = -lr * adam * exp(0.1 * bias) = -lr * 2 adam
    meta = get_learned_optimizer("mlp").adam_init_meta(KEY)
    meta = {**meta, "b2": jnp.array([0.0, 10.0 * math.log(2.0)])}
    fit = fit_optimizer("mlp", meta, {"learning_rate": 0.01}, **FAST)
    assert fit.terms == [ADAM] and abs(fit.coefficients[0] - 2.0) < 1e-3


def adam_plus_sign(learning_rate: float, weight: float) -> optax.GradientTransformation:
    """-lr * (adam + weight * sign(momentum)): a hand-made target outside both families."""
    adam, trace = optax.scale_by_adam(), optax.trace(decay=0.9)

    def init(params):
        return adam.init(params), trace.init(params)

    def update(grads, state, params=None):
        direction, adam_state = adam.update(grads, state[0])
        momentum, trace_state = trace.update(grads, state[1])  # a multiple of Adam's m
        step = jax.tree.map(lambda a, m: -learning_rate * (a + weight * jnp.sign(m)),
                            direction, momentum)
        return step, (adam_state, trace_state)

    return optax.GradientTransformation(init, update)


def test_recovers_a_hand_made_sparse_update():
    fit = fit_transformation(adam_plus_sign(0.01, 0.3), learning_rate=0.01, **FAST)
    coef = dict(zip(fit.terms, fit.coefficients, strict=True))
    assert set(coef) == {ADAM, "sign(m_hat)"}
    np.testing.assert_allclose([coef[ADAM], coef["sign(m_hat)"]], [1.0, 0.3], atol=1e-3)
    assert fit.relative_rmse < 1e-3 and fit.n_test >= 1000


def rich_fit(total_steps: int | None = 10) -> OptimizerFit:
    """Every candidate at once: the generated code's every branch (momenta, v, progress)."""
    terms = list(candidate_terms())
    coefs = [0.5 / (i + 1) * (-1) ** i for i in range(len(terms))]
    return OptimizerFit(terms=terms, coefficients=coefs, r2=1.0, relative_rmse=0.0, rmse=0.0,
                        max_abs_error=0.0, total_steps=total_steps, optimizer="mlp")


@pytest.mark.parametrize("fit", [rich_fit(), rich_fit(None),
                                 OptimizerFit(["sign(g)"], [0.1], 1.0, 0.0, 0.0, 0.0),
                                 OptimizerFit([], [], 1.0, 0.0, 0.0, 0.0)],
                         ids=["all-terms", "no-horizon", "no-moments", "empty"])
def test_source_equals_transformation(fit):
    from_source = exec_source(fit)(learning_rate=0.03, total_steps=fit.total_steps)
    tx = fit.transformation(0.03)
    for extra in ({}, {"progress": 0.7}):
        for ours, theirs in zip(run(tx, **extra), run(from_source, **extra), strict=True):
            assert max_diff(ours, theirs) <= 1e-6
    if fit.terms:
        assert any(float(jnp.max(jnp.abs(u))) > 0 for u in jax.tree.leaves(run(tx)[-1]))
    # only the moments its terms read are kept
    state, used = tx.init(PARAMS), " ".join(fit.sources.values())
    assert len(state["mu"]) == sum(f"m{k}" in used for k in range(3))
    assert ("nu" in state) == ("(v + eps_root)" in used)


def test_source_is_ruff_clean_standalone_and_appended(tmp_path, ruff):
    fit = rich_fit()
    exported = ("import jax\nimport jax.numpy as jnp\nimport optax\n\nWEIGHTS = {}\n"
                "SETTINGS = {}\n\n\ndef optimizer():\n    return optax.adam(1e-3)\n\n\n")
    files = {"standalone.py": fit.source(imports=True), "appended.py": exported + fit.source()}
    for name, text in files.items():
        (tmp_path / name).write_text(text)
    out = subprocess.run([*ruff, "check", "--config", str(PYPROJECT), str(tmp_path)],
                         capture_output=True, text=True)
    assert out.returncode == 0, out.stdout + out.stderr
    namespace: dict = {}
    exec(files["appended.py"], namespace)  # no clash with the exported module's names
    assert callable(namespace["symbolic_optimizer"]) and callable(namespace["optimizer"])


def test_rejects_bad_inputs():
    with pytest.raises(ValueError, match="unknown terms"):
        OptimizerFit(["tanh(g)"], [1.0], 1.0, 0.0, 0.0, 0.0)
    with pytest.raises(ValueError, match="identifier"):
        rich_fit().source("not a name")
    with pytest.raises(ValueError, match="unknown terms"):
        fit_transformation(optax.sgd(0.1), learning_rate=0.1, library=["sin(g)"])
