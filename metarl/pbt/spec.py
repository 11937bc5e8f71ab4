"""The `[inner]` section of PBT as an inner loop (`algorithm = "pbt"`): the agents' own
section under `[inner.agent]` (PPO, recurrent PPO or RL², any of their fields), the population
and interval, and the PBT settings every PBT shares (`PBTFields`)."""

from __future__ import annotations

from typing import Any, Literal

from pydantic import Field, ValidationError, field_validator, model_validator

from metarl.pbt.inner_loop import PopulationLoop
from metarl.pbt.settings import PBTFields
from metarl.spec.base import InnerBase

AGENTS = ("ppo", "rppo", "rl2")  # the loops whose agents PBT can train


class PBTInner(InnerBase, PBTFields):
    """PBT over a population of agents inside every inner run."""

    algorithm: Literal["pbt"] = "pbt"
    # a section of another inner loop, read by `_agent_section`: the registry of sections
    # includes this one, so the field's type cannot be named here
    agent: Any = Field(default_factory=lambda: {"algorithm": "ppo"}, validate_default=True,
                       description="the agents' own [inner] section, e.g. { algorithm = "
                       "'ppo', num_envs = 4 }")
    population: int = Field(4, description="agents trained together (at least 2)")
    interval: int = Field(10, gt=0, description="updates between exploit/explore steps")

    @model_validator(mode="after")
    def _objective_is_the_searchs(self) -> PBTInner:
        if self.objective is not None:
            raise ValueError("inner.objective: a pbt inner loop trains with its search's "
                             "objective; PBT over a learned objective's weights is kind = "
                             "'pbt' with [pbt] objective")
        return self

    @field_validator("agent")
    @classmethod
    def _agent_section(cls, value: Any) -> Any:
        from metarl.spec.inner import INNER_SECTIONS

        if not isinstance(value, dict):
            return value  # already a section (a copy of a validated spec)
        name = value.get("algorithm", "ppo")
        if name not in AGENTS:
            raise ValueError(f"agent.algorithm = {name!r}: PBT trains agents of "
                             f"{', '.join(repr(a) for a in AGENTS)}")
        try:
            return INNER_SECTIONS[name].model_validate(value)
        except ValidationError as err:
            first = err.errors()[0]
            where = ".".join(str(p) for p in first["loc"])
            msg = first["msg"].removeprefix("Value error, ")
            raise ValueError(f"agent.{where}: {msg}" if where else f"agent: {msg}") from None

    @model_validator(mode="after")
    def _population(self) -> PBTInner:
        self.check_population(self.population, "inner.population")
        self.check_names(getattr(self.agent.hparams(), "_fields", ()), "inner.search_space",
                         self.agent.algorithm)
        return self

    @property
    def steps_per_update(self) -> int:
        return self.agent.steps_per_update  # each member's budget is the task's timesteps

    @property
    def update_size_name(self) -> str:
        return self.agent.update_size_name.replace("inner.", "inner.agent.")

    def hparams(self) -> Any:
        return self.agent.hparams()

    def task_mismatch(self, task: Any) -> str | None:
        return self.agent.task_mismatch(task)

    def check_task(self, task: Any, where: str) -> None:
        self.agent.check_task(task, where)

    def build_task(self, task: Any, objective: Any = None, optimizer: Any = None,
                   where: str = "tasks") -> PopulationLoop:
        agent = self.agent.build_task(task, objective, optimizer, where)
        return PopulationLoop(agent, self.population, self.interval, self.explorer(),
                              self.quantile)

    def optimizer_steps(self, task: Any) -> int:
        return self.agent.optimizer_steps(task)

    def reference_scores(self, task: Any, seeds: int, key: Any) -> dict[str, Any]:
        return self.agent.reference_scores(task, seeds, key)
