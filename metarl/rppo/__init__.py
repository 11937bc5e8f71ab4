"""Recurrent PPO: PPO with a GRU actor-critic, shared by RL² and partially observed tasks."""

from metarl.rppo.config import RecurrentPPOConfig
from metarl.rppo.networks import RecurrentActorCritic
from metarl.rppo.train import (
    METRIC_NAMES,
    RecurrentPPO,
    RecurrentTrainState,
    make_recurrent_train,
)

__all__ = ["METRIC_NAMES", "RecurrentActorCritic", "RecurrentPPO", "RecurrentPPOConfig",
           "RecurrentTrainState", "make_recurrent_train"]
