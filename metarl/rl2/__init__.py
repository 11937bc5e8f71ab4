"""RL² (Duan et al. 2016): a recurrent agent trained over trials of tasks drawn from a
distribution, so that its hidden state learns each task. See docs/rl2.md."""

from metarl.rl2.trial_env import TrialEnv, TrialState

__all__ = ["TrialEnv", "TrialState"]
