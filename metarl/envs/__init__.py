"""Functional JAX environments behind one protocol, addressed by name."""

from metarl.envs.env import Env, StepResult
from metarl.envs.registry import (
    EnvParamError,
    UnknownEnvError,
    check_env_name,
    list_envs,
    make,
    register,
    with_params,
)
from metarl.envs.spaces import Box, Discrete

__all__ = [
    "Box", "Discrete", "Env", "EnvParamError", "StepResult", "UnknownEnvError",
    "check_env_name", "list_envs", "make", "register", "with_params",
]
