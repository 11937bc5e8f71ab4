"""Recurrent PPO's `[inner]` section (`algorithm = "rppo"`), derived from
`RecurrentPPOConfig` and `HParams` as `metarl.ppo.spec.PPOInner` is from PPO's: every field of
both (but the per-task `total_timesteps`) with its default, plus the bounds a spec must
respect; what PPO-family sections share is `metarl.ppo.spec.EnvLoopSection`."""

from __future__ import annotations

from typing import ClassVar, Literal

from pydantic import create_model, model_validator

from metarl.ppo.spec import SECTION_BOUNDS, SECTION_TYPES, EnvLoopSection, derived_fields
from metarl.rppo.config import RecurrentPPOConfig
from metarl.rppo.train import RecurrentPPO

# PPO's bounds, and the GRU's width
RECURRENT_BOUNDS = {**SECTION_BOUNDS, "hidden_size": {"gt": 0}}


class RecurrentPPOSection(EnvLoopSection):
    algorithm: Literal["rppo"] = "rppo"
    Config: ClassVar[type] = RecurrentPPOConfig
    Loop: ClassVar[type] = RecurrentPPO
    loop_name: ClassVar[str] = "recurrent PPO"

    @model_validator(mode="after")
    def _divisible(self) -> RecurrentPPOSection:
        if self.num_envs % self.num_minibatches:  # type: ignore[attr-defined]
            raise ValueError(
                f"num_envs = {self.num_envs} must be divisible by "  # type: ignore
                f"num_minibatches = {self.num_minibatches}: a recurrent minibatch is a set "
                "of whole env sequences")  # type: ignore[attr-defined]
        for name in ("embed_sizes", "head_sizes"):
            if any(n < 1 for n in getattr(self, name)):
                raise ValueError(f"{name} must be positive layer sizes, got "
                                 f"{list(getattr(self, name))}")
        return self


RecurrentPPOInner = create_model(
    "RecurrentPPOInner", __base__=RecurrentPPOSection,
    __doc__="Recurrent PPO settings shared by every task; `timesteps` comes from each task.",
    **derived_fields(RecurrentPPOConfig, RECURRENT_BOUNDS, SECTION_TYPES))
