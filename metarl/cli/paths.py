"""Where shipped specs live: the working directory first, then the metarl checkout."""

from __future__ import annotations

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
