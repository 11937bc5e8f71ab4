"""Outer loops: evolution strategies and random search over meta-parameter pytrees."""

from metarl.outer.checkpoint import (
    CheckpointError,
    StorageError,
    check_writable,
    load_checkpoint,
    save_checkpoint,
)
from metarl.outer.evolution import (
    Evaluation,
    Generation,
    NoValidMembers,
    OuterState,
    init_outer_state,
    make_generation,
)
from metarl.outer.sharding import maybe_initialize_distributed, population_mesh
from metarl.outer.strategy import Strategy, make_strategy

__all__ = ["CheckpointError", "Evaluation", "Generation", "NoValidMembers", "OuterState",
           "StorageError", "Strategy", "check_writable", "init_outer_state", "load_checkpoint",
           "make_generation", "make_strategy", "maybe_initialize_distributed",
           "population_mesh", "save_checkpoint"]
