"""A search kind: what is searched, how a candidate is scored, described, exported, compared
and pictured. The runner, the tracker and the CLI talk to a kind only through these methods;
a new kind is a subclass registered with `register_kind` (see docs/extending.md)."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any, ClassVar, NamedTuple

import jax
import numpy as np
from matplotlib.figure import Figure

from metarl.errors import UserError
from metarl.outer.problem import TruncatedProblem
from metarl.spec.schema import SearchSpec, Task

PyTree = Any


class NotSupported(UserError):
    """A command asked a kind for something it does not offer (e.g. a module to export)."""


class MemberRun(NamedTuple):
    """A child run a kind makes of a search's whole history (e.g. one PBT member): a sequence
    metric becomes a history with steps 0..n-1."""

    name: str
    params: dict[str, Any]
    metrics: dict[str, float | Sequence[float]]
    tags: dict[str, str]


class SearchKind:
    """The base every search kind derives from. Subclasses set `name` and `Spec` (the
    kind's spec model: `SearchSpec` plus its own section) and implement `initial_mean`,
    `problem` and `steps_per_candidate`; every other method has a neutral default."""

    name: ClassVar[str]
    Spec: ClassVar[type[SearchSpec]]
    # closed-form comparisons `metarl evaluate` may train beside a candidate
    baselines: ClassVar[tuple[str, ...]] = ()
    # whether `problem(..., differentiable=True)` gives meaningful gradients (meta-gradients)
    differentiable: ClassVar[bool] = False

    def __init__(self, spec: SearchSpec):
        self.spec = spec
        self.meta_test: Any = None  # a MetaTest when the spec has held-out tasks

    # -- what is searched and how it scores --------------------------------------------------
    def initial_mean(self) -> PyTree:
        """The meta-parameters a search starts from (a pytree of arrays)."""
        raise NotImplementedError

    def sampler(self) -> Callable[[jax.Array], PyTree] | None:
        """A prior to draw candidates from for random search; None: around the mean."""
        return None

    def problem(self, truncations: int = 1, differentiable: bool = False) -> TruncatedProblem:
        """What the outer loop optimises: one candidate's inner run(s), cut into
        `truncations` stretches, scored by a fitness to maximise (see
        `metarl.outer.problem`). With `differentiable`, the fitness's gradient with respect
        to the candidate is meaningful (meta-gradient outer loops); a kind that cannot offer
        that raises `NotSupported`."""
        raise NotImplementedError

    @property
    def steps_per_candidate(self) -> int:
        """Env steps one candidate's evaluation takes (for throughput figures)."""
        raise NotImplementedError

    # -- what tracking records ----------------------------------------------------------------
    def member_metrics(self, info: Any) -> dict[str, np.ndarray]:
        """`(pop,)` figures per member from the members' `Evaluation.info`, logged with each
        trial."""
        return {}

    def generation_metrics(self, info: Any) -> dict[str, float]:
        """Figures of a whole generation from `Evaluation.info`."""
        return {}

    def describe(self, params: PyTree) -> dict[str, Any]:
        """A candidate as a trial's MLflow params."""
        return {}

    def population_columns(self, population: PyTree) -> dict[str, np.ndarray]:
        """Extra `(pop,)` columns of population.csv."""
        return {}

    def export_params(self, params: PyTree) -> dict[str, Any]:
        """A candidate as JSON (best_params.json, mean_params.json)."""
        return {}

    def headline(self, params: PyTree) -> dict[str, float]:
        """The few numbers the CLI prints for the best and the mean candidate."""
        return {}

    def figures(self, mean: PyTree, generation: int) -> dict[str, Figure]:
        """Pictures of the mean at a checkpoint: {artifact path: figure}."""
        return {}

    def loop_settings(self) -> dict[str, Any]:
        """Settings the kind hands its outer loop, for a loop that takes them (PBT: how to
        explore the kind's hyperparameters); the runner passes only those the loop takes."""
        return {}

    def history_artifacts(self, rows: list[dict[str, Any]]) -> dict[str, Figure | str]:
        """Artifacts made of the whole population table at a checkpoint (rows as in the
        checkpoint: `generation`, `fitness`, `extra` columns): {path: figure or text}."""
        return {}

    def member_runs(self, rows: list[dict[str, Any]]) -> list[MemberRun]:
        """Child runs made of the whole population table, logged once when a search has done
        all its generations."""
        return []

    # -- what commands do with a result ------------------------------------------------------
    def default_module_name(self) -> str:
        """Where `metarl export` writes without `--output`."""
        return f"{self.spec.name}_{self.name}.py"

    def export_module(self, params: PyTree, path: Path, provenance: dict[str, Any],
                      symbolic: bool = True) -> Path:
        """Write the candidate as a standalone Python module (`metarl export`)."""
        raise NotSupported(f"a {self.name!r} search has no module to export")

    def compare(self, candidate: PyTree, tasks: list[Task], seeds: int,
                baselines: list[str], final_fraction: float, seed: int) -> dict[str, Any]:
        """Train the candidate and each baseline on `tasks` with the same seeds (`metarl
        evaluate`): {name: RuleResult}, the candidate first."""
        raise NotSupported(f"a {self.name!r} search has nothing to compare with")

    def comparison_metrics(self, results: dict[str, Any]) -> dict[str, float]:
        """Figures of a comparison beyond final scores (e.g. how much sooner a learned
        optimizer reaches a baseline's final loss), printed and logged by `metarl evaluate`."""
        return {}


_BUILTIN = {"hparams": "metarl.programs.hparams", "update_rule": "metarl.programs.update_rule",
            "learned_optimizer": "metarl.programs.learned_optimizer", "pbt": "metarl.pbt.kind",
            "curriculum": "metarl.programs.curriculum"}
_KINDS: dict[str, type[SearchKind]] = {}


def register_kind(cls: type[SearchKind]) -> type[SearchKind]:
    """Make `cls` the kind named `cls.name` (usable as a class decorator)."""
    _KINDS[cls.name] = cls
    return cls


ENTRY_POINTS = "metarl.kinds"  # installed packages add kinds under this group


def _installed() -> dict[str, Any]:
    from importlib.metadata import entry_points

    return {ep.name: ep for ep in entry_points(group=ENTRY_POINTS)}


def kind_names() -> list[str]:
    return sorted({*_BUILTIN, *_KINDS, *_installed()})


def kind_class(name: str) -> type[SearchKind]:
    """The kind registered as `name`: built-in kinds and installed ones (entry points in the
    `metarl.kinds` group) are imported on first use. A spec names a kind, never a file."""
    if name not in _KINDS:
        if name in _BUILTIN:
            import importlib

            importlib.import_module(_BUILTIN[name])
        elif name in (installed := _installed()):
            register_kind(installed[name].load())
    if name not in _KINDS:
        raise KeyError(name)
    return _KINDS[name]


def build_kind(spec: SearchSpec) -> SearchKind:
    """The search kind `spec.kind` names, built from `spec`."""
    return kind_class(spec.kind)(spec)
