"""Reading spec files: TOML -> `--set` overrides -> task-suite references -> typed spec.

Every failure becomes a `SpecError` whose one-line message names the file, the field and what
is allowed, so the CLI can print it and exit with status 2 instead of a traceback.
"""

from __future__ import annotations

import hashlib
import json
import math
import tomllib
from pathlib import Path
from typing import Any

from pydantic import ValidationError

from metarl.envs.registry import EnvParamError, UnknownEnvError
from metarl.errors import UserError
from metarl.spec.schema import SearchSpec, TaskSuite


class SpecError(UserError, ValueError):
    """A spec that cannot be used; the message is meant for the user as it is."""


def read_toml(path: str | Path) -> dict[str, Any]:
    path = Path(path)
    if not path.is_file():
        raise SpecError(f"{path}: no such spec file")
    try:
        return tomllib.loads(path.read_text())
    except tomllib.TOMLDecodeError as err:
        raise SpecError(f"{path}: not valid TOML: {err}") from None


def parse_override(item: str) -> tuple[list[str], Any]:
    """`a.b=value` -> (['a', 'b'], value); the value is read as TOML, else kept as a string."""
    if "=" not in item:
        raise SpecError(f"--set {item!r}: expected KEY=VALUE, e.g. outer.generations=20")
    key, raw = item.split("=", 1)
    path = [p for p in key.strip().split(".") if p]
    if not path:
        raise SpecError(f"--set {item!r}: empty key")
    try:
        value = tomllib.loads(f"v = {raw.strip()}")["v"]
    except tomllib.TOMLDecodeError:
        value = raw.strip()
    return path, value


def apply_overrides(data: dict[str, Any], overrides: list[str]) -> dict[str, Any]:
    for item in overrides:
        path, value = parse_override(item)
        bad = non_finite(value, ".".join(path))
        if bad:
            raise SpecError(f"--set {item!r}: {_finite_only(bad)}")
        node: Any = data
        for i, part in enumerate(path[:-1]):
            if isinstance(node, list):
                node = node[_index(part, node, path[: i + 1], item)]
            else:
                node = node.setdefault(part, {})
                if not isinstance(node, dict | list):
                    raise SpecError(f"--set {item!r}: {'.'.join(path[: i + 1])} is not a table")
        last = path[-1]
        if isinstance(node, list):
            node[_index(last, node, path, item)] = value
        else:
            node[last] = value
    return data


def _index(part: str, node: list, path: list[str], item: str) -> int:
    if not part.isdigit() or int(part) >= len(node):
        raise SpecError(f"--set {item!r}: {'.'.join(path)}: expected an index below "
                        f"{len(node)}")
    return int(part)


def _resolve_tasks_ref(ref: str, spec_path: Path) -> Path:
    candidates = [Path(ref), spec_path.parent / ref, spec_path.parent.parent / ref]
    for cand in candidates:
        if cand.is_file():
            return cand
    raise SpecError(f"{spec_path}: field 'tasks': task suite file {ref!r} not found "
                    f"(looked in {', '.join(str(c.parent) for c in candidates)})")


def non_finite(data: Any, prefix: str = "") -> list[tuple[str, float]]:
    """`(field, value)` for every NaN or infinite number in nested TOML/JSON data."""
    if isinstance(data, float):
        return [] if math.isfinite(data) else [(prefix, data)]
    items = (data.items() if isinstance(data, dict)
             else enumerate(data) if isinstance(data, list | tuple) else ())
    return [hit for k, v in items for hit in non_finite(v, f"{prefix}.{k}" if prefix else str(k))]


def _finite_only(bad: list[tuple[str, float]]) -> str:
    fields = ", ".join(f"field '{where}' is {value}" for where, value in bad)
    return f"{fields}: finite numbers only (no nan or inf)"


def _format_error(source: str, err: ValidationError) -> str:
    lines = []
    for e in err.errors():
        loc = ".".join(str(p) for p in e["loc"])
        msg = e["msg"].removeprefix("Value error, ")
        if e["type"] == "extra_forbidden":
            msg = "unknown field (check the spelling; `metarl search list` shows examples)"
        elif e["type"] == "literal_error":
            msg = f"{msg} (got {e['input']!r})"
        # whole-model checks name their fields in the message itself
        lines.append(f"{source}: field '{loc}': {msg}" if loc else f"{source}: {msg}")
    return "\n".join(lines)


def load_task_suite(path: str | Path) -> TaskSuite:
    path = Path(path)
    return _validate(TaskSuite, read_toml(path), str(path))


def _validate(model: type, data: dict[str, Any], source: str) -> Any:
    # checked before pydantic, whose message for a NaN in a union field (an env param may be
    # a number, a bool or a range) is one confusing line per alternative
    bad = non_finite(data)
    if bad:
        raise SpecError(f"{source}: {_finite_only(bad)}")
    try:
        return model.model_validate(data)
    except ValidationError as err:
        raise SpecError(_format_error(source, err)) from None
    except (UnknownEnvError, EnvParamError) as err:
        raise SpecError(f"{source}: {err}") from None


def load_spec_data(data: dict[str, Any], source: str, spec_path: Path | None = None,
                   overrides: list[str] | None = None) -> SearchSpec:
    overrides = list(overrides or [])
    # `--set tasks=FILE` swaps the whole suite, so it applies before the suite is inlined
    swaps = [o for o in overrides if o.partition("=")[0].strip() == "tasks"]
    data = apply_overrides(data, swaps)
    tasks = data.get("tasks")
    if isinstance(tasks, str):  # inline the suite first so that --set can reach into it
        suite_path = _resolve_tasks_ref(tasks, spec_path or Path(source))
        data["tasks"] = read_toml(suite_path)
        source = f"{source} (tasks from {suite_path})"
    data = apply_overrides(data, [o for o in overrides if o not in swaps])
    model = spec_model(data, source)
    spec = _validate(model, _without_legacy_sections(data, model), source)
    _check_outer_fits_kind(spec, source)
    return spec.resolve_files(source, spec_path)  # e.g. a module: rule, parsed, never run


def _check_outer_fits_kind(spec: SearchSpec, source: str) -> None:
    from metarl.outer.settings import needs_gradients
    from metarl.programs.kind import kind_class

    if needs_gradients(spec.outer.algorithm) and not kind_class(spec.kind).differentiable:
        raise SpecError(f"{source}: fields 'outer.algorithm' and 'kind': outer loop "
                        f"{spec.outer.algorithm!r} differentiates the fitness, and kind "
                        f"{spec.kind!r} has no differentiable fitness; use an ES, 'pes' or "
                        "'truncated_es'")


def spec_model(data: dict[str, Any], source: str) -> type[SearchSpec]:
    """The spec model of the kind `data` names (its own section on top of `SearchSpec`)."""
    from metarl.programs.kind import kind_class, kind_names

    kind = data.get("kind")
    if not isinstance(kind, str):
        return SearchSpec  # which reports the missing or mistyped field
    try:
        return kind_class(kind).Spec
    except KeyError:
        raise SpecError(f"{source}: field 'kind': unknown search kind {kind!r}; allowed: "
                        f"{', '.join(kind_names())}") from None


# sections every stored spec carried, whatever its kind, before each kind owned its own
_LEGACY_DEFAULTS = {"search_space": {}, "rule": {"objective": "lpo", "init": "ppo",
                                                 "settings": {}}}


def _without_legacy_sections(data: dict[str, Any], model: type[SearchSpec]) -> dict[str, Any]:
    """`data` without another kind's section left at its default (runs stored before kinds
    owned their sections); anything else in another kind's section stays, and is refused."""
    return {k: v for k, v in data.items()
            if k in model.model_fields or _LEGACY_DEFAULTS.get(k, object()) != v}


def load_spec(path: str | Path, overrides: list[str] | None = None) -> SearchSpec:
    """Read, override and validate a search spec file."""
    path = Path(path)
    return load_spec_data(read_toml(path), str(path), path, overrides)


def flatten(data: Any, prefix: str = "") -> dict[str, Any]:
    """Nested dicts/lists -> {'a.b.0.c': value}, for MLflow params."""
    if isinstance(data, dict):
        out: dict[str, Any] = {}
        for k, v in data.items():
            out.update(flatten(v, f"{prefix}{k}."))
        return out
    if isinstance(data, list | tuple) and any(isinstance(v, dict) for v in data):
        out = {}
        for i, v in enumerate(data):
            out.update(flatten(v, f"{prefix}{i}."))
        return out
    return {prefix.rstrip("."): data}


def spec_json(spec: SearchSpec) -> str:
    """Canonical JSON of a validated spec: what is stored with a run and resumed from."""
    return json.dumps(spec.model_dump(mode="json"), sort_keys=True, indent=1)


def spec_hash(spec: SearchSpec) -> str:
    return hashlib.sha256(spec_json(spec).encode()).hexdigest()[:12]
