"""From a spec's `[outer]` table to the settings of the outer loop it names.

One table serves every outer loop; each loop takes the fields that mean something to it
(`population_size` for ES and PES, `max_grad_norm` for meta-gradients, ...). A field the loop
does not take is ignored while it keeps its default, and refused when the spec sets it, so a
setting never silently does nothing.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from metarl.outer.loop import OuterLoopError, keyword_names, normalise_name

# spec field -> the loop's own name for it, where they differ
_ALIASES = {"pes": {"sigma_init": "sigma"}, "truncatedes": {"sigma_init": "sigma"}}
SPEC_FIELDS = ("population_size", "sigma_init", "learning_rate", "antithetic", "optimizer",
               "max_grad_norm", "batch", "params")
# loops that carry inner runs across steps
ONLINE = ("pes", "truncatedes", "metagradient", "pbt")


def needs_gradients(name: str) -> bool:
    """Whether the loop differentiates the problem's fitness (meta-gradients)."""
    return normalise_name(name) == "metagradient"


def is_online(name: str) -> bool:
    """Whether the loop learns from truncations of inner runs it carries across steps."""
    return normalise_name(name) in ONLINE


def allowed_settings(name: str) -> set[str]:
    """The settings the loop called `name` takes (`OuterLoopError` for an unknown name)."""
    from metarl.outer.es import evolution_settings, resolve
    from metarl.outer.meta_gradient import MetaGradient
    from metarl.outer.pes import PES

    key = normalise_name(name)
    if key == "pbt":
        from metarl.pbt.outer import PBT

        return keyword_names(PBT, skip=("solution",))
    if key in ("pes", "truncatedes"):
        return keyword_names(PES, skip=("truncated", "solution"))
    if key == "metagradient":
        return keyword_names(MetaGradient, skip=("solution",))
    from evosax.algorithms import algorithms

    return evolution_settings(algorithms[resolve(name)])


def loop_settings(name: str, values: dict[str, Any], explicit: Iterable[str]) -> dict[str, Any]:
    """The keyword settings for `make_outer_loop(name, ...)` from the spec's `values`;
    `explicit` are the fields the spec set itself."""
    allowed = allowed_settings(name)
    alias = _ALIASES.get(normalise_name(name), {})
    out: dict[str, Any] = {}
    for field in SPEC_FIELDS:
        value = values.get(field)
        if alias.get(field, field) in allowed:
            if value is not None and value != {}:
                out[alias.get(field, field)] = value
        elif field in explicit:
            takes = sorted(f for f in SPEC_FIELDS if alias.get(f, f) in allowed)
            raise OuterLoopError(f"outer.{field} is not a setting of outer loop {name!r}; "
                                 f"it takes: {', '.join(takes) or 'none of them'}")
    return out


def members_per_step(name: str, values: dict[str, Any]) -> int:
    """How many inner runs one step of the loop scores (for plans and throughput)."""
    settings = loop_settings(name, values, ())
    return int(settings.get("population_size", settings.get("batch", 1)))
