"""Environments addressed by name: `gymnax/CartPole-v1`, `brax/ant`, `metarl/TabularMDP`, ..."""

from __future__ import annotations

import difflib
from collections.abc import Callable
from dataclasses import fields, is_dataclass
from typing import TYPE_CHECKING, Any

from metarl.envs.names import BRAX_NAMES, GYMNAX_IDS, METARL_ENVS
from metarl.errors import UserError

if TYPE_CHECKING:  # envs load when made, so listing and checking names imports no jax
    from metarl.envs.env import Env


class UnknownEnvError(UserError, ValueError):
    """An environment name that is not registered; the message lists the closest names."""


class EnvParamError(UserError, ValueError):
    """An environment parameter that the environment does not have, or a wrong value."""


def _gymnax(env_id: str, **kw: Any) -> Env:
    from metarl.envs.gymnax_env import GymnaxEnv

    return GymnaxEnv(env_id, **kw)


def _brax(name: str, **kw: Any) -> Env:
    from metarl.envs.brax_env import BraxEnv

    return BraxEnv(name, **kw)


def _metarl(name: str, **kw: Any) -> Env:
    from importlib import import_module

    module, cls = METARL_ENVS[name]
    return getattr(import_module(f"metarl.envs.{module}"), cls)(**kw)


def _factories() -> dict[str, Callable[..., Env]]:
    table: dict[str, Callable[..., Env]] = {}
    for env_id in GYMNAX_IDS:
        table[f"gymnax/{env_id}"] = lambda env_id=env_id, **kw: _gymnax(env_id, **kw)
    for name in BRAX_NAMES:
        table[f"brax/{name}"] = lambda name=name, **kw: _brax(name, **kw)
    for name in METARL_ENVS:
        table[f"metarl/{name}"] = lambda name=name, **kw: _metarl(name, **kw)
    return table


_REGISTRY: dict[str, Callable[..., Env]] | None = None


def _registry() -> dict[str, Callable[..., Env]]:
    global _REGISTRY
    if _REGISTRY is None:
        _REGISTRY = _factories()
    return _REGISTRY


def register(name: str, factory: Callable[..., Env]) -> None:
    """Add an environment of your own under `name` (e.g. `mylab/GridWorld`)."""
    _registry()[name] = factory


def list_envs() -> list[str]:
    """Every registered environment name, sorted."""
    return sorted(_registry())


def closest_names(name: str, n: int = 3) -> list[str]:
    names = list_envs()
    by_lower = {k.lower(): k for k in names}
    short = {k.split("/", 1)[-1].lower(): k for k in names}
    hits = difflib.get_close_matches(name.lower(), list(by_lower), n=n, cutoff=0.5)
    hits += difflib.get_close_matches(name.split("/", 1)[-1].lower(), list(short), n=n,
                                      cutoff=0.5)
    found = [by_lower.get(h) or short[h] for h in hits]
    return list(dict.fromkeys(found))[:n]


def check_env_name(name: str) -> None:
    """Raise `UnknownEnvError` naming the closest registered names if `name` is unknown."""
    if name in _registry():
        return
    close = closest_names(name)
    hint = f" Did you mean {', '.join(close)}?" if close else ""
    raise UnknownEnvError(
        f"unknown environment {name!r}.{hint} Run `metarl envs list` for all names.")


def make(name: str, **kwargs: Any) -> Env:
    """Build the environment registered as `name`; keyword arguments go to its constructor
    (for Brax, `backend="positional"` and the like)."""
    check_env_name(name)
    return _registry()[name](**kwargs)


def with_params(env: Env, overrides: dict[str, Any] | None = None, params: Any = None) -> Any:
    """`params` (default: the env's defaults) with some fields replaced, by name."""
    params = env.default_params if params is None else params
    if not overrides:
        return params
    allowed = [f.name for f in fields(params)] if is_dataclass(params) else []
    unknown = sorted(set(overrides) - set(allowed))
    if unknown:
        raise EnvParamError(
            f"{env.name} has no parameter {', '.join(map(repr, unknown))}; "
            f"allowed: {', '.join(allowed) or '(none)'}")
    return params.replace(**overrides)
