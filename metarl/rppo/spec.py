"""Recurrent PPO's `[inner]` section (`algorithm = "rppo"`), derived from
`RecurrentPPOConfig` and `HParams` as `metarl.ppo.spec.PPOInner` is from PPO's: every field of
both (but the per-task `total_timesteps`) with its default, plus the bounds a spec must
respect. Not registered here: `metarl/spec/inner.py` lists the sections a spec may name."""

from __future__ import annotations

from typing import Any, Literal

from pydantic import create_model, model_validator

from metarl.envs.env import Env
from metarl.ppo.config import HParams
from metarl.ppo.objectives import Objective, ppo_clip
from metarl.ppo.optimizer import OptimizerArg
from metarl.ppo.spec import SECTION_BOUNDS, SECTION_TYPES, derived_fields, task_env
from metarl.rppo.config import RecurrentPPOConfig
from metarl.rppo.train import RecurrentPPO
from metarl.spec.base import InnerBase
from metarl.supervised.names import is_supervised

# PPO's bounds, and the GRU's width
RECURRENT_BOUNDS = {**SECTION_BOUNDS, "hidden_size": {"gt": 0}}
_PER_TASK = ("total_timesteps",)  # each task's own `timesteps`


class RecurrentPPOSection(InnerBase):
    algorithm: Literal["rppo"] = "rppo"

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

    @property
    def steps_per_update(self) -> int:
        return self.num_envs * self.num_steps  # type: ignore[attr-defined]

    @property
    def update_size_name(self) -> str:
        return "inner.num_envs * inner.num_steps"

    def hparams(self) -> HParams:
        return HParams(**{f: getattr(self, f) for f in HParams._fields})

    def config(self, timesteps: int) -> RecurrentPPOConfig:
        """The `RecurrentPPOConfig` of a task with `timesteps` env steps."""
        names = [f for f in RecurrentPPOConfig.field_names() if f not in _PER_TASK]
        return RecurrentPPOConfig(total_timesteps=timesteps,
                                  **{f: getattr(self, f) for f in names})

    def build(self, env: Env, timesteps: int, objective: Objective,
              optimizer: OptimizerArg = None) -> RecurrentPPO:
        """The inner loop itself, for one env and budget."""
        return RecurrentPPO(self.config(timesteps), env, objective=objective,
                            optimizer=optimizer)

    def optimizer_steps(self, task: Any) -> int:
        config = self.config(task.timesteps)
        return config.num_updates * config.update_epochs * config.num_minibatches

    def task_mismatch(self, task: Any) -> str | None:
        if is_supervised(task.env):
            return ("is a supervised task family, which recurrent PPO cannot train on: set "
                    "inner.algorithm = 'supervised', or name an env")
        return None

    def check_task(self, task: Any, where: str) -> None:
        task_env(task, where)

    def build_task(self, task: Any, objective: Objective | None = None,
                   optimizer: OptimizerArg = None, where: str = "tasks") -> RecurrentPPO:
        return self.build(task_env(task, where), task.timesteps,
                          ppo_clip if objective is None else objective, optimizer)


RecurrentPPOInner = create_model(
    "RecurrentPPOInner", __base__=RecurrentPPOSection,
    __doc__="Recurrent PPO settings shared by every task; `timesteps` comes from each task.",
    **derived_fields(RecurrentPPOConfig, RECURRENT_BOUNDS, SECTION_TYPES))
