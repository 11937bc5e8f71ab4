"""PPO settings, split by what may vary inside one compiled program.

`PPOConfig` fixes array shapes and the program's structure: it is static (hashable) and
changing it recompiles. `HParams` holds the numbers that only enter arithmetic: it is a pytree
of scalars, so one compiled `train` can be `vmap`-ed over learning rates, clip ranges, etc.
"""

from __future__ import annotations

from dataclasses import dataclass, fields
from typing import NamedTuple

import jax.numpy as jnp


@dataclass(frozen=True)
class PPOConfig:
    total_timesteps: int = 500_000
    num_envs: int = 4
    num_steps: int = 128
    update_epochs: int = 4
    num_minibatches: int = 4
    hidden_sizes: tuple[int, ...] = (64, 64)
    activation: str = "tanh"
    anneal_lr: bool = True
    normalize_obs: bool = False
    # bootstrap the value of episodes cut by a time limit instead of treating them as failures
    bootstrap_truncated: bool = True
    # scan unrolling trades compile time for fewer loop iterations at run time; on the CPU an
    # unrolled rollout measured slower (more code, no fewer operations), so the default is 1
    rollout_unroll: int = 1
    minibatch_unroll: int = 1

    def __post_init__(self) -> None:
        for name in ("total_timesteps", "num_envs", "num_steps", "update_epochs",
                     "num_minibatches", "rollout_unroll", "minibatch_unroll"):
            if getattr(self, name) < 1:
                raise ValueError(f"PPOConfig.{name} must be >= 1, got {getattr(self, name)}")
        if self.batch_size % self.num_minibatches:
            raise ValueError(
                f"PPOConfig: num_envs*num_steps = {self.batch_size} is not divisible by "
                f"num_minibatches = {self.num_minibatches}")
        if self.num_updates < 1:
            raise ValueError(
                f"PPOConfig.total_timesteps = {self.total_timesteps} is less than one update "
                f"(num_envs*num_steps = {self.batch_size})")
        if self.activation not in ("tanh", "relu"):
            raise ValueError(f"PPOConfig.activation must be 'tanh' or 'relu', "
                             f"got {self.activation!r}")

    @property
    def batch_size(self) -> int:
        return self.num_envs * self.num_steps

    @property
    def minibatch_size(self) -> int:
        return self.batch_size // self.num_minibatches

    @property
    def num_updates(self) -> int:
        return self.total_timesteps // self.batch_size

    @classmethod
    def field_names(cls) -> tuple[str, ...]:
        return tuple(f.name for f in fields(cls))


class HParams(NamedTuple):
    """Numeric PPO hyperparameters (PureJaxRL's CartPole defaults)."""

    lr: float = 2.5e-4
    gamma: float = 0.99
    gae_lambda: float = 0.95
    clip_eps: float = 0.2
    ent_coef: float = 0.01
    vf_coef: float = 0.5
    max_grad_norm: float = 0.5

    def as_arrays(self) -> HParams:
        return HParams(*(jnp.asarray(v, jnp.float32) for v in self))
