"""PPO's `[inner]` section, derived from `PPOConfig` and `HParams` rather than declared again:
every field of both (but the per-task `total_timesteps`) with its default, plus the bounds a
spec must respect. A field added to PPO appears here, in specs and in the docs' check."""

from __future__ import annotations

import dataclasses
from typing import Any, Literal, get_type_hints

from pydantic import Field, create_model, model_validator

from metarl.envs.env import Env
from metarl.ppo.config import HParams, PPOConfig
from metarl.ppo.objectives import Objective
from metarl.ppo.train import PPO
from metarl.spec.base import InnerBase

_BOUNDS: dict[str, dict[str, float]] = {
    "num_envs": {"gt": 0}, "num_steps": {"gt": 0}, "update_epochs": {"gt": 0},
    "num_minibatches": {"gt": 0}, "rollout_unroll": {"gt": 0}, "minibatch_unroll": {"gt": 0},
    "lr": {"gt": 0}, "gamma": {"ge": 0, "le": 1}, "gae_lambda": {"ge": 0, "le": 1},
    "clip_eps": {"gt": 0}, "ent_coef": {"ge": 0}, "vf_coef": {"ge": 0},
    "max_grad_norm": {"gt": 0},
}
_TYPES: dict[str, Any] = {"activation": Literal["tanh", "relu"]}
_PER_TASK = ("total_timesteps",)  # each task's own `timesteps`


class _PPOSection(InnerBase):
    algorithm: Literal["ppo"] = "ppo"

    @model_validator(mode="before")
    @classmethod
    def _stored_defaults(cls, data: Any) -> Any:
        # specs stored before the section was derived from PPOConfig wrote `null` for "the
        # config's default" unrolling; such runs must still resume and evaluate
        if isinstance(data, dict):
            return {k: v for k, v in data.items()
                    if not (k in ("rollout_unroll", "minibatch_unroll") and v is None)}
        return data

    @model_validator(mode="after")
    def _divisible(self) -> _PPOSection:
        batch = self.num_envs * self.num_steps  # type: ignore[attr-defined]
        if batch % self.num_minibatches:  # type: ignore[attr-defined]
            raise ValueError(f"num_envs * num_steps = {batch} must be divisible by "
                             f"num_minibatches = {self.num_minibatches}")  # type: ignore
        return self

    @property
    def steps_per_update(self) -> int:
        return self.num_envs * self.num_steps  # type: ignore[attr-defined]

    @property
    def update_size_name(self) -> str:
        return "inner.num_envs * inner.num_steps"

    def hparams(self) -> HParams:
        return HParams(**{f: getattr(self, f) for f in HParams._fields})

    def config(self, timesteps: int) -> PPOConfig:
        """The `PPOConfig` of a task with `timesteps` env steps."""
        names = [f for f in PPOConfig.field_names() if f not in _PER_TASK]
        return PPOConfig(total_timesteps=timesteps, **{f: getattr(self, f) for f in names})

    def build(self, env: Env, timesteps: int, objective: Objective) -> PPO:
        """The inner loop itself, for one task."""
        return PPO(self.config(timesteps), env, objective=objective)


def _fields() -> dict[str, Any]:
    hints = {**get_type_hints(PPOConfig), **get_type_hints(HParams)}
    defaults = {f.name: f.default for f in dataclasses.fields(PPOConfig)}
    defaults.update(HParams._field_defaults)
    return {name: (_TYPES.get(name, hints[name]), Field(default, **_BOUNDS.get(name, {})))
            for name, default in defaults.items() if name not in _PER_TASK}


PPOInner = create_model("PPOInner", __base__=_PPOSection, __doc__=(
    "PPO settings shared by every task; `timesteps` comes from each task."), **_fields())
