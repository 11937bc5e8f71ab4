"""Learned optimizers as `optax.GradientTransformation`s whose meta-parameters (network
weights) are an argument: `make(meta_params, **settings)`, `init_meta(key)` and
`adam_init_meta(key)` (weights at which the optimizer is Adam). See
docs/learned-optimizers.md."""

from metarl.learned_optimizers import mlp_optimizer, open_optimizer
from metarl.learned_optimizers.registry import (
    LEARNED_OPTIMIZERS,
    LearnedOptimizer,
    get_learned_optimizer,
    make_learned_optimizer,
)

__all__ = ["LEARNED_OPTIMIZERS", "LearnedOptimizer", "get_learned_optimizer",
           "make_learned_optimizer", "mlp_optimizer", "open_optimizer"]
