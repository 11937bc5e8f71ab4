"""Objectives by name, for spec files (`objective = "lpo"`) and the command line.

Only names: a spec's `module:` ref to an exported rule is read on the spec side
(`metarl.spec.schema.Rule`, with `metarl.export.reference`), which then builds the rule here
by its `RULE` name.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable
from typing import Any

from metarl.learned.base import LearnedObjective
from metarl.learned.baselines import DPO, PPOClip
from metarl.learned.lpo import LPO
from metarl.learned.mlp_objective import MLPObjective

_FACTORIES: dict[str, tuple[type, dict[str, Any]]] = {
    "ppo_clip": (PPOClip, {}),
    "dpo": (DPO, {}),
    "lpo": (LPO, {}),
    "lpo_temporal": (LPO, {"temporal": True}),
    "learned_objective": (MLPObjective, {}),
}
OBJECTIVE_NAMES: tuple[str, ...] = tuple(_FACTORIES)


def make_objective(name: str, **kwargs: Any) -> LearnedObjective:
    """The objective called `name`, built with `kwargs` (e.g. `hidden_sizes=(64,)`).

    `name` is one of `OBJECTIVE_NAMES`. Raises `ValueError` naming the allowed choices for an
    unknown name or argument.
    """
    if name not in _FACTORIES:
        allowed = ", ".join(repr(n) for n in OBJECTIVE_NAMES)
        # a spec may also name an exported rule; that form is read on the spec side
        raise ValueError(f"unknown objective {name!r}; choose one of {allowed} (a spec can "
                         "also start from an exported rule: 'module:path/to/rule.py')")
    cls, fixed = _FACTORIES[name]
    allowed_args = [f.name for f in dataclasses.fields(cls) if f.name not in fixed]
    unknown = sorted(set(kwargs) - set(allowed_args) - set(fixed))
    if unknown:
        raise ValueError(f"objective {name!r} has no argument(s) {unknown}; its arguments: "
                         f"{allowed_args or 'none'}")
    # a setting the name already fixes may be repeated (exported modules list all settings)
    # but not contradicted
    clash = sorted(k for k in set(kwargs) & set(fixed) if kwargs[k] != fixed[k])
    if clash:
        fixes = ", ".join(f"{k}={fixed[k]!r}" for k in clash)
        raise ValueError(f"objective {name!r} fixes {fixes}")
    factory: Callable[..., LearnedObjective] = cls
    return factory(**{**kwargs, **fixed})


def objective_settings(objective: LearnedObjective) -> dict[str, Any]:
    """The objective's constructor arguments as plain Python values (tuples as lists):
    `make_objective(objective.name, **objective_settings(objective)) == objective`."""
    return {f.name: _plain(getattr(objective, f.name)) for f in dataclasses.fields(objective)}


def _plain(value: Any) -> Any:
    return [_plain(v) for v in value] if isinstance(value, tuple | list) else value
