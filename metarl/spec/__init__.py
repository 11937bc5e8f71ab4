"""Search and task-suite specs: TOML files validated into typed objects."""

from metarl.spec.loader import (
    SpecError,
    flatten,
    load_spec,
    load_spec_data,
    load_task_suite,
    spec_hash,
    spec_json,
)
from metarl.spec.schema import Inner, Outer, Range, SearchSpec, Task, TaskSuite, Tracking

__all__ = ["Inner", "Outer", "Range", "SearchSpec", "SpecError", "Task", "TaskSuite",
           "Tracking", "flatten", "load_spec", "load_spec_data", "load_task_suite",
           "spec_hash", "spec_json"]
