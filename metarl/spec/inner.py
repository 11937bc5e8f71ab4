"""Inner loops by `inner.algorithm`. Each owns its `[inner]` section: a spec model deriving
from `InnerBase`, with `build(env, timesteps, objective)` making the inner loop of one task
and `hparams()` its traced hyperparameters. A second inner loop adds its section here."""

from __future__ import annotations

from typing import Annotated, Any, Union

from pydantic import Field

from metarl.ppo.spec import PPOInner

INNER_SECTIONS: dict[str, type] = {"ppo": PPOInner}


def inner_section_type() -> Any:
    """The `[inner]` field's type: the registered sections, told apart by `algorithm`."""
    sections = tuple(INNER_SECTIONS.values())
    if len(sections) == 1:
        return sections[0]
    return Annotated[Union[sections], Field(discriminator="algorithm")]  # noqa: UP007
