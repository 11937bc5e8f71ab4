"""What every spec model shares: strictness, and the fields every inner loop's section has."""

from __future__ import annotations

from typing import Any, ClassVar

from pydantic import BaseModel, ConfigDict, Field


class Strict(BaseModel):
    # TOML allows `nan` and `inf`; an unbounded field such as an env param would let them
    # through to every fitness, so non-finite numbers are refused everywhere
    model_config = ConfigDict(extra="forbid", frozen=True, allow_inf_nan=False)


class InnerBase(Strict):
    """The `[inner]` fields of every inner loop; each inner loop's own section adds its
    settings and is chosen by `algorithm`."""

    algorithm: str = Field(description="the inner loop")
    # whether the loop scores a task on its `eval_levels` (curricula)
    scores_levels: ClassVar[bool] = False
    seeds: int = Field(1, gt=0, description="inner-loop seeds per candidate and task")

    @property
    def steps_per_update(self) -> int:
        """Env steps one inner update takes: a task's budget is cut into whole updates."""
        raise NotImplementedError

    @property
    def update_size_name(self) -> str:
        """How a message names `steps_per_update` in this section's fields."""
        raise NotImplementedError

    def task_mismatch(self, task: Any) -> str | None:
        """Why this inner loop cannot train on `task` at all (e.g. an RL loop given a
        supervised task), as the end of a sentence naming the task; None if it can. Only
        looks at names: spec validation calls it."""
        if getattr(task, "eval_levels", None) and not self.scores_levels:
            return ("has eval_levels, which only a curriculum inner loop scores on (inner."
                    "algorithm = 'plr')")
        return None

    def check_task(self, task: Any, where: str) -> None:
        """Raise a `UserError` naming `where` if this inner loop cannot train on `task` (its
        env name, env params, constructor arguments); builds nothing costly."""

    def build_task(self, task: Any, objective: Any = None, optimizer: Any = None,
                   where: str = "tasks") -> Any:
        """The inner loop of one task: an object with `init`, `step`, `score`,
        `meta_objective`, `train`, `config.num_updates`, `config.batch_size` and
        `default_env_params` (see `metarl.ppo.PPO`). `objective` is a policy objective for
        loops that have one; `optimizer` fills the loop's optimizer slot (None: its own)."""
        raise NotImplementedError

    def optimizer_steps(self, task: Any) -> int:
        """How many times one run on `task` calls its optimizer (a learned optimizer's
        training horizon)."""
        raise NotImplementedError

    def reference_scores(self, task: Any, seeds: int, key: Any) -> dict[str, Any]:
        """`{name: (seeds,) scores}` of classic algorithms for `task` in this inner loop's score
        units (e.g. UCB1 and Thompson sampling beside an RL² agent on bandits), which `metarl
        evaluate` shows beside the comparison; none by default."""
        return {}
