"""The PPO inner loop with a pluggable policy objective and optimizer."""

from metarl.ppo.config import HParams, PPOConfig
from metarl.ppo.objectives import Objective, ObjectiveInputs, ppo_clip
from metarl.ppo.train import METRIC_NAMES, PPO, TrainState, make_train

__all__ = ["HParams", "METRIC_NAMES", "Objective", "ObjectiveInputs", "PPO", "PPOConfig",
           "TrainState", "make_train", "ppo_clip"]
