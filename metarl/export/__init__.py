"""Export a discovered update rule as a standalone Python module, and read one back.

`write_module` writes the rule's weights as literals plus pure `jax.numpy` functions
(`drift`, `policy_objective`) that drop into any JAX PPO; the module verifies a SHA-256 of its
weights on import. `read_export` / `load_rule` read an export back by parsing its literals,
never running it (this is what a spec's `objective = "module:path/to/rule.py"` does);
`metarl.rule_import` (outside this package, never used by specs) imports a module from a
user's own Python.
"""

from metarl.export.codegen import FORMAT, render_module, weights_digest
from metarl.export.errors import ExportError
from metarl.export.optimizer_module import render_optimizer_module, write_optimizer_module
from metarl.export.optimizer_reader import ExportedOptimizer, read_optimizer_module
from metarl.export.reader import ExportedRule, load_rule, read_export
from metarl.export.reference import (
    MODULE_PREFIX,
    is_module_ref,
    module_ref_path,
    read_module_ref,
    resolve_module_ref,
)
from metarl.export.symbolic import append_symbolic
from metarl.export.writer import write_module

__all__ = ["FORMAT", "MODULE_PREFIX", "ExportError", "ExportedOptimizer", "ExportedRule",
           "append_symbolic", "is_module_ref", "load_rule", "module_ref_path",
           "read_export", "read_module_ref", "read_optimizer_module", "render_module",
           "render_optimizer_module", "resolve_module_ref", "weights_digest", "write_module",
           "write_optimizer_module"]
