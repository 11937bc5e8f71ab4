"""Meta-RL task baselines: classic and closed-form policies for the RL² task distributions
(`metarl/BernoulliBandit`, `metarl/TabularMDP`), independent of any agent.

`bandit_baselines` and `mdp_baselines` are modules of pure jitted functions; see
docs/meta-rl-tasks.md.
"""

from metarl.meta_rl import bandit_baselines, mdp_baselines

__all__ = ["bandit_baselines", "mdp_baselines"]
