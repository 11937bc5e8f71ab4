"""Python literals for exported modules: exact, deterministic and within a line width.

Floats are written with `repr`, which round-trips exactly, so a float32 weight read back from
the literal is bit-identical to the exported one. The same text is what the module hashes:
`repr` of the parsed literal, so reformatting the file (line breaks, spacing) keeps the
checksum valid while changing any value does not.
"""

from __future__ import annotations

import ast
import json
import math
from typing import Any

from metarl.export.errors import ExportError

INDENT = 4


def plain(value: Any) -> Any:
    """`value` as nested dicts/lists of Python scalars (arrays become nested lists)."""
    if isinstance(value, dict):
        return {str(k): plain(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [plain(v) for v in value]
    if hasattr(value, "tolist"):  # numpy and jax arrays and scalars
        return plain(value.tolist())
    if isinstance(value, bool | int | str) or value is None:
        return value
    if isinstance(value, float):
        if not math.isfinite(value):
            raise ExportError(f"cannot export a non-finite number ({value})")
        return value
    return str(value)


def render(value: Any, indent: int = 0, column: int = 0, width: int = 88) -> str:
    """`value` (built by `plain`) as Python source whose first character sits at `column`
    and whose continuation lines are indented by `indent`; lines stay within `width` except
    for a single token longer than that."""
    inline = _inline(value)
    if column + len(inline) + 1 <= width:  # +1: the comma or bracket that follows
        return inline
    pad, close = " " * (indent + INDENT), " " * indent
    if isinstance(value, dict):
        items = []
        for k, v in value.items():
            key = _str(k)
            items.append(f"{pad}{key}: "
                         f"{render(v, indent + INDENT, indent + INDENT + len(key) + 2, width)},")
        return "{\n" + "\n".join(items) + "\n" + close + "}"
    if isinstance(value, list):
        if all(not isinstance(v, dict | list | str) for v in value):
            return "[\n" + _wrap([_inline(v) for v in value], pad, width) + "\n" + close + "]"
        items = [f"{pad}{render(v, indent + INDENT, indent + INDENT, width)}," for v in value]
        return "[\n" + "\n".join(items) + "\n" + close + "]"
    if isinstance(value, str):
        # implicit concatenation of pieces, one per line
        room = max(16, width - indent - INDENT - 2)
        pieces = [value[i:i + room] for i in range(0, len(value), room)]
        return "(\n" + "\n".join(pad + _str(p) for p in pieces) + "\n" + close + ")"
    return inline


def _str(s: str) -> str:
    # double quotes, as black/ruff-format write them; JSON string syntax is valid Python
    return json.dumps(s, ensure_ascii=False)


def _inline(value: Any) -> str:
    if isinstance(value, dict):
        return "{" + ", ".join(f"{_str(k)}: {_inline(v)}" for k, v in value.items()) + "}"
    if isinstance(value, list):
        return "[" + ", ".join(_inline(v) for v in value) + "]"
    if isinstance(value, str):
        return _str(value)
    return repr(value)


def _wrap(tokens: list[str], pad: str, width: int) -> str:
    lines, line = [], pad
    for tok in tokens:
        if line != pad and len(line) + len(tok) + 2 > width:
            lines.append(line.rstrip())
            line = pad
        line += tok + ", "
    lines.append(line.rstrip())
    return "\n".join(lines)


def check_round_trip(value: Any, source: str) -> None:
    """Fail loudly if `source` would not read back as exactly `value`."""
    if repr(ast.literal_eval(source)) != repr(value):
        raise ExportError("internal error: a literal does not read back as written")
