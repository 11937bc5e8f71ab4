"""Exported rule modules: same numbers as in the platform, same PPO run, ruff-clean, and
refusing to load when tampered with or truncated."""

import shutil
import subprocess
from pathlib import Path

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from metarl.envs import make
from metarl.export import (
    ExportError,
    load_rule,
    write_module,
)
from metarl.learned import DPO, LPO, DriftObjective, MLPObjective, PPOClip
from metarl.ppo import ObjectiveInputs, PPOConfig, make_train
from metarl.rule_import import ModuleObjective, load_module, objective_from_module

ROOT = Path(__file__).resolve().parents[1]
TINY = PPOConfig(total_timesteps=2 * 32, num_envs=2, num_steps=16, update_epochs=1,
                 num_minibatches=2, rollout_unroll=1, minibatch_unroll=1)
RULES = [LPO(), LPO(temporal=True, hidden_sizes=(16, 16)), DPO(alpha=1.5), PPOClip(),
         MLPObjective(bound=0.5, base_clip_eps=0.25)]
PROVENANCE = {"run_id": "0123abcd", "spec": "search/lpo.toml", "fitness": 0.8731,
              "note": 'quotes " and """ and a \\ backslash\nacross lines'}


def perturbed(objective, seed=0, scale=0.5):
    """Meta-parameters with every weight random (init zeroes the output layer)."""
    rng = np.random.default_rng(seed)
    return jax.tree.map(lambda x: jnp.asarray(np.asarray(x) + scale * rng.standard_normal(
        x.shape), jnp.float32), objective.init(jax.random.PRNGKey(0)))


@pytest.fixture(scope="module")
def exported(tmp_path_factory):
    """Each rule with random meta-parameters, its exported file and the loaded module."""
    folder = tmp_path_factory.mktemp("rules")
    out = []
    for i, rule in enumerate(RULES):
        params = perturbed(rule, i)
        path = write_module(rule, params, folder / f"rule_{i}_{rule.name}.py", PROVENANCE)
        out.append((rule, params, path, load_module(path)))
    return out


def _inputs(seed, shape=(64, 32)):
    rng = np.random.default_rng(seed)
    ratio = np.exp(rng.normal(0.0, 0.4, shape)).astype(np.float32)
    ratio.flat[::7] = 1.0  # exactly-1 ratios, where drifts vanish
    return ObjectiveInputs(
        jnp.asarray(ratio), jnp.log(ratio), jnp.asarray(rng.normal(0, 1.5, shape), jnp.float32),
        jnp.asarray(rng.normal(0, 30, shape), jnp.float32),
        jnp.asarray(rng.uniform(0, 1.5, shape), jnp.float32), jnp.float32(0.37),
        jnp.float32(0.2))


@pytest.mark.parametrize("index", range(len(RULES)), ids=[r.name for r in RULES])
def test_exported_functions_equal_the_platform_ones(exported, index):
    rule, params, path, module = exported[index]
    adapter = objective_from_module(path)
    is_drift = isinstance(rule, DriftObjective)
    extra = ({"value_error": None, "entropy": None} if isinstance(rule, MLPObjective) else {})

    @jax.jit  # one compile for all comparisons (each jit is slow on a shared CPU)
    def both(inputs, params):
        out = {"platform": rule(inputs, params), "adapter": adapter(inputs, None)}
        if is_drift:
            out["platform_drift"] = rule.drift(params, inputs.ratio, inputs.advantage,
                                               inputs.progress)
            out["module_drift"] = module.drift(inputs.ratio, inputs.advantage, inputs.progress)
        # broadcasting: ratios down the rows, advantages across the columns
        r, a = inputs.ratio[:, :1], inputs.advantage[:1, :]
        kwargs = {k: getattr(inputs, k) for k in extra}
        out["broadcast"] = module.policy_objective(r, a, progress=inputs.progress, **kwargs)
        out["broadcast_platform"] = rule(inputs._replace(
            ratio=jnp.broadcast_to(r, inputs.ratio.shape),
            advantage=jnp.broadcast_to(a, inputs.ratio.shape)), params)
        return out

    out = both(_inputs(index), params)
    np.testing.assert_allclose(out["adapter"], out["platform"], rtol=1e-6, atol=1e-6)
    np.testing.assert_allclose(out["broadcast"], out["broadcast_platform"], rtol=1e-6,
                               atol=1e-6)
    assert out["broadcast"].shape == (64, 32)
    if is_drift:
        np.testing.assert_allclose(out["module_drift"], out["platform_drift"], rtol=1e-6,
                                   atol=1e-6)
        assert float(out["module_drift"].max()) > 0.0


def test_exported_gradients_equal_the_platform_ones(exported):
    rule, params, path, module = exported[1]
    inputs = _inputs(5)
    g_platform = jax.grad(lambda r: rule(inputs._replace(ratio=r), params).sum())
    g_module = jax.grad(lambda r: module.policy_objective(r, inputs.advantage,
                                                          inputs.progress).sum())
    np.testing.assert_allclose(jax.jit(g_module)(inputs.ratio), jax.jit(g_platform)(inputs.ratio),
                               rtol=1e-5, atol=1e-6)


def test_ppo_with_the_exported_module_equals_ppo_with_the_rule(exported):
    """Two PPO runs from one key, one whose policy objective is the exported file's and one
    whose is the in-platform rule with its meta-parameters. They run as the two members of
    one vmapped program that picks its objective per member, because each PPO compile takes
    10-15 s on a shared 2-core CPU and two of them would double this file's time."""
    rule, params, path, _ = exported[1]  # temporally aware: progress reaches the module too
    from_file = objective_from_module(path)

    def either(inputs, meta):
        use_file, rule_params = meta
        return jnp.where(use_file, from_file(inputs, None), rule(inputs, rule_params))

    train = make_train(TINY, make("gymnax/CartPole-v1"), objective=either)
    run = jax.jit(jax.vmap(train, in_axes=(None, (0, None))))
    _, metrics = run(jax.random.PRNGKey(3), (jnp.array([False, True]), params))
    for name, value in metrics.items():
        np.testing.assert_allclose(value[1], value[0], rtol=1e-5, atol=1e-6, err_msg=name)
    assert float(np.abs(metrics["approx_kl"]).max()) > 0  # the policy did change


def test_exported_module_is_self_contained_and_documented(exported):
    for rule, _, path, module in exported:
        text = path.read_text()
        imports = [line for line in text.splitlines() if line.startswith(("import", "from"))]
        assert imports == ["from __future__ import annotations", "import hashlib",
                           "import jax.numpy as jnp"]
        assert "metarl" not in "".join(imports)
        assert module.RULE == rule.name
        assert module.PROVENANCE["run_id"] == "0123abcd" and module.PROVENANCE["fitness"] == 0.8731
        assert module.PROVENANCE["note"] == PROVENANCE["note"]
        assert {"metarl_version", "exported_at"} <= set(module.PROVENANCE)
        assert "run_id: 0123abcd" in module.__doc__ and "fitness: 0.8731" in module.__doc__
        assert "policy_objective" in module.__doc__
        if isinstance(rule, DriftObjective):
            assert callable(module.drift)


def test_load_rule_recovers_the_searchable_rule(exported):
    for rule, params, path, _ in exported:
        again, weights = load_rule(path)
        assert again == rule
        assert jax.tree.structure(weights) == jax.tree.structure(params)
        jax.tree.map(np.testing.assert_array_equal, weights, params)  # bit-exact floats


def test_exported_module_passes_ruff(exported, ruff):
    paths = [str(p) for _, _, p, _ in exported]
    # strict, independent of any config: pyflakes, pycodestyle incl. 88 columns, isort,
    # pyupgrade, bugbear
    strict = [*ruff, "check", "--isolated", "--no-cache", "--select", "E,F,W,I,UP,B",
              "--line-length", "88", "--target-version", "py311", *paths]
    res = subprocess.run(strict, capture_output=True, text=True)
    assert res.returncode == 0, res.stdout + res.stderr
    # and under this repository's own configuration
    res = subprocess.run([*ruff, "check", "--no-cache", "--config",
                          str(ROOT / "pyproject.toml"), *paths], capture_output=True, text=True)
    assert res.returncode == 0, res.stdout + res.stderr


@pytest.fixture
def lpo_file(exported, tmp_path):
    """A private copy of the exported LPO module, free to be damaged."""
    path = tmp_path / "rule.py"
    shutil.copy(exported[0][2], path)
    return path


def _edit_one_weight_digit(path):
    text = path.read_text()
    start = text.index("WEIGHTS = {")
    # the first digit after a "0." inside the weights: changes the value by >= 1e-1
    at = text.index("0.", start) + 2
    digit = text[at]
    path.write_text(text[:at] + ("5" if digit != "5" else "6") + text[at + 1:])


def test_tampered_module_refuses_to_import(lpo_file):
    _edit_one_weight_digit(lpo_file)
    spec = __import__("importlib.util").util.spec_from_file_location("tampered", lpo_file)
    with pytest.raises(ImportError, match="was modified after export: weights do not match "
                                          "their checksum; re-export with `metarl export`"):
        spec.loader.exec_module(__import__("importlib.util").util.module_from_spec(spec))
    with pytest.raises(ExportError, match="modified after export") as err:
        load_module(lpo_file)
    assert str(lpo_file) in str(err.value)


def test_reformatted_module_still_loads(lpo_file):
    # the checksum is over the values, not the layout: re-wrapping lines is not tampering
    text = lpo_file.read_text().replace(",\n        ", ", ")
    lpo_file.write_text(text)
    assert callable(load_module(lpo_file).drift)


def test_truncated_module_fails_clearly(lpo_file):
    text = lpo_file.read_text()
    lpo_file.write_text(text[: len(text) // 2])
    with pytest.raises(ExportError, match="not valid Python.*truncated") as err:
        load_module(lpo_file)
    assert str(lpo_file) in str(err.value)
    # cut at a line boundary before the functions: valid Python, but no rule in it
    lpo_file.write_text(text[: text.index("def drift(")])
    with pytest.raises(ExportError, match="defines no policy_objective.*truncated"):
        load_module(lpo_file)


def test_missing_file_and_unusable_modules(tmp_path):
    with pytest.raises(ExportError, match="no such file"):
        load_module(tmp_path / "nope.py")
    bad = tmp_path / "bad.py"
    bad.write_text("raise RuntimeError('boom')\n")
    with pytest.raises(ExportError, match="bad.py: importing it failed.*boom"):
        load_module(bad)
    odd = tmp_path / "odd.py"
    odd.write_text("def policy_objective(ratio, temperature):\n    return ratio\n")
    with pytest.raises(ExportError, match="needs 'temperature'"):
        objective_from_module(odd)


def test_hand_written_module_is_an_objective(tmp_path):
    rule = tmp_path / "mine.py"
    rule.write_text("import jax.numpy as jnp\n\n\n"
                    "def policy_objective(ratio, advantage, clip_eps, scale=2.0):\n"
                    "    return scale * jnp.minimum(ratio * advantage,\n"
                    "                               jnp.clip(ratio, 1 - clip_eps, 1 + clip_eps)"
                    " * advantage)\n")
    objective = objective_from_module(rule)  # the Python API: importing is the point here
    assert isinstance(objective, ModuleObjective)
    assert objective == objective_from_module(rule)  # equal, hence one jit cache entry
    hash(objective)
    assert objective.arg_names == ("ratio", "advantage", "clip_eps")
    assert objective.init(jax.random.PRNGKey(0)) == {}
    inputs = _inputs(1, (8,))
    expected = 2.0 * PPOClip()(inputs, {})
    np.testing.assert_allclose(objective(inputs, None), expected, rtol=1e-6)


def test_unexportable_input_is_refused(tmp_path):
    with pytest.raises(ExportError, match="cannot export"):
        write_module(objective_from_module, {}, tmp_path / "x.py", {})
    params = LPO().init(jax.random.PRNGKey(0))
    with pytest.raises(ExportError, match="non-finite"):
        write_module(LPO(), {**params, "b1": jnp.full(1, jnp.nan)}, tmp_path / "x.py", {})
    with pytest.raises(ExportError, match="expected shapes"):  # e.g. a whole population
        write_module(LPO(), jax.tree.map(lambda x: jnp.stack([x, x]), params),
                     tmp_path / "x.py", {})
    assert not (tmp_path / "x.py").exists()
