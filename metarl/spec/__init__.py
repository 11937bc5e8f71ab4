"""Search and task-suite specs: TOML files validated into typed objects.

Names load their module on first use (PEP 562): inner loops import `metarl.spec.base` to
define their sections, and the schema imports those sections, so importing this package must
not import the schema."""

from importlib import import_module
from typing import Any

_WHERE = {
    "SpecError": "loader", "flatten": "loader", "load_spec": "loader",
    "load_spec_data": "loader", "load_task_suite": "loader", "spec_hash": "loader",
    "spec_json": "loader", "Inner": "schema", "Outer": "schema", "Range": "schema",
    "SearchSpec": "schema", "Task": "schema", "TaskSuite": "schema", "Tracking": "schema",
}

__all__ = sorted(_WHERE)


def __getattr__(name: str) -> Any:
    if name not in _WHERE:
        raise AttributeError(f"module 'metarl.spec' has no attribute {name!r}")
    return getattr(import_module(f"metarl.spec.{_WHERE[name]}"), name)
