"""Reading an exported learned optimizer module as data: its literals are parsed, the file
never runs.

The top-level literals `OPTIMIZER`, `FORMAT`, `SETTINGS`, `SHAPES`, `WEIGHTS`,
`WEIGHTS_SHA256` and `PROVENANCE` are read with `ast.literal_eval` and checked as the module
checks itself on import (every weight has its declared shape, the checksum matches), and the
weights are checked to fit the in-platform optimizer.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import jax.numpy as jnp
import numpy as np
import optax

from metarl.export.codegen import FORMAT as RULE_FORMAT
from metarl.export.codegen import weights_digest
from metarl.export.errors import ExportError
from metarl.export.optimizer_module import (
    OPTIMIZER_FORMAT,
    literal_settings,
    make_settings,
    misfit,
)
from metarl.export.reader import module_literals, syntax_tree
from metarl.learned_optimizers.registry import make_learned_optimizer

_TYPES = {"OPTIMIZER": str, "FORMAT": str, "SETTINGS": dict, "SHAPES": dict, "WEIGHTS": dict,
          "WEIGHTS_SHA256": str, "PROVENANCE": dict}
_FIX = "re-export the optimizer with metarl"


@dataclass(frozen=True)
class ExportedOptimizer:
    """The checked literals of an exported learned optimizer module."""

    path: Path
    name: str  # the family, "mlp" or "open"
    settings: dict[str, Any]  # make()'s literal settings, as written (lists, not tuples)
    weights: dict[str, Any]  # float32 arrays, nested as make() takes them
    provenance: dict[str, Any]
    digest: str  # WEIGHTS_SHA256

    def make(self, **overrides: Any) -> optax.GradientTransformationExtraArgs:
        """The in-platform optimizer the module was exported from; keyword arguments
        override the exported settings (and give `actor_mask`, which is not exported)."""
        return make_learned_optimizer(self.name, self.weights,
                                      **{**make_settings(self.settings), **overrides})


def read_optimizer_module(path: str | Path) -> ExportedOptimizer:
    """The checked contents of the learned optimizer export at `path`; the file is never
    imported.

    Raises `ExportError` naming the file if it is missing, not valid Python, not an optimizer
    export (no FORMAT, or another one such as a rule export's), missing a literal, edited
    (a weight whose shape differs from SHAPES, or values that do not match the checksum), or
    holding weights or settings the optimizer cannot use.
    """
    path = Path(path)
    values = module_literals(path, syntax_tree(path), _TYPES, _FIX, _FIX)
    fmt = values.get("FORMAT")
    if fmt is None:
        raise ExportError(f"{path}: not a learned optimizer export (no FORMAT = "
                          f"{OPTIMIZER_FORMAT!r}); only modules written by metarl's optimizer "
                          "export are read, by parsing, never running them")
    if fmt == RULE_FORMAT:
        raise ExportError(f"{path}: is an exported update rule (FORMAT {fmt!r}), not a learned "
                          "optimizer; read it with metarl.export.read_export")
    if fmt != OPTIMIZER_FORMAT:
        raise ExportError(f"{path}: FORMAT {fmt!r} is not {OPTIMIZER_FORMAT!r}, the one this "
                          f"metarl reads; {_FIX}")
    missing = [name for name in _TYPES if name not in values and name != "PROVENANCE"]
    if missing:
        raise ExportError(f"{path}: defines no {', '.join(missing)}; the file is truncated or "
                          f"not an optimizer export: {_FIX}")
    for name, value in values.items():
        if not isinstance(value, _TYPES[name]):
            raise ExportError(f"{path}: {name} is a {type(value).__name__}, not a "
                              f"{_TYPES[name].__name__}; {_FIX}")
    _check_shapes(path, values["WEIGHTS"], values["SHAPES"])
    if weights_digest(values["SETTINGS"], values["WEIGHTS"]) != values["WEIGHTS_SHA256"]:
        raise ExportError(f"{path}: SETTINGS or WEIGHTS were modified after export (they do "
                          f"not match WEIGHTS_SHA256); {_FIX}")
    name, settings = values["OPTIMIZER"], values["SETTINGS"]
    try:
        literal_settings(name, settings)  # known optimizer, known settings, numbers only
    except ExportError as err:
        raise ExportError(f"{path}: {err}") from None
    weights = _arrays(values["WEIGHTS"])
    problem = misfit(name, weights, settings)
    if problem:
        raise ExportError(f"{path}: WEIGHTS do not fit learned optimizer {name!r} with its "
                          f"SETTINGS ({problem}); {_FIX}")
    return ExportedOptimizer(path, name, settings, weights, values.get("PROVENANCE", {}),
                             values["WEIGHTS_SHA256"])


def _leaves(tree: dict, prefix: str = "") -> dict[str, Any]:
    """Dotted name -> leaf for every leaf of a nested dict (the names the module uses)."""
    out: dict[str, Any] = {}
    for key, value in tree.items():
        if isinstance(value, dict):
            out.update(_leaves(value, f"{prefix}{key}."))
        else:
            out[f"{prefix}{key}"] = value
    return out


def _check_shapes(path: Path, weights: dict, shapes: dict) -> None:
    weights, shapes = _leaves(weights), _leaves(shapes)
    if list(weights) != list(shapes):
        raise ExportError(f"{path}: WEIGHTS holds {list(weights)} but SHAPES declares "
                          f"{list(shapes)}; {_FIX}")
    for name, value in weights.items():
        try:
            shape = list(np.shape(np.asarray(value, np.float32)))
        except (TypeError, ValueError):
            shape = "no shape (ragged or not numbers)"
        if shape != shapes[name]:
            raise ExportError(f"{path}: weight {name} has shape {shape} but SHAPES declares "
                              f"{shapes[name]}; {_FIX}")


def _arrays(tree: dict) -> dict[str, Any]:
    return {k: _arrays(v) if isinstance(v, dict) else jnp.asarray(v, jnp.float32)
            for k, v in tree.items()}

