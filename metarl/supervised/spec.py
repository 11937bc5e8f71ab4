"""The supervised inner loop's `[inner]` section: the learning rate shared by every task; each
task names its family member through `env = "supervised/<family>"` and `env_kwargs`, and its
number of optimizer steps through `timesteps`."""

from __future__ import annotations

from typing import Any, Literal, Protocol

from pydantic import Field

from metarl.errors import UserError
from metarl.spec.base import InnerBase
from metarl.supervised.config import SupervisedHParams
from metarl.supervised.families import TaskConfig, member
from metarl.supervised.names import FAMILY_NAMES, PREFIX, is_supervised
from metarl.supervised.train import OptimizerArg, Supervised


class TaskLike(Protocol):
    env: str
    env_kwargs: dict[str, Any]
    timesteps: int


class SupervisedInner(InnerBase):
    """Supervised training of a family member's network; `timesteps` of a task count
    optimizer steps."""

    algorithm: Literal["supervised"] = "supervised"
    lr: float = Field(1e-3, gt=0, description="learning rate given to the optimizer")

    @property
    def steps_per_update(self) -> int:
        return 1

    @property
    def update_size_name(self) -> str:
        return "one optimizer step"

    def hparams(self) -> SupervisedHParams:
        return SupervisedHParams(lr=self.lr)

    def task_mismatch(self, task: Any) -> str | None:
        """Why this loop cannot train `task` (not a `supervised/<family>` env), or None."""
        if not is_supervised(task.env):
            return (f"is not a supervised task; the supervised inner loop needs env = "
                    f"'{PREFIX}<family>' with family one of {', '.join(FAMILY_NAMES)}")
        return super().task_mismatch(task)

    def check_task(self, task: TaskLike, where: str) -> None:
        """A `UserError` naming `where` if `task` names no valid family member; loads no data."""
        try:
            self._member(task)
        except UserError as err:
            raise UserError(f"{where}: {err}") from None

    def build_task(self, task: TaskLike, objective: Any = None, optimizer: OptimizerArg = None,
                   where: str = "tasks") -> Supervised:
        """`build`, with errors naming `where`."""
        self.check_task(task, where)
        return self.build(task, objective, optimizer)

    def optimizer_steps(self, task: TaskLike) -> int:
        """One optimizer step per update: a run calls its optimizer `timesteps` times."""
        return task.timesteps

    def _member(self, task: TaskLike) -> TaskConfig:
        if not is_supervised(task.env):
            raise UserError(f"env {task.env!r} is not a supervised task; name one as "
                            f"{PREFIX}<family> with family one of {', '.join(FAMILY_NAMES)}")
        kwargs = dict(task.env_kwargs)
        index = kwargs.pop("member", 0)
        return member(task.env[len(PREFIX):], index, **kwargs)

    def build(self, task: TaskLike, objective: Any = None, optimizer: OptimizerArg = None
              ) -> Supervised:
        """The inner loop for `task`: `env_kwargs["member"]` (default 0) picks the family
        member, every other key overrides one of its `TaskConfig` fields. `objective` is
        ignored: a supervised task has no policy objective."""
        del objective
        return Supervised(self._member(task), task.timesteps, optimizer)
