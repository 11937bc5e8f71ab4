"""Export a discovered update rule as a standalone Python module, and use one.

`write_module` writes the rule's weights as literals plus pure `jax.numpy` functions
(`drift`, `policy_objective`) that drop into any JAX PPO; the module verifies a SHA-256 of its
weights on import. `load_module` / `objective_from_module` bring one back (a spec's
`objective = "module:path/to/rule.py"`), and `load_rule` recovers the searchable rule.
"""

from metarl.export.codegen import FORMAT, render_module, weights_digest
from metarl.export.errors import ExportError
from metarl.export.loader import (
    ModuleObjective,
    load_module,
    load_rule,
    objective_from_module,
    objective_from_ref,
    parse_module_ref,
)
from metarl.export.writer import write_module

__all__ = ["FORMAT", "ExportError", "ModuleObjective", "load_module", "load_rule",
           "objective_from_module", "objective_from_ref", "parse_module_ref", "render_module",
           "weights_digest", "write_module"]
