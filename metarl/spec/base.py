"""What every spec model shares: strictness, and the fields every inner loop's section has."""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict, Field


class Strict(BaseModel):
    # TOML allows `nan` and `inf`; an unbounded field such as an env param would let them
    # through to every fitness, so non-finite numbers are refused everywhere
    model_config = ConfigDict(extra="forbid", frozen=True, allow_inf_nan=False)


class InnerBase(Strict):
    """The `[inner]` fields of every inner loop; each inner loop's own section adds its
    settings and is chosen by `algorithm`."""

    algorithm: str = Field(description="the inner loop")
    seeds: int = Field(1, gt=0, description="inner-loop seeds per candidate and task")

    @property
    def steps_per_update(self) -> int:
        """Env steps one inner update takes: a task's budget is cut into whole updates."""
        raise NotImplementedError

    @property
    def update_size_name(self) -> str:
        """How a message names `steps_per_update` in this section's fields."""
        raise NotImplementedError
