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

# outer loops behind one interface over a truncated inner problem (docs/outer-loops.md);
# the problem's own `Evaluation(fitness, info)` stays in metarl.outer.problem, as the name
# above is the generation-based loop's
from metarl.outer.loop import (  # noqa: E402
    OuterLoop,
    OuterLoopError,
    StepReport,
    make_outer_loop,
)
from metarl.outer.problem import TruncatedProblem, full_fitness  # noqa: E402

__all__ += ["OuterLoop", "OuterLoopError", "StepReport", "TruncatedProblem", "full_fitness",
            "make_outer_loop"]
