"""The table of every population member's fitness, one row per member per generation.

Rows are kept per generation so that a resumed search that re-runs generation g replaces
g's rows instead of duplicating them, and each generation is formatted to CSV once.
"""

from __future__ import annotations

import csv
import io
from collections.abc import Mapping
from typing import Any

import numpy as np

BASE_COLUMNS = ("generation", "member", "fitness")


class PopulationTable:
    def __init__(self) -> None:
        # generation -> raw arrays (still possibly on device) or formatted (columns, lines)
        self._raw: dict[int, tuple[Any, dict[str, Any]]] = {}
        self._formatted: dict[int, tuple[tuple[str, ...], list[str]]] = {}
        self.dirty = False

    def __len__(self) -> int:
        return len(self._raw.keys() | self._formatted.keys())

    def add(self, generation: int, fitness: Any, extra: Mapping[str, Any] | None = None) -> None:
        shape = np.shape(fitness)  # reads .shape, so a jax array is not waited for
        if len(shape) != 1:
            raise ValueError(f"fitness must be one value per member (shape (pop,)), "
                             f"got shape {shape}")
        extra = dict(extra or {})
        for name, value in extra.items():
            if name in BASE_COLUMNS or not name or any(c in name for c in ',"\n\r'):
                raise ValueError(f"invalid population column name {name!r}")
            if np.shape(value)[:1] != shape:
                raise ValueError(f"population column {name!r} has shape {np.shape(value)}; "
                                 f"its first axis must match fitness {shape}")
        generation = int(generation)
        self._raw[generation] = (_snapshot(fitness), {k: _snapshot(v) for k, v in extra.items()})
        self._formatted.pop(generation, None)
        self.dirty = True

    def to_csv(self) -> str:
        for generation, (fitness, extra) in self._raw.items():
            self._formatted[generation] = _format(generation, fitness, extra)
        self._raw.clear()
        columns = list(BASE_COLUMNS)
        for cols, _ in self._formatted.values():
            columns += [c for c in cols if c not in columns]
        header = tuple(columns)
        out = [",".join(header)]
        for generation in sorted(self._formatted):
            cols, lines = self._formatted[generation]
            out.extend(lines if cols == header else _reorder(cols, lines, header))
        return "\n".join(out) + "\n"

    def load_csv(self, text: str) -> None:
        """Take rows from an earlier population.csv (a resumed run keeps its history)."""
        rows = text.splitlines()
        if not rows:
            return
        header = tuple(next(csv.reader([rows[0]])))
        if header[:len(BASE_COLUMNS)] != BASE_COLUMNS:
            raise ValueError(f"not a population table: header {rows[0]!r}")
        for line in rows[1:]:
            if not line:
                continue
            generation = int(line.split(",", 1)[0])
            if generation in self._raw:
                continue
            self._formatted.setdefault(generation, (header, []))[1].append(line)


def _snapshot(value: Any) -> Any:
    # numpy arrays may be reused by the caller for the next generation: copy them now;
    # jax arrays are immutable and copying would wait for the device, so keep them as they are
    if isinstance(value, np.ndarray | list | tuple) or not hasattr(value, "__array__"):
        return np.array(value, copy=True)
    return value


def _format(generation: int, fitness: Any, extra: dict[str, Any]) -> tuple[tuple[str, ...],
                                                                           list[str]]:
    fitness = np.asarray(fitness)
    n = fitness.shape[0]
    columns = list(BASE_COLUMNS)
    cells = [np.full(n, str(generation)), np.arange(n).astype(str), _cells(fitness)]
    for name in sorted(extra):
        value = np.asarray(extra[name]).reshape(n, -1)
        if value.shape[1] == 1:
            columns.append(name)
            cells.append(_cells(value[:, 0]))
        else:
            for j in range(value.shape[1]):
                columns.append(f"{name}_{j}")
                cells.append(_cells(value[:, j]))
    lines = [",".join(row) for row in zip(*cells, strict=True)]
    return tuple(columns), lines


def _cells(column: np.ndarray) -> np.ndarray:
    if column.dtype.kind == "b":
        return column.astype(np.int8).astype(str)
    if column.dtype.kind in "iu":
        return column.astype(str)
    if column.dtype.kind == "f":
        # numpy prints the shortest text that reads back as the same float32 / float64
        return np.array([str(x) for x in column], dtype=object)
    return np.array([_quote(str(v)) for v in column.tolist()], dtype=object)


def _quote(text: str) -> str:
    if any(c in text for c in ',"\n\r'):
        return '"' + text.replace('"', '""') + '"'
    return text


def _reorder(cols: tuple[str, ...], lines: list[str], header: tuple[str, ...]) -> list[str]:
    buf = io.StringIO()
    writer = csv.DictWriter(buf, fieldnames=header, lineterminator="\n")
    for values in csv.reader(lines):
        writer.writerow(dict(zip(cols, values, strict=True)))
    return buf.getvalue().splitlines()
