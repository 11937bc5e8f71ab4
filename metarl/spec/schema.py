"""The typed shape of search and task-suite specs (TOML files validated by pydantic)."""

from __future__ import annotations

from pathlib import Path
from typing import Any, Literal

from pydantic import (
    Field,
    PrivateAttr,
    SerializerFunctionWrapHandler,
    ValidationError,
    field_validator,
    model_serializer,
    model_validator,
)

from metarl.envs.registry import check_env_name
from metarl.spec.base import Strict
from metarl.spec.inner import default_inner, inner_section_type
from metarl.supervised.names import FAMILY_NAMES, PREFIX, is_supervised


class Range(Strict):
    """A real interval, sampled uniformly (or log-uniformly with `log = true`)."""

    low: float
    high: float
    log: bool = False

    @model_validator(mode="after")
    def _ordered(self) -> Range:
        if not self.low < self.high:
            raise ValueError(f"low ({self.low}) must be smaller than high ({self.high})")
        if self.log and self.low <= 0:
            raise ValueError(f"a log range needs low > 0, got {self.low}")
        return self


class Task(Strict):
    """One environment with its training budget and return normaliser."""

    env: str = Field(description="registered env name, e.g. gymnax/CartPole-v1")
    name: str | None = Field(None, description="label in tables and metrics (default: env)")
    timesteps: int = Field(gt=0, description="env steps of one inner-loop training run")
    env_params: dict[str, float | int | bool | Range] = Field(
        default_factory=dict, description="fixed values or ranges sampled per training run")
    env_kwargs: dict[str, str | int | float | bool] = Field(
        default_factory=dict, description="constructor arguments, e.g. backend = 'positional'")
    return_range: tuple[float, float] | None = Field(
        None, description="[random, target] returns: fitness is (R - random) / (target - random)")
    eval_levels: list[str] = Field(
        default_factory=list, description="curricula (inner.algorithm = 'plr'): the levels the "
        "task is scored on, named (e.g. 'SixteenRooms') or as level text; default: the env's "
        "default level")

    @field_validator("env")
    @classmethod
    def _known_env(cls, name: str) -> str:
        if is_supervised(name):  # a supervised task family, for inner.algorithm = "supervised"
            family = name[len(PREFIX):]
            if family not in FAMILY_NAMES:
                raise ValueError(f"unknown supervised task family {family!r}; allowed: "
                                 + ", ".join(PREFIX + f for f in FAMILY_NAMES))
        else:
            check_env_name(name)
        return name

    @field_validator("return_range")
    @classmethod
    def _distinct(cls, rr: tuple[float, float] | None) -> tuple[float, float] | None:
        if rr is not None and rr[0] == rr[1]:
            raise ValueError(f"the two returns must differ (got {list(rr)}): fitness is "
                             "(R - random) / (target - random)")
        return rr

    @property
    def label(self) -> str:
        return self.name or self.env.split("/", 1)[-1]

    @model_serializer(mode="wrap")
    def _without_unused_levels(self, handler: SerializerFunctionWrapHandler) -> dict[str, Any]:
        # a task without eval_levels dumps as before, so stored specs keep their hash
        data = handler(self)
        if not self.eval_levels:
            data.pop("eval_levels", None)
        return data


class TaskSuite(Strict):
    """Training tasks for searches, held-out tasks for meta-tests and evaluation; a suite of
    held-out tasks alone serves `metarl evaluate --tasks`."""

    name: str = ""
    description: str = ""
    train: list[Task] = Field(default_factory=list)
    held_out: list[Task] = Field(default_factory=list)

    @model_validator(mode="after")
    def _not_empty(self) -> TaskSuite:
        if not self.train and not self.held_out:
            raise ValueError("a task suite needs at least one [[train]] or [[held_out]] task")
        return self

    def shorter_than(self, steps: int) -> list[tuple[str, Task]]:
        """`(where, task)` for every task with fewer than `steps` timesteps (`where` is e.g.
        `train[0]`): tasks that cannot fit one PPO update of `steps` env steps."""
        return [(f"{split}[{i}]", task) for split in ("train", "held_out")
                for i, task in enumerate(getattr(self, split)) if task.timesteps < steps]


Inner = inner_section_type()  # PPO's section (metarl/ppo/spec.py) or another loop's


class Outer(Strict):
    """The outer loop: any evosax algorithm by name, random search, PES, truncated ES,
    meta-gradients or PBT (docs/outer-loops.md), with the settings the chosen loop takes."""

    algorithm: str = Field("open_es", description="open_es, snes, cma_es, random, any other "
                           "evosax algorithm by name, pes, truncated_es, meta_gradient or pbt")
    population_size: int = Field(16, ge=2, description="members per step (ES, PES)")
    generations: int = Field(10, gt=0, description="outer steps")
    truncations: int = Field(
        1, ge=1, description="stretches each inner run is cut into; online loops (pes, "
        "truncated_es, meta_gradient) learn from one stretch per step")
    sigma_init: float = Field(0.5, gt=0, description="initial search std (unit space); the "
                              "perturbation scale of pes and truncated_es")
    learning_rate: float = Field(0.1, gt=0, description="step size of the mean")
    antithetic: bool = Field(True, description="mirrored sampling (open_es)")
    optimizer: Literal["adam", "sgd", "clipup"] | None = Field(
        None, description="optimizer of the mean (default: the loop's own)")
    max_grad_norm: float | None = Field(
        None, gt=0, description="meta_gradient: clip meta-gradients to this global norm")
    batch: int | None = Field(
        None, ge=1, description="meta_gradient: inner runs averaged per meta-gradient")
    params: dict[str, float | int | bool] = Field(
        default_factory=dict, description="an evosax algorithm's own params by name")
    final_fraction: float = Field(
        0.1, gt=0, le=1, description="fitness = mean return over this last fraction of updates")

    @model_validator(mode="after")
    def _even_antithetic(self) -> Outer:
        if self.algorithm == "open_es" and self.antithetic and self.population_size % 2:
            raise ValueError(f"antithetic sampling needs an even population_size, got "
                             f"{self.population_size}")
        return self

    @model_validator(mode="after")
    def _loop_takes_its_settings(self) -> Outer:
        from metarl.outer.loop import OuterLoopError
        from metarl.outer.settings import is_online, loop_settings

        values = self.model_dump()
        # a stored spec lists every field: only those off their default count as set
        changed = {k for k, f in type(self).model_fields.items()
                   if values[k] != f.get_default(call_default_factory=True)}
        try:
            loop_settings(self.algorithm, values, changed)
        except OuterLoopError as err:
            raise ValueError(str(err)) from None
        if is_online(self.algorithm) and self.algorithm != "meta_gradient" \
                and self.truncations < 2:
            raise ValueError(f"outer loop {self.algorithm!r} learns from truncated inner runs: "
                             "set outer.truncations to 2 or more (each task's inner updates "
                             "must divide evenly)")
        return self


class Tracking(Strict):
    experiment: str | None = Field(
        None, description="MLflow experiment (default: spec name); printable, at most 250 "
        "characters")
    checkpoint_every: int = Field(5, gt=0, description="generations between checkpoints")
    trials: Literal["all", "best"] = Field(
        "all", description="child runs: every candidate, or each generation's best only")
    meta_test_every: int = Field(
        0, ge=0, description="evaluate the search mean on held-out tasks every K generations "
        "and after the last, as a child run (0: after the last only)")
    meta_test_seeds: int = Field(
        4, gt=0, description="training seeds per held-out task in a meta-test; every "
        "meta-test and its baseline use the same seeds")
    meta_test_final_fraction: float | None = Field(
        None, gt=0, le=1, description="a meta-test scores the mean return over this last "
        "fraction of updates (default: outer.final_fraction, the fitness window)")

    @field_validator("experiment")
    @classmethod
    def _printable(cls, name: str | None) -> str | None:
        if name is not None and not (name.strip() == name and 0 < len(name) <= 250
                                     and name.isprintable()):
            raise ValueError(f"{name!r}: an experiment name is 1-250 printable characters "
                             "without leading or trailing spaces")
        return name


class RuleExport(Strict):
    """What a `module:` objective was read as. Stored with the run (spec.resolved.json), so a
    resumed or evaluated run rebuilds the rule without the file; its weights come from the
    run's checkpoints."""

    rule: str = Field(description="the module's RULE, a registered objective name")
    settings: dict[str, int | float | bool | list[int] | None] = Field(
        default_factory=dict, description="the module's SETTINGS")
    weights_sha256: str = Field(description="the module's WEIGHTS_SHA256")


class Rule(Strict):
    """The learned update rule of an `update_rule` search."""

    objective: str = Field("lpo", description="lpo, lpo_temporal, learned_objective, or "
                           "module:path/to/rule.py (an exported rule to start from)")
    init: Literal["ppo", "zero"] = Field(
        "ppo", description="start near PPO-clip's drift (lpo*) or from the default init")
    settings: dict[str, int | float | bool | list[int]] = Field(
        default_factory=dict, description="objective arguments, e.g. hidden_sizes = [32]")
    exported: RuleExport | None = Field(
        None, description="filled in by metarl when it reads a module: objective")
    # the module's WEIGHTS, when this process read the file: a search starts from them
    _start: dict[str, Any] | None = PrivateAttr(None)

    @field_validator("objective")
    @classmethod
    def _known_objective(cls, name: str) -> str:
        from metarl.export.reference import MODULE_PREFIX, is_module_ref, module_ref_path
        from metarl.learned import OBJECTIVE_NAMES

        if is_module_ref(name):
            module_ref_path(name)  # the path's form; where it leads is checked on reading
        elif name not in OBJECTIVE_NAMES:
            allowed = ", ".join(OBJECTIVE_NAMES)
            raise ValueError(f"unknown objective {name!r}; allowed: {allowed}, or "
                             f"{MODULE_PREFIX}path/to/rule.py")
        return name

    @model_validator(mode="after")
    def _module_fields(self) -> Rule:
        from metarl.export.reference import is_module_ref

        if is_module_ref(self.objective) and self.settings:
            raise ValueError(f"objective {self.objective!r} is an exported rule: its settings "
                             f"come from the module, so give no rule.settings (got "
                             f"{sorted(self.settings)})")
        if not is_module_ref(self.objective) and self.exported is not None:
            raise ValueError("rule.exported is only for a module: objective (metarl fills it "
                             "in when it reads the module)")
        return self

    @model_serializer(mode="wrap")
    def _without_unread_export(self, handler: SerializerFunctionWrapHandler) -> dict[str, Any]:
        # a spec without a module: rule dumps as before, so its spec hash does not change
        data = handler(self)
        if self.exported is None:
            data.pop("exported", None)
        return data

    @property
    def start_weights(self) -> dict[str, Any] | None:
        """The exported module's WEIGHTS (nested lists) if this process read the file."""
        return self._start

    def read_module(self, source: str, spec_path: Path | None) -> Rule:
        """This rule with its `module:` objective read from the file: parsed, never run.

        A relative path is looked up in the spec file's folder, then in the working
        directory. A rule already read (a stored spec, `spec_path` None) is kept as it is, so
        resuming needs no file. Raises `ExportError` naming `source` and the field.
        """
        from metarl.export import ExportError, is_module_ref, read_module_ref

        if not is_module_ref(self.objective) or (spec_path is None and self.exported):
            return self
        bases = ([spec_path.parent] if spec_path is not None else []) + [Path.cwd()]
        where = f"{source}: field 'rule.objective'"
        try:
            export = read_module_ref(self.objective, bases)
            export.meta_params()  # RULE, SETTINGS and WEIGHTS fit together
        except ExportError as err:
            raise ExportError(f"{where}: {err}") from None
        try:
            exported = RuleExport(rule=export.rule, settings=export.settings,
                                  weights_sha256=export.weights_sha256)
        except ValidationError:
            raise ExportError(f"{where}: {export.path}: SETTINGS holds values other than "
                              "numbers, booleans and lists of ints; re-export the rule") from None
        rule = self.model_copy(update={"exported": exported})
        rule._start = export.weights
        return rule


class SearchSpec(Strict):
    """What every search spec has; each search kind's spec model adds its own section (e.g.
    `search_space`, `rule`) and is chosen by `kind` when a spec is loaded."""

    name: str = Field(pattern=r"^[A-Za-z0-9_.\-]+$")
    description: str = ""
    kind: str = Field(description="the search kind (`metarl search list` shows examples)")
    seed: int = 0
    tasks: TaskSuite
    inner: Inner = Field(default_factory=default_inner)
    outer: Outer = Field(default_factory=Outer)
    tracking: Tracking = Field(default_factory=Tracking)

    def resolve_files(self, source: str, spec_path: Path | None) -> SearchSpec:
        """This spec with the files it names read (as data, never run); a kind whose section
        names files overrides this."""
        return self

    @model_validator(mode="after")
    def _has_training_tasks(self) -> SearchSpec:
        if not self.tasks.train:
            raise ValueError("tasks.train is empty: a search needs at least one [[train]] task "
                             "(held-out tasks are only evaluated)")
        return self

    @model_validator(mode="after")
    def _inner_loop_fits_tasks(self) -> SearchSpec:
        for split in ("train", "held_out"):
            for i, task in enumerate(getattr(self.tasks, split)):
                problem = self.inner.task_mismatch(task)
                if problem:
                    raise ValueError(f"tasks.{split}[{i}].env = {task.env!r} {problem}")
        return self

    @model_validator(mode="after")
    def _budget(self) -> SearchSpec:
        batch, size = self.inner.steps_per_update, self.inner.update_size_name
        for where, task in self.tasks.shorter_than(batch)[:1]:
            raise ValueError(
                f"tasks.{where}.timesteps = {task.timesteps} is less than one inner update "
                f"({size} = {batch})")
        cuts = self.outer.truncations
        for i, task in enumerate(self.tasks.train):
            updates = task.timesteps // batch
            if updates % cuts:
                fits = [d for d in range(2, min(updates, 64) + 1) if updates % d == 0][:6]
                raise ValueError(
                    f"outer.truncations = {cuts} does not divide the {updates} inner-loop "
                    f"updates of tasks.train[{i}] (timesteps // ({size})); "
                    f"divisors: {', '.join(map(str, fits)) or 'none'}")
        return self
