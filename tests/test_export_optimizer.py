"""Exported learned optimizers: the standalone module gives the platform's updates and
training runs, is ruff-clean and imports only jax/numpy/optax, refuses to import when edited,
and reads back (parsed, never imported) to the same weights and settings."""

import ast
import copy
import importlib.util
import runpy
import subprocess
import sys
from pathlib import Path

import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest

from metarl.export import (
    ExportedOptimizer,
    ExportError,
    read_optimizer_module,
    render_optimizer_module,
    write_module,
    write_optimizer_module,
)
from metarl.learned import LPO
from metarl.learned_optimizers import get_learned_optimizer, make_learned_optimizer

ROOT = Path(__file__).resolve().parents[1]
EXAMPLE = ROOT / "docs" / "examples" / "lopt_flax.py"
NAMES = ["mlp", "open"]
ALLOWED_IMPORTS = {"__future__", "hashlib", "typing", "jax", "jax.numpy", "numpy", "optax"}
PROVENANCE = {"run_id": "0123abcd", "spec": "search/lopt.toml", "fitness": 0.8731,
              "note": 'quotes " and """ and a \\ backslash'}
SETTINGS = {
    "mlp": {"learning_rate": 2e-2, "total_steps": 20, "magnitude_scale": 0.2},
    "open": {"learning_rate": 2e-2, "total_steps": 20, "seed": 7, "eps_root": 1e-12,
             "momentum_decays": (0.8, 0.95, 0.999)},
}


def actor_mask(params):
    """Noise on the actor's weights only."""
    return {"actor": jax.tree.map(lambda _: True, params["actor"]),
            "critic": jax.tree.map(lambda _: False, params["critic"])}


def keyword_args(name):
    return {"actor_mask": actor_mask} if name == "open" else {}


def random_meta(name, seed=0, scale=0.3):
    """Weights far from Adam's: every leaf, biases included, perturbed."""
    rng = np.random.default_rng(seed)
    meta = get_learned_optimizer(name).init_meta(jax.random.PRNGKey(seed))
    return jax.tree.map(lambda x: jnp.asarray(np.asarray(x) + scale * rng.standard_normal(
        x.shape), jnp.float32), meta)


def import_file(path, name):
    spec = importlib.util.spec_from_file_location(name, path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def small_params(seed=1):
    rng = np.random.default_rng(seed)
    f = lambda *shape: jnp.asarray(rng.standard_normal(shape), jnp.float32)  # noqa: E731
    return {"actor": {"w": f(3, 4), "b": f(4)}, "critic": {"w": f(4, 1), "b": f(1)}}


@pytest.fixture(scope="module")
def exported(tmp_path_factory):
    """name -> (meta, path, imported module), each with random weights."""
    folder = tmp_path_factory.mktemp("lopt")
    out = {}
    for i, name in enumerate(NAMES):
        meta = random_meta(name, i)
        path = write_optimizer_module(name, meta, SETTINGS[name], folder / f"lopt_{name}.py",
                                      PROVENANCE)
        out[name] = (meta, path, import_file(path, f"exported_lopt_{name}"))
    return out


def _run(tx, params, steps=5, seed=2, jit=False, **extra):
    """The updates of `steps` steps on random gradients. Op by op unless `jit`: after the
    first run every primitive is compiled, where each jitted optimizer is a new compile."""
    rng = np.random.default_rng(seed)
    state = tx.init(params)
    update = lambda g, s, p: tx.update(g, s, p, **extra)  # noqa: E731
    update = jax.jit(update) if jit else update
    out = []
    for _ in range(steps):
        grads = jax.tree.map(lambda x: jnp.asarray(rng.standard_normal(x.shape), x.dtype),
                             params)
        updates, state = update(grads, state, params)
        params = optax.apply_updates(params, updates)
        out.append(updates)
    return out


def _max_diff(a, b):
    return max(float(jnp.max(jnp.abs(x - y))) for x, y in
               zip(jax.tree.leaves(a), jax.tree.leaves(b), strict=True))


@pytest.mark.parametrize("name", NAMES)
def test_updates_equal_the_platforms(exported, name):
    meta, _, module = exported[name]
    params = small_params()
    ours = _run(module.optimizer(**keyword_args(name)), params)
    theirs = _run(make_learned_optimizer(name, meta, **SETTINGS[name], **keyword_args(name)),
                  params)
    assert _max_diff(ours, theirs) <= 1e-6
    # the weights are not Adam's: the test would prove little if they were
    adam = _run(optax.adam(SETTINGS[name]["learning_rate"]), params)
    assert _max_diff(ours, adam) > 1e-4
    # compiled as well (to the bit, here), with the progress extra argument
    one = _run(module.optimizer(**keyword_args(name)), params, steps=2, jit=True, progress=0.5)
    two = _run(make_learned_optimizer(name, meta, **SETTINGS[name], **keyword_args(name)),
               params, steps=2, jit=True, progress=0.5)
    assert _max_diff(one, two) <= 1e-6


def test_open_noise_is_on_the_actor_and_reproducible(exported):
    _, _, module = exported["open"]
    params = small_params()
    noisy = _run(module.optimizer(actor_mask=actor_mask), params, steps=2)
    again = _run(module.optimizer(actor_mask=actor_mask), params, steps=2)
    quiet = _run(module.optimizer(), params, steps=2)
    reseeded = _run(module.optimizer(actor_mask=actor_mask, seed=8), params, steps=2)
    assert _max_diff(noisy, again) == 0.0  # same seed, same noise
    assert _max_diff([u["critic"] for u in noisy], [u["critic"] for u in quiet]) == 0.0
    assert _max_diff([u["actor"] for u in noisy], [u["actor"] for u in quiet]) > 1e-6
    assert _max_diff([u["actor"] for u in noisy], [u["actor"] for u in reseeded]) > 1e-6


def _train(tx, steps=20):
    """A tiny regression MLP trained for `steps` steps; its losses and final parameters. Its
    layers have `small_params`' shapes, so the optimizers' primitives are compiled already."""
    rng = np.random.default_rng(3)
    x = jnp.asarray(rng.uniform(-2, 2, (64, 3)), jnp.float32)
    y = jnp.sin(x[:, :1]) * x[:, 1:2] + x[:, 2:]
    params = small_params(4)

    def loss_fn(p):
        h = jnp.tanh(x @ p["actor"]["w"] + p["actor"]["b"])
        return jnp.mean((h @ p["critic"]["w"] + p["critic"]["b"] - y) ** 2)

    state, losses = tx.init(params), []
    for _ in range(steps):
        loss, grads = jax.value_and_grad(loss_fn)(params)
        updates, state = tx.update(grads, state, params)
        params = optax.apply_updates(params, updates)
        losses.append(loss)
    return jnp.stack(losses), params


@pytest.mark.parametrize("name", NAMES)
def test_training_run_equals_the_platforms(exported, name):
    meta, _, module = exported[name]
    ours = _train(module.optimizer(**keyword_args(name)))
    theirs = _train(make_learned_optimizer(name, meta, **SETTINGS[name],
                                           **keyword_args(name)))
    assert np.all(np.isfinite(ours[0]))
    assert _max_diff(ours, theirs) <= 1e-6


def test_module_is_ruff_clean_and_imports_only_jax_numpy_optax(exported):
    paths = [str(path) for _, path, _ in exported.values()]
    result = subprocess.run([sys.executable, "-m", "ruff", "check", "--no-cache", "--config",
                             str(ROOT / "pyproject.toml"), *paths],
                            capture_output=True, text=True)
    assert result.returncode == 0, result.stdout + result.stderr
    for path in paths:
        imported = set()
        for node in ast.walk(ast.parse(Path(path).read_text())):
            if isinstance(node, ast.Import):
                imported |= {alias.name for alias in node.names}
            elif isinstance(node, ast.ImportFrom):
                imported.add(node.module)
        assert imported <= ALLOWED_IMPORTS, imported - ALLOWED_IMPORTS


@pytest.mark.parametrize("name", NAMES)
def test_module_contents_and_settings(exported, name):
    meta, _, module = exported[name]
    assert module.FORMAT == "metarl-optimizer/1" and module.OPTIMIZER == name
    assert module.PROVENANCE["run_id"] == "0123abcd" and "metarl_version" in module.PROVENANCE
    assert "0123abcd" in module.__doc__ and "exported_at" in module.__doc__
    expected = {"learning_rate", "momentum_decays", "b2", "eps", "eps_root", "magnitude_scale",
                "total_steps"} | ({"seed"} if name == "open" else set())
    assert set(module.SETTINGS) == expected
    assert module.SETTINGS["total_steps"] == 20
    assert module.SHAPES == jax.tree.map(lambda w: list(w.shape), meta)
    assert isinstance(module.optimizer(), optax.GradientTransformationExtraArgs)
    with pytest.raises(TypeError, match="unknown argument.*bogus.*allowed: learning_rate"):
        module.optimizer(bogus=1)
    if name == "mlp":
        with pytest.raises(TypeError, match="actor_mask"):
            module.optimizer(actor_mask=actor_mask)
    # an override gives the platform's optimizer with that setting
    params = small_params()
    ours = _run(module.optimizer(learning_rate=1e-3, **keyword_args(name)), params, steps=2)
    theirs = _run(make_learned_optimizer(name, meta, **{**SETTINGS[name], "learning_rate": 1e-3},
                                         **keyword_args(name)), params, steps=2)
    assert _max_diff(ours, theirs) <= 1e-6


def _with_literal(source, name, value):
    """`source` with the top-level assignment to `name` replaced by `value`'s repr."""
    node = next(n for n in ast.parse(source).body
                if isinstance(n, ast.Assign) and n.targets[0].id == name)
    lines = source.splitlines(keepends=True)
    return ("".join(lines[:node.lineno - 1]) + f"{name} = {value!r}\n"
            + "".join(lines[node.end_lineno:]))


def _edited(tmp_path, path, edit, module):
    weights = copy.deepcopy(module.WEIGHTS)
    edit(weights)
    out = tmp_path / f"edited_{path.name}"
    out.write_text(_with_literal(path.read_text(), "WEIGHTS", weights))
    return out


def _bump(weights):
    leaf = weights["head"]["w0"] if "head" in weights else weights["w0"]
    leaf[0][0] += 1e-3


def _truncate(weights):
    leaf = weights["head"]["b0"] if "head" in weights else weights["b0"]
    leaf.pop()


@pytest.mark.parametrize("name", NAMES)
def test_edited_module_refuses_to_import_and_to_be_read(exported, tmp_path, name):
    _, path, module = exported[name]
    changed = _edited(tmp_path, path, _bump, module)
    with pytest.raises(ValueError, match="modified after export.*WEIGHTS_SHA256"):
        import_file(changed, f"changed_{name}")
    with pytest.raises(ExportError, match=f"{changed}.*modified after export"):
        read_optimizer_module(changed)

    bias = "head.b0" if name == "open" else "b0"
    size = module.SHAPES["head"]["b0"][0] if name == "open" else module.SHAPES["b0"][0]
    short = _edited(tmp_path, path, _truncate, module)
    message = rf"weight {bias} has shape \[{size - 1}\] but SHAPES declares \[{size}\]"
    with pytest.raises(ValueError, match=message):
        import_file(short, f"short_{name}")
    with pytest.raises(ExportError, match=f"{short}.*{message}"):
        read_optimizer_module(short)


@pytest.mark.parametrize("name", NAMES)
def test_reader_round_trip(exported, name):
    meta, path, module = exported[name]
    read = read_optimizer_module(path)
    assert isinstance(read, ExportedOptimizer)
    assert read.name == name and read.settings == module.SETTINGS
    assert read.digest == module.WEIGHTS_SHA256 and read.provenance == module.PROVENANCE
    for got, want in zip(jax.tree.leaves(read.weights), jax.tree.leaves(meta), strict=True):
        assert got.dtype == jnp.float32 and np.array_equal(np.asarray(got), np.asarray(want))
    assert jax.tree.structure(read.weights) == jax.tree.structure(meta)
    params = small_params()
    ours = _run(module.optimizer(**keyword_args(name)), params, steps=2)
    assert _max_diff(_run(read.make(**keyword_args(name)), params, steps=2), ours) <= 1e-6


def test_reader_never_runs_the_file(exported, tmp_path):
    _, path, _ = exported["mlp"]
    trap = tmp_path / "trap.py"
    source = path.read_text()
    trap.write_text(source.replace("\nimport hashlib\n",
                                   '\nimport hashlib\n\nraise RuntimeError("executed")\n', 1))
    assert read_optimizer_module(trap).name == "mlp"


def test_reader_refuses_what_is_not_an_optimizer_export(tmp_path):
    rule = LPO()
    rule_path = write_module(rule, rule.init(jax.random.PRNGKey(0)), tmp_path / "rule.py")
    with pytest.raises(ExportError, match=f"{rule_path}: is an exported update rule"):
        read_optimizer_module(rule_path)
    plain = tmp_path / "plain.py"
    plain.write_text("import optax\n\n\ndef optimizer():\n    return optax.adam(1e-3)\n")
    with pytest.raises(ExportError, match="not a learned optimizer export"):
        read_optimizer_module(plain)
    with pytest.raises(ExportError, match="no such file"):
        read_optimizer_module(tmp_path / "missing.py")


def test_export_refuses_what_it_cannot_write(tmp_path):
    meta = random_meta("open")
    with pytest.raises(ExportError, match="actor_mask.*optimizer\\(actor_mask=...\\)"):
        render_optimizer_module("open", meta, {"actor_mask": actor_mask}, {})
    with pytest.raises(ExportError, match="unknown setting.*seed"):
        render_optimizer_module("mlp", random_meta("mlp"), {"seed": 1}, {})
    with pytest.raises(ExportError, match="not a number"):
        render_optimizer_module("mlp", random_meta("mlp"), {"learning_rate": optax.
                                                            constant_schedule(1e-3)}, {})
    population = jax.tree.map(lambda x: jnp.stack([x, x]), meta)
    with pytest.raises(ExportError, match="do not fit learned optimizer 'open'"):
        render_optimizer_module("open", population, {}, {})
    with pytest.raises(ExportError, match="exportable: mlp, open"):
        render_optimizer_module("adam", meta, {}, {})
    assert not list(tmp_path.iterdir())


def test_extra_source_is_appended_verbatim(tmp_path):
    extra = ("def closed_form(g):\n"
             '    """A distilled rule (here: sign descent)."""\n'
             "    return -0.5 * jnp.sign(g)\n")
    source = render_optimizer_module("mlp", random_meta("mlp"), {}, {"run_id": "x"}, extra)
    assert source.endswith("\n\n\n" + extra)
    path = tmp_path / "with_extra.py"
    path.write_text(source)
    assert float(import_file(path, "with_extra").closed_form(jnp.float32(2.0))) == -0.5


def test_flax_example_trains_with_an_exported_module(tmp_path, monkeypatch, capsys):
    # near-Adam weights (init_meta's small output layer), as a search would start from
    meta = get_learned_optimizer("mlp").init_meta(jax.random.PRNGKey(4))
    path = write_optimizer_module("mlp", meta, {}, tmp_path / "lopt.py", {"run_id": "flax"})
    monkeypatch.setattr(sys, "argv", [str(EXAMPLE), str(path)])
    runpy.run_path(str(EXAMPLE), run_name="__main__")
    line = capsys.readouterr().out.strip().splitlines()[-1]
    first, last = (float(v) for v in line.split("loss ")[1].split(" after")[0].split(" -> "))
    assert last < 0.5 * first, line
