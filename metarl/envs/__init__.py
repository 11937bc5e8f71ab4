"""Functional JAX environments behind one protocol, addressed by name.

Names load their module on first use (PEP 562), so code that only lists or checks env names
does not import jax.
"""

from importlib import import_module
from typing import Any

_WHERE = {
    "Env": "env", "StepResult": "env", "Box": "spaces", "Discrete": "spaces",
    "EnvParamError": "registry", "UnknownEnvError": "registry", "check_env_name": "registry",
    "list_envs": "registry", "make": "registry", "register": "registry",
    "with_params": "registry",
}

__all__ = sorted(_WHERE)


def __getattr__(name: str) -> Any:
    if name not in _WHERE:
        raise AttributeError(f"module 'metarl.envs' has no attribute {name!r}")
    return getattr(import_module(f"metarl.envs.{_WHERE[name]}"), name)
