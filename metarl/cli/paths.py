"""Where shipped specs live: the working directory first, then the metarl checkout."""

from __future__ import annotations

import tomllib
from collections.abc import Iterator
from pathlib import Path

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


def find_spec(path: str, folder: str) -> Path:
    """`path` as given, or a bare name looked up in the shipped folders."""
    p = Path(path)
    if p.is_file():
        return p
    for base in spec_folders(folder):
        for cand in (base / path, base / f"{path}.toml"):
            if cand.is_file():
                return cand
    return p  # let the loader report it missing
