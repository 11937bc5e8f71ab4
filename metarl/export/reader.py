"""Reading an exported rule module as data: its literals are parsed, the file never runs.

Specs are data, so a spec that names an export (`objective = "module:rules/my_rule.py"`)
must not execute it: the top-level literals `RULE`, `FORMAT`, `SETTINGS`, `WEIGHTS`,
`WEIGHTS_SHA256` and `PROVENANCE` are read with `ast.literal_eval` and checked against the
format and the weights' checksum, the same check the module makes on import.
"""

from __future__ import annotations

import ast
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np

from metarl.export.codegen import CHECKSUM_MESSAGE, FORMAT, weights_digest
from metarl.export.errors import ExportError
from metarl.learned.base import LearnedObjective
from metarl.learned.registry import OBJECTIVE_NAMES, make_objective

LITERALS = ("RULE", "FORMAT", "SETTINGS", "WEIGHTS", "WEIGHTS_SHA256", "PROVENANCE")
_TYPES = {"RULE": str, "FORMAT": str, "SETTINGS": dict, "WEIGHTS": dict,
          "WEIGHTS_SHA256": str, "PROVENANCE": dict}
NOT_AN_EXPORT = ("a spec only reads rules written by `metarl export`, whose literals are "
                 "parsed, never run; use a hand-written policy_objective from your own Python "
                 "code (metarl.rule_import.objective_from_module)")


@dataclass(frozen=True)
class ExportedRule:
    """The literals of an exported rule module, checked: format, types and checksum."""

    path: Path
    rule: str
    settings: dict[str, Any]
    weights: dict[str, Any]  # nested lists of Python floats, exactly as written
    weights_sha256: str
    provenance: dict[str, Any]

    def objective(self) -> LearnedObjective:
        """The in-platform objective the module was exported from."""
        if self.rule not in OBJECTIVE_NAMES:
            raise ExportError(f"{self.path}: unknown RULE {self.rule!r}; this metarl knows "
                              f"{', '.join(OBJECTIVE_NAMES)}")
        try:
            return make_objective(self.rule, **self.settings)
        except (ValueError, TypeError) as err:
            raise ExportError(f"{self.path}: cannot rebuild rule {self.rule!r} from its "
                              f"SETTINGS: {err}") from None

    def meta_params(self) -> dict[str, jax.Array]:
        """`WEIGHTS` as float32 arrays, checked to fit the objective's own shapes."""
        expected = jax.eval_shape(self.objective().init, jax.random.PRNGKey(0))
        want = {k: tuple(v.shape) for k, v in expected.items()}
        try:
            got = {k: np.shape(np.asarray(v, np.float32)) for k, v in self.weights.items()}
        except (TypeError, ValueError):  # ragged or non-numeric lists
            got = None
        if got != want:
            raise ExportError(f"{self.path}: WEIGHTS do not fit rule {self.rule!r} with its "
                              f"SETTINGS (expected shapes {want}); re-export the rule")
        return {k: jnp.asarray(v, jnp.float32) for k, v in self.weights.items()}


def read_export(path: str | Path) -> ExportedRule:
    """The checked literals of the metarl export at `path`; the file is never imported.

    Raises `ExportError` naming the file if it is missing, not valid Python (e.g.
    truncated), not a metarl export (a hand-written module), of another format, missing a
    literal, or modified after export (checksum).
    """
    path = Path(path)
    values = module_literals(path, syntax_tree(path))
    if "FORMAT" not in values:
        raise ExportError(f"{path}: not a metarl export (no FORMAT = {FORMAT!r}); "
                          f"{NOT_AN_EXPORT}")
    if values["FORMAT"] != FORMAT:
        raise ExportError(f"{path}: FORMAT {values['FORMAT']!r} is not {FORMAT!r}, the one "
                          "this metarl reads: re-export the rule with this version")
    missing = [name for name in LITERALS if name not in values and name != "PROVENANCE"]
    if missing:
        raise ExportError(f"{path}: defines no {', '.join(missing)}; the file is truncated "
                          "or not a rule module: re-export it with `metarl export`")
    for name, value in values.items():
        if not isinstance(value, _TYPES[name]):
            raise ExportError(f"{path}: {name} is a {type(value).__name__}, not a "
                              f"{_TYPES[name].__name__}; re-export it with `metarl export`")
    if weights_digest(values["SETTINGS"], values["WEIGHTS"]) != values["WEIGHTS_SHA256"]:
        raise ExportError(f"{path} {CHECKSUM_MESSAGE}")
    return ExportedRule(path, values["RULE"], values["SETTINGS"], values["WEIGHTS"],
                        values["WEIGHTS_SHA256"], values.get("PROVENANCE", {}))


def syntax_tree(path: Path) -> ast.Module:
    if not path.is_file():
        raise ExportError(f"{path}: no such file")
    try:
        return ast.parse(path.read_text(encoding="utf-8"), str(path))
    except UnicodeDecodeError:
        raise ExportError(f"{path}: not a text file; re-export it with `metarl export`") \
            from None
    except SyntaxError as err:
        raise ExportError(
            f"{path}: not valid Python (line {err.lineno}: {err.msg}); the file is truncated "
            "or corrupted: re-export it with `metarl export`") from None


def module_literals(path: Path, tree: ast.Module, names: Any = LITERALS,
                    twice: str = "re-export it with `metarl export`",
                    not_literal: str = NOT_AN_EXPORT) -> dict[str, Any]:
    """The module's top-level assignments to `names`, evaluated as literals only; `twice` and
    `not_literal` end the messages for a name assigned twice or to anything but a literal."""
    values: dict[str, Any] = {}
    for node in tree.body:
        if isinstance(node, ast.Assign) and len(node.targets) == 1:
            target, value = node.targets[0], node.value
        elif isinstance(node, ast.AnnAssign) and node.value is not None:  # reformatted by hand
            target, value = node.target, node.value
        else:
            continue
        if not isinstance(target, ast.Name) or target.id not in names:
            continue
        # a second assignment would make the parsed value differ from what the module checks
        if target.id in values:
            raise ExportError(f"{path}: assigns {target.id} twice (line {node.lineno}); "
                              f"{twice}")
        try:
            values[target.id] = ast.literal_eval(value)
        except (ValueError, TypeError, SyntaxError, MemoryError, RecursionError):
            raise ExportError(f"{path}: {target.id} (line {node.lineno}) is not a plain "
                              f"literal; {not_literal}") from None
    return values


def load_rule(path: str | Path) -> tuple[LearnedObjective, dict[str, jax.Array]]:
    """The in-platform objective and meta-parameters a metarl export was written from, e.g.
    to seed a new search with a discovered rule. The file is parsed, never imported."""
    exported = read_export(path)
    return exported.objective(), exported.meta_params()
