"""Where shipped specs live: the working directory first, then the metarl checkout."""

from __future__ import annotations

import tomllib
from collections.abc import Iterator
from pathlib import Path

from metarl.errors import UserError

_REPO_ROOT = Path(__file__).resolve().parents[2]


def spec_folders(name: str) -> list[Path]:
    """`search` or `tasks` folders to look in, without duplicates."""
    found = []
    for root in (Path.cwd(), _REPO_ROOT):
        folder = root / name
        if folder.is_dir() and folder.resolve() not in [f.resolve() for f in found]:
            found.append(folder)
    return found


def shipped_specs(name: str) -> Iterator[tuple[str, dict]]:
    """(display path, parsed TOML) of every shipped spec in the `name` folders; a file that
    is not valid TOML is listed with that as its description."""
    for folder in spec_folders(name):
        for path in sorted(folder.glob("*.toml")):
            try:
                data = tomllib.loads(path.read_text())
            except tomllib.TOMLDecodeError:
                data = {"description": "(not valid TOML)"}
            yield str(path.relative_to(folder.parent)), data


def find_spec(given: str, folder: str) -> Path:
    """`given` as a path, else a shipped spec by name (`quickstart`, `quickstart.toml`) or by
    the path `metarl search list` shows (`search/quickstart.toml`), from any working folder.
    Raises a `UserError` that lists every place it looked."""
    path = Path(given).expanduser()
    if path.is_file():
        return path
    tried = [path]
    if not path.is_absolute():
        for base in spec_folders(folder):
            tried += [base / given, base / f"{given}.toml", base.parent / given]
    for cand in tried[1:]:
        if cand.is_file():
            return cand
    kind = "task suite" if folder == "tasks" else "spec"
    looked = ", ".join(dict.fromkeys(str(p) for p in tried))
    raise UserError(f"{given}: no such {kind} file (looked at {looked}); "
                    f"`metarl {folder} list` shows the shipped ones")
