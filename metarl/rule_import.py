"""Using a rule module from your own Python: import it and wrap it as a PPO objective.

`load_module` and `objective_from_module` import the file, so they run its code. They live
outside `metarl.export`, which spec handling uses, and nothing in metarl imports this module:
it is for a user's own code (a spec's `module:` ref is parsed by `metarl.export.reader`). Any
module that defines `policy_objective(...)` with argument names drawn from `ObjectiveInputs`'s
fields works (hand-written rules too); modules written by `write_module` additionally verify
their weights' checksum on import.
"""

from __future__ import annotations

import hashlib
import importlib.util
import inspect
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from types import ModuleType
from typing import Any

import jax

from metarl.export.codegen import FORMAT
from metarl.export.errors import ExportError
from metarl.export.reference import MODULE_PREFIX
from metarl.learned.base import LearnedObjective
from metarl.ppo.objectives import ObjectiveInputs

INPUT_NAMES = ObjectiveInputs._fields
_DRIFT_RULES = ("ppo_clip", "dpo", "lpo", "lpo_temporal")


def load_module(path: str | Path) -> ModuleType:
    """Import the file at `path` as a module (not added to `sys.modules`). This runs the
    file's code, as any import does: for your own Python, on files you trust.

    Raises `ExportError` naming the file if it is missing, is not valid Python (e.g.
    truncated), fails its weight checksum, fails to import, or lacks `policy_objective`
    (and `drift`, for a drift-based metarl export).
    """
    path = Path(path)
    if not path.is_file():
        raise ExportError(f"{path}: no such file")
    digest = hashlib.sha256(str(path.resolve()).encode()).hexdigest()[:16]
    spec = importlib.util.spec_from_file_location(f"metarl_rule_{digest}", path)
    if spec is None or spec.loader is None:
        raise ExportError(f"{path}: cannot be imported as a Python module")
    module = importlib.util.module_from_spec(spec)
    try:
        spec.loader.exec_module(module)
    except SyntaxError as err:
        raise ExportError(
            f"{path}: not valid Python (line {err.lineno}: {err.msg}); the file is truncated "
            "or corrupted: re-export it with `metarl export`") from None
    except ImportError as err:  # includes the module's own checksum failure
        msg = str(err)
        raise ExportError(msg if str(path) in msg or path.name in msg
                          else f"{path}: {msg}") from None
    except Exception as err:
        raise ExportError(f"{path}: importing it failed ({type(err).__name__}: {err}); the "
                          "file is corrupted or not a rule module") from err
    required = ["policy_objective"]
    if getattr(module, "FORMAT", None) == FORMAT and getattr(module, "RULE", None) in _DRIFT_RULES:
        required.append("drift")
    missing = [name for name in required if not callable(getattr(module, name, None))]
    if missing:
        raise ExportError(f"{path}: defines no {' or '.join(f'{m}()' for m in missing)}; "
                          "the file is truncated or not a rule module: re-export it")
    return module


@dataclass(frozen=True)
class ModuleObjective(LearnedObjective):
    """A PPO objective backed by a rule module's `policy_objective`; no meta-parameters.

    Equality (and the hash `jit` uses for static arguments) is by path and file contents, so
    an edited and reloaded file is a different objective.
    """

    path: str
    digest: str  # SHA-256 of the file's bytes
    fn: Callable[..., jax.Array] = field(compare=False, repr=False)
    arg_names: tuple[str, ...] = ()

    @property
    def name(self) -> str:
        return f"{MODULE_PREFIX}{self.path}"

    def init(self, key: jax.Array) -> dict:
        return {}

    def __call__(self, inputs: ObjectiveInputs, meta_params: Any = None) -> jax.Array:
        return self.fn(**{n: getattr(inputs, n) for n in self.arg_names})


def objective_from_module(path: str | Path) -> ModuleObjective:
    """A PPO-compatible objective `(inputs, meta_params) -> objective` from a rule module;
    `meta_params` is ignored. `policy_objective`'s arguments are filled by name from
    `ObjectiveInputs` (ratio, log_ratio, advantage, value_error, entropy, progress,
    clip_eps); other arguments must have defaults."""
    path = Path(path)
    module = load_module(path)
    fn = module.policy_objective
    names = []
    for p in inspect.signature(fn).parameters.values():
        if p.kind in (p.VAR_POSITIONAL, p.VAR_KEYWORD):
            continue
        if p.name in INPUT_NAMES:
            names.append(p.name)
        elif p.default is p.empty:
            raise ExportError(f"{path}: policy_objective() needs {p.name!r}, which PPO does "
                              f"not provide; PPO provides {', '.join(INPUT_NAMES)}")
    return ModuleObjective(str(path), hashlib.sha256(path.read_bytes()).hexdigest(), fn,
                           tuple(names))

