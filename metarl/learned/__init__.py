"""Learned policy objectives: update rules whose behaviour lives in a meta-parameter pytree.

Every objective here is a hashable object with `init(key) -> meta_params`, `name`, and
`__call__(inputs, meta_params)`, so it plugs straight into `metarl.ppo.make_train(...,
objective=...)`; drift-based ones (Mirror Learning form `r*A - drift`) also have
`drift(meta_params, ratio, advantage, progress=None)`.
"""

from metarl.learned.base import DriftObjective, LearnedObjective
from metarl.learned.baselines import DPO, PPOClip, dpo_drift, ppo_clip_drift
from metarl.learned.fit import fit_drift, sample_drift_inputs
from metarl.learned.lpo import LPO, lpo_drift, lpo_features, lpo_gap
from metarl.learned.mlp import init_mlp, mlp
from metarl.learned.mlp_objective import MLPObjective, mlp_objective, objective_features
from metarl.learned.params import flatten_params, num_params
from metarl.learned.registry import OBJECTIVE_NAMES, make_objective, objective_settings

__all__ = ["DPO", "LPO", "OBJECTIVE_NAMES", "DriftObjective",
           "LearnedObjective", "MLPObjective", "PPOClip", "dpo_drift", "fit_drift",
           "flatten_params", "init_mlp", "lpo_drift", "lpo_features", "lpo_gap",
           "make_objective", "mlp", "mlp_objective", "num_params", "objective_features",
           "objective_settings", "ppo_clip_drift", "sample_drift_inputs"]
