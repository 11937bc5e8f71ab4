"""Outer loops by name: `pbt`, `pes`, `truncated_es`, `meta_gradient`, `random` and every evosax
algorithm by its evosax name."""

from __future__ import annotations

from typing import Any

from metarl.outer.loop import OuterLoop, check_settings, keyword_names, normalise_name

PyTree = Any


def make_outer_loop(name: str, solution: PyTree, **settings: Any) -> OuterLoop:
    """The outer loop called `name`: `pes`, `truncated_es`, `meta_gradient`, `random`
    (evosax's RandomSearch) or any evosax algorithm by its evosax name (`open_es`, `snes`,
    `cma_es`, `pgpe`, `simple_es`, ...). `solution` is a pytree shaped like the
    meta-parameters. A setting the loop does not take raises `OuterLoopError`."""
    # imported on first use: evosax starts JAX's backend when imported, and a multi-host run
    # must join its peers (`maybe_initialize_distributed`) before anything does
    from metarl.outer.es import make_es
    from metarl.outer.meta_gradient import MetaGradient
    from metarl.outer.pes import PES

    key = normalise_name(name)
    if key == "pbt":
        from metarl.pbt.outer import PBT

        check_settings(name, settings, keyword_names(PBT, skip=("solution",)))
        return PBT(solution, **settings)
    if key in ("pes", "truncatedes"):
        check_settings(name, settings, keyword_names(PES, skip=("truncated", "solution")))
        return PES(solution, truncated=key == "truncatedes", **settings)
    if key == "metagradient":
        check_settings(name, settings, keyword_names(MetaGradient, skip=("solution",)))
        return MetaGradient(solution, **settings)
    return make_es(name, solution, **settings)
