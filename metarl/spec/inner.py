"""Inner loops by `inner.algorithm`. Each owns its `[inner]` section: a spec model deriving
from `InnerBase` (see there for what a section provides). A new inner loop adds its section
here; a spec that names no algorithm trains with PPO."""

from __future__ import annotations

from typing import Annotated, Any, Union

from pydantic import Discriminator, Tag

from metarl.curriculum.spec import PLRInner
from metarl.pbt.spec import PBTInner
from metarl.ppo.spec import PPOInner
from metarl.rl2.spec import RL2Inner
from metarl.rppo.spec import RecurrentPPOInner
from metarl.supervised.spec import SupervisedInner

INNER_SECTIONS: dict[str, type] = {"ppo": PPOInner, "rppo": RecurrentPPOInner, "rl2": RL2Inner,
                                   "supervised": SupervisedInner, "plr": PLRInner}
INNER_SECTIONS["pbt"] = PBTInner  # PBT over agents of another section (metarl/pbt/spec.py)
DEFAULT_INNER = "ppo"


def _algorithm(value: Any) -> str:
    if isinstance(value, dict):
        return value.get("algorithm", DEFAULT_INNER)
    return getattr(value, "algorithm", DEFAULT_INNER)


def inner_section_type() -> Any:
    """The `[inner]` field's type: the registered sections, told apart by `algorithm`."""
    sections = tuple(Annotated[cls, Tag(name)] for name, cls in INNER_SECTIONS.items())
    names = ", ".join(repr(n) for n in INNER_SECTIONS)
    return Annotated[Union[sections], Discriminator(  # noqa: UP007
        _algorithm, custom_error_type="unknown_inner_loop",
        custom_error_message=f"unknown inner.algorithm; allowed: {names}")]


def default_inner() -> Any:
    """The section of a spec without `[inner]`."""
    return INNER_SECTIONS[DEFAULT_INNER]()
