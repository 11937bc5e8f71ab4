"""PPO's `[inner]` section, derived from `PPOConfig` and `HParams` rather than declared again:
every field of both (but the per-task `total_timesteps`) with its default, plus the bounds a
spec must respect. A field added to PPO appears here, in specs and in the docs' check."""

from __future__ import annotations

import dataclasses
from typing import Any, ClassVar, Literal, get_type_hints

from pydantic import Field, create_model, model_validator

from metarl.envs import EnvParamError, make, with_params
from metarl.envs.env import Env
from metarl.errors import UserError
from metarl.ppo.config import HParams, PPOConfig
from metarl.ppo.objectives import Objective, ppo_clip
from metarl.ppo.optimizer import OptimizerArg
from metarl.ppo.train import PPO
from metarl.spec.base import InnerBase
from metarl.supervised.names import is_supervised

SECTION_BOUNDS: dict[str, dict[str, float]] = {
    "num_envs": {"gt": 0}, "num_steps": {"gt": 0}, "update_epochs": {"gt": 0},
    "num_minibatches": {"gt": 0}, "rollout_unroll": {"gt": 0}, "minibatch_unroll": {"gt": 0},
    "lr": {"gt": 0}, "gamma": {"ge": 0, "le": 1}, "gae_lambda": {"ge": 0, "le": 1},
    "clip_eps": {"gt": 0}, "ent_coef": {"ge": 0}, "vf_coef": {"ge": 0},
    "max_grad_norm": {"gt": 0},
}
SECTION_TYPES: dict[str, Any] = {"activation": Literal["tanh", "relu"]}
_PER_TASK = ("total_timesteps",)  # each task's own `timesteps`


class EnvLoopSection(InnerBase):
    """What the sections of PPO-family inner loops share: a loop class built from a config
    class per task, on the task's env, with `HParams`. Subclasses set `Config`, `Loop` and
    `loop_name`, and add their fields (`derived_fields`) and checks."""

    Config: ClassVar[type]
    Loop: ClassVar[type]
    loop_name: ClassVar[str]

    @property
    def steps_per_update(self) -> int:
        return self.num_envs * self.num_steps  # type: ignore[attr-defined]

    @property
    def update_size_name(self) -> str:
        return "inner.num_envs * inner.num_steps"

    def hparams(self) -> HParams:
        return HParams(**{f: getattr(self, f) for f in HParams._fields})

    def config(self, timesteps: int) -> Any:
        """The loop's config for a task with `timesteps` env steps."""
        names = [f for f in self.Config.field_names() if f not in _PER_TASK]
        return self.Config(total_timesteps=timesteps, **{f: getattr(self, f) for f in names})

    def build(self, env: Env, timesteps: int, objective: Objective,
              optimizer: OptimizerArg = None) -> Any:
        """The inner loop itself, for one env and budget."""
        return self.Loop(self.config(timesteps), env, objective=objective, optimizer=optimizer)

    def optimizer_steps(self, task: Any) -> int:
        config = self.config(task.timesteps)
        return config.num_updates * config.update_epochs * config.num_minibatches

    def task_mismatch(self, task: Any) -> str | None:
        if is_supervised(task.env):
            return (f"is a supervised task family, which {self.loop_name} cannot train on: "
                    "set inner.algorithm = 'supervised', or name an env")
        return super().task_mismatch(task)

    def check_task(self, task: Any, where: str) -> None:
        task_env(task, where)

    def build_task(self, task: Any, objective: Objective | None = None,
                   optimizer: OptimizerArg = None, where: str = "tasks") -> Any:
        return self.build(task_env(task, where), task.timesteps,
                          ppo_clip if objective is None else objective, optimizer)


class _PPOSection(EnvLoopSection):
    algorithm: Literal["ppo"] = "ppo"
    Config: ClassVar[type] = PPOConfig
    Loop: ClassVar[type] = PPO
    loop_name: ClassVar[str] = "PPO"

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


def task_env(task: Any, where: str = "tasks") -> Env:
    """The task's env, its `env_params` names checked against the env's parameters (builds
    the env object, computes nothing): a typo fails before anything is compiled."""
    try:
        env = make(task.env, **task.env_kwargs)
    except UserError as err:  # a constructor argument out of range, an unreadable level
        raise EnvParamError(f"{where}: {err}") from None
    try:
        with_params(env, {k: 0 for k in task.env_params})
    except EnvParamError as err:
        raise EnvParamError(f"{where}: {err}") from None
    return env


def derived_fields(config_cls: type, bounds: dict[str, dict[str, float]],
                   types: dict[str, Any]) -> dict[str, Any]:
    """Spec fields for every field of the dataclass `config_cls` and of `HParams` (but the
    per-task `total_timesteps`), with their defaults and `bounds`; an inner loop's section is
    derived from its configuration rather than declared again."""
    hints = {**get_type_hints(config_cls), **get_type_hints(HParams)}
    defaults = {f.name: f.default for f in dataclasses.fields(config_cls)}
    defaults.update(HParams._field_defaults)
    return {name: (types.get(name, hints[name]), Field(default, **bounds.get(name, {})))
            for name, default in defaults.items() if name not in _PER_TASK}


PPOInner = create_model("PPOInner", __base__=_PPOSection, __doc__=(
    "PPO settings shared by every task; `timesteps` comes from each task."),
    **derived_fields(PPOConfig, SECTION_BOUNDS, SECTION_TYPES))
