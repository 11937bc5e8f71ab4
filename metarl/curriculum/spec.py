"""The curriculum inner loop's `[inner]` section (`algorithm = "plr"`): recurrent PPO's fields
plus the curriculum's. Each task's levels come from its env's generator (e.g. `metarl/Maze`)
or from its `env_params` ranges; its score is measured on its `eval_levels` (named levels or
level text, read by the env), or on the env's default level."""

from __future__ import annotations

import math
from typing import Any, ClassVar, Literal

import jax
import jax.numpy as jnp
from pydantic import Field, create_model

from metarl.curriculum.levels import LevelSpace, env_level_space, has_generator, range_level_space
from metarl.curriculum.loop import CurriculumConfig, CurriculumLoop, CurriculumParams
from metarl.curriculum.sampler import SamplerParams
from metarl.envs.env import Env
from metarl.errors import UserError
from metarl.ppo.objectives import Objective, ppo_clip
from metarl.ppo.optimizer import OptimizerArg
from metarl.ppo.spec import SECTION_TYPES, derived_fields, task_env
from metarl.rppo.config import RecurrentPPOConfig
from metarl.rppo.spec import RECURRENT_BOUNDS, RecurrentPPOSection
from metarl.rppo.train import RecurrentPPO

PyTree = Any


class _PLRSection(RecurrentPPOSection):
    algorithm: Literal["plr"] = "plr"  # type: ignore[assignment]
    scores_levels: ClassVar[bool] = True
    method: Literal["dr", "plr", "robust_plr", "accel"] = Field(
        "robust_plr", description="dr (domain randomisation), plr, robust_plr (no learning on "
        "fresh levels) or accel (robust PLR plus edits of replayed levels)")
    capacity: int = Field(256, gt=0, description="levels the replay buffer holds")
    prioritization: Literal["rank", "power"] = Field(
        "rank", description="score prioritisation: 1/rank or the score itself")
    score_function: Literal["pvl", "maxmc", "learned"] = Field(
        "maxmc", description="positive value loss, MaxMC, or a learned scorer (curriculum "
        "searches)")
    replay_prob: float = Field(0.5, ge=0, le=1, description="chance an update replays")
    temperature: float = Field(0.3, gt=0, description="beta of h ** (1 / beta)")
    staleness_coef: float = Field(0.3, ge=0, le=1, description="weight of staleness")
    min_fill: float = Field(0.5, ge=0, le=1, description="no replay before the buffer is "
                            "this full")
    num_edits: int = Field(5, gt=0, description="accel: edits per edited level")
    edit_rate: float = Field(1.0, ge=0, le=1, description="accel: chance a replay is "
                             "followed by edits")
    eval_every: int = Field(
        0, ge=0, description="updates between evaluations on the task's eval_levels (0: "
        "once, at the end of the run or of each truncation); must divide them to apply")

    def curriculum_config(self, env: Env) -> CurriculumConfig:
        episode = getattr(env, "episode_steps", None) or self.num_steps  # type: ignore
        return CurriculumConfig(
            method=self.method, capacity=self.capacity, prioritization=self.prioritization,
            score_function=self.score_function, min_fill=self.min_fill,
            num_edits=self.num_edits, eval_every=self.eval_every,
            eval_rollouts=math.ceil(episode / self.num_steps))  # type: ignore[attr-defined]

    def curriculum_params(self) -> CurriculumParams:
        """The section's curriculum settings as traced values."""
        mix = {"pvl": 0.0, "maxmc": 1.0, "learned": 0.0}[self.score_function]
        return CurriculumParams(
            SamplerParams(jnp.float32(self.replay_prob), jnp.float32(self.temperature),
                          jnp.float32(self.staleness_coef)),
            jnp.float32(mix), jnp.float32(self.edit_rate))

    def check_task(self, task: Any, where: str) -> None:
        env = task_env(task, where)
        level_space(task, env, where)
        eval_levels(task, env, where)

    def build_task(self, task: Any, objective: Objective | None = None,
                   optimizer: OptimizerArg = None, where: str = "tasks") -> CurriculumLoop:
        env = task_env(task, where)
        agent = RecurrentPPO(self.config(task.timesteps), env,
                             objective=ppo_clip if objective is None else objective,
                             optimizer=optimizer, per_env_params=True)
        return CurriculumLoop(agent, level_space(task, env, where), self.curriculum_config(env),
                              self.curriculum_params(), eval_levels(task, env, where),
                              getattr(env, "solved", None))


def level_space(task: Any, env: Env, where: str) -> LevelSpace:
    """The task's levels: its `env_params` ranges if it has any, else the env's generator."""
    from metarl.spec.schema import Range

    ranges = {k: v for k, v in task.env_params.items() if isinstance(v, Range)}
    if ranges:
        fixed = {k: v for k, v in task.env_params.items() if not isinstance(v, Range)}
        return range_level_space(env.default_params, ranges, fixed)
    if has_generator(env):
        return env_level_space(env)
    raise UserError(
        f"{where}: env {task.env!r} has no levels for a curriculum to choose: give the task "
        "env_params ranges (e.g. env_params.length = {{ low = 0.25, high = 1.0 }}) or use "
        "an env with a level generator (metarl/Maze)")


def eval_levels(task: Any, env: Env, where: str) -> PyTree:
    """The levels a task is scored on, stacked: its `eval_levels` read by the env
    (`named_level`), or the env's default level."""
    names = getattr(task, "eval_levels", None) or []
    if not names:
        return jax.tree.map(lambda x: jnp.asarray(x)[None], env.default_params)
    reader = getattr(env, "named_level", None)
    if reader is None:
        raise UserError(f"{where}.eval_levels: env {task.env!r} has no named levels; leave "
                        "eval_levels out to score on its default level")
    levels = [reader(name, f"{where}.eval_levels[{i}]") for i, name in enumerate(names)]
    return jax.tree.map(lambda *xs: jnp.stack([jnp.asarray(x) for x in xs]), *levels)


PLRInner = create_model(
    "PLRInner", __base__=_PLRSection,
    __doc__="A curriculum (DR, PLR, robust PLR, ACCEL) around recurrent PPO.",
    **derived_fields(RecurrentPPOConfig, RECURRENT_BOUNDS, SECTION_TYPES))
