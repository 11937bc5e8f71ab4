"""RL²'s `[inner]` section (`algorithm = "rl2"`): recurrent PPO's fields plus
`episodes_per_trial`; each task's env is played in trials of sampled tasks (`TrialEnv`)."""

from __future__ import annotations

from typing import Any, Literal

from pydantic import Field, create_model

from metarl.envs.names import METARL_ENVS
from metarl.errors import UserError
from metarl.ppo.objectives import Objective, ppo_clip
from metarl.ppo.optimizer import OptimizerArg
from metarl.ppo.spec import SECTION_TYPES, derived_fields, task_env
from metarl.rl2.trial_env import TrialEnv
from metarl.rppo.config import RecurrentPPOConfig
from metarl.rppo.spec import RECURRENT_BOUNDS, RecurrentPPOSection
from metarl.rppo.train import RecurrentPPO

# envs whose params are a task with a distribution to draw from (`sample_params`); the maze's
# params are levels for curricula, whose episodes end early at the goal, not fixed-length trials
TASK_DISTRIBUTIONS = tuple(f"metarl/{name}" for name in METARL_ENVS if name != "Maze")


class _RL2Section(RecurrentPPOSection):
    algorithm: Literal["rl2"] = "rl2"  # type: ignore[assignment]
    episodes_per_trial: int = Field(
        1, gt=0, description="episodes of one sampled task per trial; the hidden state is "
        "kept across them and reset between trials")

    def task_mismatch(self, task: Any) -> str | None:
        if task.env not in TASK_DISTRIBUTIONS:
            return (f"has no task distribution to draw trials from; RL² trains on "
                    f"{', '.join(TASK_DISTRIBUTIONS)}")
        return super().task_mismatch(task)

    def trial_env(self, task: Any, where: str = "tasks") -> TrialEnv:
        env = TrialEnv(task_env(task, where), self.episodes_per_trial)
        steps = env.trial_steps
        if steps is not None and self.num_steps % steps:  # type: ignore[attr-defined]
            raise UserError(
                f"{where}: inner.num_steps = {self.num_steps} "  # type: ignore[attr-defined]
                f"is not a multiple of the trial's {steps} steps ({self.episodes_per_trial} "
                "episode(s) per trial): every rollout must hold whole trials so that "
                "backpropagation through time sees each trial from its start")
        return env

    def check_task(self, task: Any, where: str) -> None:
        self.trial_env(task, where)

    def reference_scores(self, task: Any, seeds: int, key: Any) -> dict[str, Any]:
        """The task distribution's classic algorithms: total reward per trial on fresh tasks."""
        from metarl.meta_rl.references import reference_scores

        return reference_scores(task_env(task), self.episodes_per_trial, seeds, key)

    def build_task(self, task: Any, objective: Objective | None = None,
                   optimizer: OptimizerArg = None, where: str = "tasks") -> RecurrentPPO:
        return self.build(self.trial_env(task, where), task.timesteps,
                          ppo_clip if objective is None else objective, optimizer)


RL2Inner = create_model(
    "RL2Inner", __base__=_RL2Section,
    __doc__="RL² (Duan et al. 2016): recurrent PPO over trials of sampled tasks.",
    **derived_fields(RecurrentPPOConfig, RECURRENT_BOUNDS, SECTION_TYPES))
