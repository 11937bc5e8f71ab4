"""Recurrent PPO settings: `RecurrentPPOConfig` is static (shapes, loop lengths, network
sizes; changing it recompiles). The traced hyperparameters are PPO's `HParams`, unchanged."""

from __future__ import annotations

from dataclasses import dataclass, fields

from metarl.ppo.config import HParams

__all__ = ["HParams", "RecurrentPPOConfig"]


@dataclass(frozen=True)
class RecurrentPPOConfig:
    """Like `PPOConfig`, but minibatches are sets of whole env sequences: an update's
    `num_envs` sequences of `num_steps` steps are split into `num_minibatches` groups of
    `num_envs // num_minibatches` envs, so the GRU can be re-run over each sequence."""

    total_timesteps: int = 500_000
    num_envs: int = 8
    num_steps: int = 128
    update_epochs: int = 4
    num_minibatches: int = 4  # over envs: must divide num_envs
    hidden_size: int = 64  # the GRU's state
    embed_sizes: tuple[int, ...] = (64,)  # dense layers from the observation to the GRU
    head_sizes: tuple[int, ...] = (64,)  # hidden layers of the actor head and the critic head
    activation: str = "tanh"
    anneal_lr: bool = True
    normalize_obs: bool = False
    # bootstrap the value of episodes cut by a time limit instead of treating them as failures
    bootstrap_truncated: bool = True

    def __post_init__(self) -> None:
        for name in ("total_timesteps", "num_envs", "num_steps", "update_epochs",
                     "num_minibatches", "hidden_size"):
            if getattr(self, name) < 1:
                raise ValueError(
                    f"RecurrentPPOConfig.{name} must be >= 1, got {getattr(self, name)}")
        for name in ("embed_sizes", "head_sizes"):
            if any(int(n) < 1 for n in getattr(self, name)):
                raise ValueError(f"RecurrentPPOConfig.{name} must be positive sizes, "
                                 f"got {getattr(self, name)}")
        if self.num_envs % self.num_minibatches:
            raise ValueError(
                f"RecurrentPPOConfig: num_envs = {self.num_envs} is not divisible by "
                f"num_minibatches = {self.num_minibatches} (a minibatch is a set of whole "
                f"env sequences)")
        if self.num_updates < 1:
            raise ValueError(
                f"RecurrentPPOConfig.total_timesteps = {self.total_timesteps} is less than one "
                f"update (num_envs*num_steps = {self.batch_size})")
        if self.activation not in ("tanh", "relu"):
            raise ValueError(f"RecurrentPPOConfig.activation must be 'tanh' or 'relu', "
                             f"got {self.activation!r}")

    @property
    def batch_size(self) -> int:
        """Env steps per update."""
        return self.num_envs * self.num_steps

    @property
    def envs_per_minibatch(self) -> int:
        return self.num_envs // self.num_minibatches

    @property
    def minibatch_size(self) -> int:
        """Env steps per minibatch (`envs_per_minibatch` whole sequences)."""
        return self.envs_per_minibatch * self.num_steps

    @property
    def num_updates(self) -> int:
        return self.total_timesteps // self.batch_size

    @classmethod
    def field_names(cls) -> tuple[str, ...]:
        return tuple(f.name for f in fields(cls))
