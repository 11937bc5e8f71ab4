"""Outer loops: ES by any evosax name, random search, PES, truncated ES and meta-gradients
behind one interface over a truncated inner problem (docs/outer-loops.md), the search step
that drives them, checkpoints and sharding."""

from metarl.outer.checkpoint import (
    CheckpointError,
    StorageError,
    check_writable,
    load_checkpoint,
    save_checkpoint,
)
from metarl.outer.loop import OuterLoop, OuterLoopError, StepReport
from metarl.outer.problem import Evaluation, TruncatedProblem, full_fitness
from metarl.outer.registry import make_outer_loop
from metarl.outer.search_step import (
    Generation,
    NoValidMembers,
    SearchState,
    init_search_state,
    make_search_step,
)
from metarl.outer.sharding import maybe_initialize_distributed, population_mesh

__all__ = ["CheckpointError", "Evaluation", "Generation", "NoValidMembers", "OuterLoop",
           "OuterLoopError", "SearchState", "StepReport", "StorageError", "TruncatedProblem",
           "check_writable", "full_fitness", "init_search_state", "load_checkpoint",
           "make_outer_loop", "make_search_step", "maybe_initialize_distributed",
           "population_mesh", "save_checkpoint"]
