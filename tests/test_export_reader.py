"""A spec's `module:` rule is read as data: parsed for its literals, never imported, and only
from files inside the spec's folder or the working directory."""

import ast
import json
import os
import subprocess
import sys
from pathlib import Path

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from click.testing import CliRunner

from metarl.cli import main
from metarl.export import ExportError, load_rule, read_export, write_module
from metarl.learned import make_objective
from metarl.programs import build_kind
from metarl.spec import SpecError, load_spec, load_spec_data, spec_json

SPEC = """name = "seeded"
kind = "update_rule"

[[tasks.train]]
env = "gymnax/CartPole-v1"
timesteps = 512
return_range = [22.0, 500.0]

[inner]
num_envs = 4
num_steps = 32

[outer]
population_size = 4
generations = 1

[rule]
objective = "{ref}"
"""
# executed, this would leave a file behind: the proof that a module was run
MARKER_CODE = "open({marker!r}, 'w').write('ran')\n"


@pytest.fixture(scope="module")
def rule():
    """A tiny LPO rule with every weight moved off its initial value."""
    objective = make_objective("lpo", hidden_sizes=[4])
    params = jax.tree.map(lambda x: x + 0.25, objective.init(jax.random.PRNGKey(0)))
    return objective, params


@pytest.fixture
def project(tmp_path, monkeypatch, rule):
    """A working directory holding `rules/lpo.py` (a real export) and a spec folder."""
    monkeypatch.chdir(tmp_path)
    write_module(*rule, tmp_path / "rules" / "lpo.py", {"run_id": "abc"})
    (tmp_path / "specs").mkdir()
    return tmp_path


def spec_file(folder: Path, ref: str) -> Path:
    path = folder / "seeded.toml"
    path.write_text(SPEC.format(ref=ref))
    return path


def run_dry(path: Path) -> tuple[int, str]:
    res = CliRunner().invoke(main, ["search", "run", str(path), "--dry-run"],
                             env={"COLUMNS": "400"})
    return res.exit_code, res.output


def error_line(text: str) -> str:
    lines = [line for line in text.splitlines() if line.startswith("Error:")]
    assert len(lines) == 1 and "Traceback" not in text, text
    return lines[0]


def test_a_real_export_round_trips_and_seeds_the_search(project, rule):
    objective, params = rule
    again, weights = load_rule(project / "rules" / "lpo.py")
    assert again == objective
    jax.tree.map(np.testing.assert_array_equal, weights, params)  # bit-exact floats
    spec = load_spec(spec_file(project / "specs", "module:rules/lpo.py"))
    assert spec.rule.exported.rule == "lpo"
    assert spec.rule.exported.settings == {"hidden_sizes": [4], "temporal": False}
    program = build_kind(spec)
    assert program.objective == objective
    jax.tree.map(np.testing.assert_array_equal, program.initial_mean(), params)


def test_a_stored_spec_rebuilds_the_rule_without_the_file(project, rule):
    """Resume and evaluate rebuild the search from spec.resolved.json: the file may be gone,
    and the weights come from the run's checkpoint, so only their shapes matter here."""
    objective, params = rule
    spec = load_spec(spec_file(project / "specs", "module:rules/lpo.py"))
    stored = json.loads(spec_json(spec))
    assert stored["rule"]["exported"]["weights_sha256"] == read_export(
        project / "rules" / "lpo.py").weights_sha256
    (project / "rules" / "lpo.py").unlink()
    again = load_spec_data(stored, "run x: spec.resolved.json")
    assert spec_json(again) == spec_json(spec)
    program = build_kind(again)
    assert program.objective == objective
    assert jax.tree.map(jnp.shape, program.initial_mean()) == jax.tree.map(jnp.shape, params)


def test_a_spec_never_runs_the_module_it_names(project, rule):
    marker = project / "ran.txt"
    source = (project / "rules" / "lpo.py").read_text()
    # a valid export with code added: the spec reads its literals and runs none of it
    (project / "rules" / "evil.py").write_text(source + MARKER_CODE.format(marker=str(marker)))
    again, weights = load_rule(project / "rules" / "evil.py")
    jax.tree.map(np.testing.assert_array_equal, weights, rule[1])
    path = spec_file(project / "specs", "module:rules/evil.py")
    program = build_kind(load_spec(path))
    jax.tree.map(np.testing.assert_array_equal, program.initial_mean(), rule[1])
    code, text = run_dry(path)
    assert code == 0, text
    assert not marker.exists()


def test_a_hand_written_module_is_refused(project):
    marker = project / "ran.txt"
    (project / "rules" / "mine.py").write_text(
        MARKER_CODE.format(marker=str(marker))
        + "def policy_objective(ratio, advantage):\n    return ratio * advantage\n")
    path = spec_file(project / "specs", "module:rules/mine.py")
    with pytest.raises(ExportError, match="not a metarl export") as err:
        load_spec(path)
    assert "field 'rule.objective'" in str(err.value) and "mine.py" in str(err.value)
    assert "parsed, never run" in str(err.value) and "objective_from_module" in str(err.value)
    code, text = run_dry(path)
    assert code == 2 and "not a metarl export" in error_line(text)
    assert not marker.exists()


@pytest.mark.parametrize("ref", ["../outside/evil.py", "rules/../../outside/evil.py",
                                 "ABSOLUTE", "~/evil.py", "rules/lpo.txt", ""])
def test_paths_outside_the_project_are_refused(project, ref):
    outside = project.parent / "outside"
    outside.mkdir(exist_ok=True)
    marker = outside / "ran.txt"
    (outside / "evil.py").write_text(MARKER_CODE.format(marker=str(marker)))
    ref = str(outside / "evil.py") if ref == "ABSOLUTE" else ref
    path = spec_file(project, f"module:{ref}")  # spec folder = working directory
    with pytest.raises((SpecError, ExportError)) as err:
        load_spec(path)
    message = str(err.value)
    assert "field 'rule.objective'" in message and str(path) in message
    assert "relative path to a .py file" in message  # what is allowed
    code, text = run_dry(path)
    assert code == 2 and "rule.objective" in error_line(text)
    assert not marker.exists()


def test_a_symbolic_link_out_of_the_project_is_refused(project, rule):
    outside = project.parent / "elsewhere"
    write_module(*rule, outside / "lpo.py", {})
    (project / "rules" / "link.py").symlink_to(outside / "lpo.py")
    with pytest.raises(ExportError, match="resolves outside"):
        load_spec(spec_file(project / "specs", "module:rules/link.py"))


def test_refs_are_looked_up_next_to_the_spec_then_in_the_working_directory(project, rule):
    write_module(*rule, project / "specs" / "near.py", {})
    spec = load_spec(spec_file(project / "specs", "module:near.py"))
    assert spec.rule.exported.rule == "lpo"
    with pytest.raises(ExportError, match=r"missing\.py: no such file \(looked in "):
        load_spec(spec_file(project / "specs", "module:missing.py"))


def test_tampered_weights_are_refused(project):
    path = project / "rules" / "lpo.py"
    text = path.read_text()
    at = text.index("0.", text.index("WEIGHTS = {")) + 2
    path.write_text(text[:at] + ("5" if text[at] != "5" else "6") + text[at + 1:])
    with pytest.raises(ExportError, match="modified after export") as err:
        load_spec(spec_file(project / "specs", "module:rules/lpo.py"))
    assert "lpo.py" in str(err.value) and "field 'rule.objective'" in str(err.value)
    with pytest.raises(ExportError, match="modified after export"):
        load_rule(path)


def _damage(text: str, how: str) -> str:
    if how == "truncated":
        return text[: text.index("\nWEIGHTS_SHA256 = ") + 1]
    if how == "syntax":  # cut inside the WEIGHTS literal
        return text[: text.index("WEIGHTS = {") + 20]
    if how == "rule":  # an unknown rule whose checksum still holds
        return text.replace('RULE = "lpo"', 'RULE = "lpo_v9"')
    if how == "format":
        return text.replace('FORMAT = "metarl-objective/1"', 'FORMAT = "metarl-objective/9"')
    if how == "code":
        return text.replace("WEIGHTS = {", "WEIGHTS = dict(**{", 1).replace(
            "}\nWEIGHTS_SHA256", "})\nWEIGHTS_SHA256", 1)
    raise AssertionError(how)


@pytest.mark.parametrize(("how", "message"), [
    ("truncated", "defines no WEIGHTS_SHA256.*truncated"),
    ("syntax", "not valid Python .*truncated or corrupted"),
    ("rule", "unknown RULE 'lpo_v9'"),
    ("format", "FORMAT 'metarl-objective/9' is not 'metarl-objective/1'"),
    ("code", "WEIGHTS .* is not a plain literal"),
])
def test_damaged_exports_fail_clearly(project, how, message):
    path = project / "rules" / "lpo.py"
    path.write_text(_damage(path.read_text(), how))
    with pytest.raises(ExportError, match=message) as err:
        read_export(path).objective()
    assert str(path) in str(err.value)
    with pytest.raises(ExportError, match=message):
        load_spec(spec_file(project / "specs", "module:rules/lpo.py"))


def test_missing_export_names_the_file(tmp_path):
    with pytest.raises(ExportError, match="nope.py: no such file"):
        read_export(tmp_path / "nope.py")


def test_module_rules_take_no_settings_and_only_they_are_exported(project):
    base = {"name": "x", "kind": "update_rule",
            "tasks": {"train": [{"env": "gymnax/CartPole-v1", "timesteps": 512}]},
            "inner": {"num_envs": 4, "num_steps": 32}}
    with pytest.raises(SpecError, match="give no rule.settings"):
        load_spec_data({**base, "rule": {"objective": "module:rules/lpo.py",
                                         "settings": {"hidden_sizes": [8]}}}, "x")
    exported = {"rule": "lpo", "settings": {}, "weights_sha256": "0" * 64}
    with pytest.raises(SpecError, match="only for a module: objective"):
        load_spec_data({**base, "rule": {"objective": "lpo", "exported": exported}}, "x")


def test_exports_are_written_with_the_usual_permissions(tmp_path, rule):
    old = os.umask(0o022)
    try:
        path = write_module(*rule, tmp_path / "rule.py", {})
    finally:
        os.umask(old)
    assert path.stat().st_mode & 0o777 == 0o644
    assert [p.name for p in tmp_path.iterdir()] == ["rule.py"]  # no temp file left behind


def test_the_objective_registry_knows_only_names():
    import metarl.learned.registry as registry

    tree = ast.parse(Path(registry.__file__).read_text())
    imported = {node.module for node in ast.walk(tree) if isinstance(node, ast.ImportFrom)}
    imported |= {a.name for node in ast.walk(tree) if isinstance(node, ast.Import)
                 for a in node.names}
    assert not any(name.startswith("metarl.export") for name in imported)
    with pytest.raises(ValueError, match="unknown objective"):
        make_objective("module:rules/lpo.py")


def test_spec_handling_never_loads_the_module_importer():
    """The only code in metarl that imports a file (metarl.rule_import) is for a user's own
    Python: loading specs, building kinds and running the CLI never load it."""
    code = ("import sys; from click.testing import CliRunner; from metarl.cli import main; "
            "from metarl.spec import load_spec; from metarl.programs import build_kind; "
            "build_kind(load_spec('search/lpo_classic.toml')); "
            "r = CliRunner().invoke(main, ['search', 'run', 'lpo_classic', '--dry-run']); "
            "assert r.exit_code == 0, r.output; "
            "assert 'metarl.rule_import' not in sys.modules, 'importer loaded'")
    subprocess.run([sys.executable, "-c", code], check=True, cwd=Path(__file__).parents[1])
