"""Specs validate into typed objects; every mistake names the file and field."""

from pathlib import Path

import pytest

from metarl.spec import SpecError, flatten, load_spec, load_task_suite, spec_hash

ROOT = Path(__file__).resolve().parents[1]

GOOD = """
name = "t"
kind = "hparams"
[[tasks.train]]
env = "gymnax/CartPole-v1"
timesteps = 1024
return_range = [22.0, 500.0]
[outer]
population_size = 4
generations = 2
[search_space]
lr = { low = 1e-4, high = 1e-2, log = true }
"""


def write(tmp_path, text, name="spec.toml"):
    path = tmp_path / name
    path.write_text(text)
    return path


@pytest.mark.parametrize("spec", sorted((ROOT / "search").glob("*.toml")), ids=lambda p: p.name)
def test_shipped_specs_are_valid(spec):
    assert load_spec(spec).name == spec.stem


@pytest.mark.parametrize("suite", sorted((ROOT / "tasks").glob("*.toml")), ids=lambda p: p.name)
def test_shipped_task_suites_are_valid(suite):
    loaded = load_task_suite(suite)
    assert loaded.train or loaded.held_out


def test_evaluation_only_suite_is_not_a_search_suite(tmp_path):
    held_out = GOOD.replace("[[tasks.train]]", "[[tasks.held_out]]")
    with pytest.raises(SpecError, match="tasks.train is empty"):
        load_spec(write(tmp_path, held_out))
    with pytest.raises(SpecError, match=r"at least one \[\[train\]\] or \[\[held_out\]\]"):
        load_task_suite(write(tmp_path, 'name = "empty"\n', "suite.toml"))


def test_good_spec_and_overrides(tmp_path):
    path = write(tmp_path, GOOD)
    spec = load_spec(path, ["outer.generations=7", "inner.lr=0.001", "tasks.train.0.timesteps=2048",
                            "outer.algorithm=cma_es"])
    assert spec.outer.generations == 7 and spec.inner.lr == 0.001
    assert spec.tasks.train[0].timesteps == 2048 and spec.outer.algorithm == "cma_es"
    assert spec_hash(spec) != spec_hash(load_spec(path))
    assert flatten(spec.model_dump(mode="json"))["tasks.train.0.env"] == "gymnax/CartPole-v1"


@pytest.mark.parametrize("override,needle", [
    (["outer.population_sise=8"], "field 'outer.population_sise': unknown field"),
    (["outer.population_size=abc"], "field 'outer.population_size'"),
    (["outer.algorithm=psoo"], "unknown outer loop 'psoo'; allowed: pes, truncated_es"),
    (["outer.algorithm=pes"], "set outer.truncations to 2 or more"),
    (["outer.algorithm=cma_es", "outer.learning_rate=0.3"],
     "outer.learning_rate is not a setting of outer loop 'cma_es'"),
    (["outer.truncations=7"], "outer.truncations = 7 does not divide"),
    (["tasks.train.0.env=gymnax/Cartpole-v1"], "Did you mean gymnax/CartPole-v1"),
    (["tasks.train.0.timesteps=100"], ": tasks.train[0].timesteps = 100 is less than one"),
    (["search_space.learning_rate={low=1,high=2}"], "unknown hyperparameter"),
    (["search_space.lr={low=2,high=1}"], "must be smaller than high"),
    (["tasks.train.0.return_range=[5.0, 5.0]"], "the two returns must differ"),
    (["outer.population_size=5"], "even population_size"),
    (["inner.num_minibatches=3"], "divisible"),
    (["kind=meta_gradient"], "unknown search kind 'meta_gradient'"),
    (["tasks.train.5.env=x"], "expected an index below 1"),
    (["novalue"], "expected KEY=VALUE"),
])
def test_bad_specs_name_file_and_field(tmp_path, override, needle):
    path = write(tmp_path, GOOD)
    with pytest.raises(SpecError) as err:
        load_spec(path, override)
    assert needle in str(err.value)
    if "KEY=VALUE" not in needle and "index" not in needle:
        assert str(path) in str(err.value)


def test_missing_file_and_bad_toml(tmp_path):
    with pytest.raises(SpecError, match="no such spec file"):
        load_spec(tmp_path / "nope.toml")
    with pytest.raises(SpecError, match="not valid TOML"):
        load_spec(write(tmp_path, "name = "))


def test_task_suite_reference_resolves_next_to_spec(tmp_path):
    (tmp_path / "tasks").mkdir()
    (tmp_path / "search").mkdir()
    suite = GOOD.split("[[tasks.train]]")[1].split("[outer]")[0]
    (tmp_path / "tasks" / "mine.toml").write_text("[[train]]" + suite)
    body = GOOD.replace("[[tasks.train]]" + suite, 'tasks = "tasks/mine.toml"\n')
    spec = load_spec(write(tmp_path / "search", body))
    assert spec.tasks.train[0].timesteps == 1024
    with pytest.raises(SpecError, match="task suite file 'tasks/other.toml' not found"):
        load_spec(write(tmp_path / "search", body.replace("mine", "other"), "b.toml"))


def test_set_tasks_swaps_the_whole_suite_then_reaches_into_it():
    spec = load_spec(ROOT / "search/lpo_classic.toml",
                     ["tasks.train.0.timesteps=2048", "tasks=tasks/cartpole.toml"])
    suite = load_task_suite(ROOT / "tasks/cartpole.toml")
    assert [t.env for t in spec.tasks.train] == [t.env for t in suite.train]
    assert spec.tasks.train[0].timesteps == 2048
    with pytest.raises(SpecError, match="task suite file 'tasks/nope.toml' not found"):
        load_spec(ROOT / "search/lpo_classic.toml", ["tasks=tasks/nope.toml"])


@pytest.mark.parametrize("edit,override,field", [
    (("return_range = [22.0, 500.0]", "return_range = [22.0, 500.0]\nenv_params = "
      "{ gravity = nan }"), [], "tasks.train.0.env_params.gravity' is nan"),
    (("[22.0, 500.0]", "[22.0, inf]"), [], "tasks.train.0.return_range.1' is inf"),
    (("high = 1e-2", "high = +inf"), [], "search_space.lr.high' is inf"),
    (None, ["tasks.train.0.env_params.gravity=nan"], "--set 'tasks.train.0.env_params"
     ".gravity=nan': field 'tasks.train.0.env_params.gravity' is nan"),
    (None, ["inner.lr=-inf"], "field 'inner.lr' is -inf"),
    (None, ["search_space.lr={low=1e-4,high=nan}"], "field 'search_space.lr.high' is nan"),
])
def test_non_finite_numbers_are_refused_with_their_field(tmp_path, edit, override, field):
    text = GOOD if edit is None else GOOD.replace(*edit)
    with pytest.raises(SpecError) as err:
        load_spec(write(tmp_path, text), override)
    message = str(err.value)
    assert field in message and "finite numbers only" in message
    assert "\n" not in message


@pytest.mark.parametrize("data", [
    {"train": [{"env": "gymnax/CartPole-v1", "timesteps": 64,
                "env_params": {"gravity": float("nan")}}]},
    {"train": [{"env": "gymnax/CartPole-v1", "timesteps": 64,
                "env_params": {"gravity": {"low": 1.0, "high": float("inf")}}}]},
    {"train": [{"env": "gymnax/CartPole-v1", "timesteps": 64,
                "return_range": [0.0, float("inf")]}]},
])
def test_models_refuse_non_finite_numbers_without_the_loader(data):
    from pydantic import ValidationError

    from metarl.spec.schema import TaskSuite

    with pytest.raises(ValidationError, match="finite number"):
        TaskSuite.model_validate(data)
