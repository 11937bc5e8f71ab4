"""Learned optimizers by name, so specs and the search kind can name one as data."""

from __future__ import annotations

import inspect
from collections.abc import Callable
from typing import Any, NamedTuple

import optax

from metarl.errors import UserError
from metarl.learned_optimizers import mlp_optimizer, open_optimizer


class LearnedOptimizer(NamedTuple):
    """A learned optimizer family: `make(meta, **settings)`, random and Adam-start weights."""

    make: Callable[..., optax.GradientTransformationExtraArgs]
    init_meta: Callable[..., Any]
    adam_init_meta: Callable[..., Any]


LEARNED_OPTIMIZERS: dict[str, LearnedOptimizer] = {
    "mlp": LearnedOptimizer(mlp_optimizer.make, mlp_optimizer.init_meta,
                            mlp_optimizer.adam_init_meta),
    "open": LearnedOptimizer(open_optimizer.make, open_optimizer.init_meta,
                             open_optimizer.adam_init_meta),
}


def get_learned_optimizer(name: str) -> LearnedOptimizer:
    """The family called `name`, or a `UserError` listing the names there are."""
    if name not in LEARNED_OPTIMIZERS:
        raise UserError(f"unknown learned optimizer {name!r}; choose one of "
                        f"{', '.join(sorted(LEARNED_OPTIMIZERS))}")
    return LEARNED_OPTIMIZERS[name]


def make_learned_optimizer(name: str, meta_params: Any, **settings: Any
                           ) -> optax.GradientTransformationExtraArgs:
    """`LEARNED_OPTIMIZERS[name].make(meta_params, **settings)`, with a `UserError` naming
    the choices for an unknown name or setting rather than a TypeError from deep inside."""
    make = get_learned_optimizer(name).make
    known = [p for p in inspect.signature(make).parameters if p != "meta_params"]
    unknown = sorted(set(settings) - set(known))
    if unknown:
        raise UserError(f"unknown setting(s) {', '.join(unknown)} for learned optimizer "
                        f"{name!r}; choose from {', '.join(known)}")
    return make(meta_params, **settings)


def optimizer_settings(name: str, settings: dict | None = None) -> dict[str, Any]:
    """`settings` completed with the defaults of the family's `make`."""
    make = get_learned_optimizer(name).make
    defaults = {k: p.default for k, p in inspect.signature(make).parameters.items()
                if p.default is not inspect.Parameter.empty}
    return {**defaults, **(settings or {})}
