"""`module:` references in specs: which files a spec may name, and where they are found.

A spec's `objective = "module:rules/my_rule.py"` names a rule written by `metarl export`. The
path must be relative and end in `.py`. It is looked up in the spec file's folder, then in the
working directory, and after `..` and symbolic links are resolved it must still lie inside the
folder it was looked up in, so a spec can only point at files next to it or under the
directory the command runs in. The file is parsed (`read_export`), never imported.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path, PurePath

from metarl.export.errors import ExportError
from metarl.export.reader import ExportedRule, read_export

MODULE_PREFIX = "module:"
ALLOWED = ("a relative path to a .py file written by `metarl export`, inside the spec's "
           "folder or the working directory")


def is_module_ref(ref: str) -> bool:
    return ref.startswith(MODULE_PREFIX)


def module_ref_path(ref: str) -> PurePath:
    """The path in `"module:path/to/rule.py"`, checked as text; `ValueError` if it is not
    one a spec may name (empty, absolute, home-relative, not a `.py` file)."""
    raw = ref[len(MODULE_PREFIX):].strip()
    if not raw:
        raise ValueError(f"{ref!r} names no file; expected {MODULE_PREFIX}path/to/rule.py, "
                         f"{ALLOWED}")
    path = PurePath(raw)
    if path.is_absolute() or raw.startswith(("~", "/", "\\")) or path.drive:
        raise ValueError(f"{ref!r} is an absolute path; allowed: {ALLOWED}")
    if path.suffix != ".py":
        raise ValueError(f"{ref!r} does not end in .py; allowed: {ALLOWED}")
    return path


def resolve_module_ref(ref: str, bases: Sequence[Path]) -> Path:
    """The file `ref` names: the first of `bases` that holds it inside itself.

    Raises `ExportError` if the path leaves every base (through `..` or a symbolic link) or
    is in none of them.
    """
    raw = module_ref_path(ref)
    roots = list(dict.fromkeys(Path(base).resolve() for base in bases))  # spec dir may be cwd
    escapes = False
    for root in roots:
        candidate = (root / raw).resolve()
        if not candidate.is_relative_to(root):
            escapes = True
        elif candidate.is_file():
            return candidate
    looked = ", ".join(str(root) for root in roots)
    if escapes:  # even if it is also missing from a folder it stays in: say what is wrong
        raise ExportError(f"{raw} resolves outside {looked}; allowed: {ALLOWED}")
    raise ExportError(f"{raw}: no such file (looked in {looked})")


def read_module_ref(ref: str, bases: Sequence[Path]) -> ExportedRule:
    """The checked literals of the export `ref` names (see `resolve_module_ref`)."""
    try:
        path = resolve_module_ref(ref, bases)
    except ValueError as err:
        raise ExportError(str(err)) from None
    return read_export(path)
