"""Supervised inner loops on cheap, locally generated tasks, for meta-training learned
optimizers: task families (`member`), their datasets and networks, and `Supervised`, an inner
loop with the protocol of `metarl.ppo.PPO`. See docs/supervised.md.

The re-exports are loaded on first use (PEP 562), so `metarl.supervised.names` can be imported
by spec validation and the env registry without importing jax or numpy.
"""

from __future__ import annotations

import importlib
from typing import Any

from metarl.supervised.names import FAMILY_NAMES, PREFIX, is_supervised

_LAZY = {"SupervisedHParams": "config", "TaskConfig": "families", "member": "families",
         "Supervised": "train", "SupervisedState": "train", "log_improvement": "train"}

__all__ = ["FAMILY_NAMES", "PREFIX", "Supervised", "SupervisedHParams", "SupervisedState",
           "TaskConfig", "is_supervised", "log_improvement", "member"]


def __getattr__(name: str) -> Any:
    if name in _LAZY:
        return getattr(importlib.import_module(f"metarl.supervised.{_LAZY[name]}"), name)
    raise AttributeError(f"module 'metarl.supervised' has no attribute {name!r}")
