"""docs/extending.md's example kind works end to end: registered, validated, run by the CLI,
tracked, and its learning rate printed."""

import importlib.util
import sys
from pathlib import Path

from click.testing import CliRunner

from metarl.cli import main
from metarl.programs import kind

EXAMPLE = Path(__file__).resolve().parents[1] / "docs" / "examples" / "lr_only.py"
SPEC = """
name = "lr_only_example"
kind = "lr_only"
[[tasks.train]]
env = "gymnax/CartPole-v1"
timesteps = 256
return_range = [22.0, 500.0]
[inner]
num_envs = 4
num_steps = 32
num_minibatches = 2
update_epochs = 1
hidden_sizes = [8]
[outer]
algorithm = "snes"
population_size = 4
generations = 2
[lr_only]
low = 1e-4
high = 1e-2
[tracking]
trials = "best"
"""


def test_the_example_kind_runs_as_a_search(tmp_path, monkeypatch):
    spec = importlib.util.spec_from_file_location("lr_only_example", EXAMPLE)
    module = importlib.util.module_from_spec(spec)
    monkeypatch.setitem(sys.modules, spec.name, module)  # as an import would
    # registered for this test only: other tests see the built-in kinds alone
    monkeypatch.setattr(kind, "_KINDS", dict(kind._KINDS))
    spec.loader.exec_module(module)  # registers kind "lr_only"
    (tmp_path / "spec.toml").write_text(SPEC)
    monkeypatch.chdir(tmp_path)
    result = CliRunner().invoke(main, ["search", "run", "spec.toml", "--quiet",
                                       "--tracking-uri", f"sqlite:///{tmp_path / 'm.db'}"])
    assert result.exit_code == 0, result.output
    assert "FINISHED" in result.output and "best: lr=" in result.output
    bad = CliRunner().invoke(main, ["search", "run", "spec.toml", "--dry-run", "--set",
                                    "lr_only.low=-1"])
    assert bad.exit_code == 2 and "lr_only.low" in bad.output
    # an outer loop the kind cannot serve is refused at validation, before anything runs
    monkeypatch.setattr(module.LearningRateKind, "differentiable", False)
    bad = CliRunner().invoke(main, ["search", "run", "spec.toml", "--dry-run", "--set",
                                    "outer.algorithm='meta_gradient'", "--set",
                                    "outer.population_size=16", "--set", "outer.truncations=2"])
    assert bad.exit_code == 2 and "has no differentiable fitness" in bad.output
