"""Task families: priors over small supervised problems, and `member(family, index)`, the
index-th draw from one. A family member is a `TaskConfig`, plain data that fixes everything
static about a task (shapes, the dataset, the network); the inner loop's seed varies only the
initial weights and the minibatches.

Meta-training a learned optimizer on many cheap, varied tasks and testing it on held-out
members follows Metz et al. 2022 ("VeLO: Training Versatile Learned Optimizers by Scaling
Up", arXiv:2211.09760) and its task families in `learned_optimization`, at a much smaller
scale.
"""

from __future__ import annotations

import dataclasses
import math
import zlib
from dataclasses import dataclass
from typing import Any

import numpy as np

from metarl.errors import UserError
from metarl.supervised.data import DATASETS
from metarl.supervised.names import FAMILY_NAMES

ACTIVATION_NAMES: tuple[str, ...] = ("tanh", "relu", "gelu")
MODEL_NAMES: tuple[str, ...] = ("mlp", "cnn", "quadratic")


@dataclass(frozen=True)
class TaskConfig:
    """One supervised task. `hidden_sizes` are the MLP's hidden widths (a CNN's dense head);
    `channels` the CNN's convolutions; `dim`, `condition` and `noise` the quadratic's
    dimension, condition number and target noise (see `metarl.supervised.data.quadratic`);
    `data_seed` picks the dataset draw (split, teacher, quadratic), fixed across inner seeds."""

    family: str
    dataset: str
    model: str
    hidden_sizes: tuple[int, ...] = ()
    activation: str = "relu"
    batch_size: int = 64
    channels: tuple[int, ...] = ()
    dim: int = 0
    condition: float = 1.0
    noise: float = 0.0
    data_seed: int = 0

    def __post_init__(self) -> None:
        # TOML env_kwargs hold no lists, so widths may come as an int or "64,64"
        for name in ("hidden_sizes", "channels"):
            object.__setattr__(self, name, _sizes(name, getattr(self, name)))
        _one_of("family", self.family, FAMILY_NAMES)
        _one_of("dataset", self.dataset, (*DATASETS, "quadratic"))
        _one_of("model", self.model, MODEL_NAMES)
        _one_of("activation", self.activation, ACTIVATION_NAMES)
        _int("batch_size", self.batch_size, 1)
        _int("data_seed", self.data_seed, 0)
        if (self.model == "quadratic") != (self.dataset == "quadratic"):
            raise UserError(f"model {self.model!r} does not fit dataset {self.dataset!r}: the "
                            "quadratic model goes with the quadratic dataset and only with it")
        if self.model == "cnn":
            if self.dataset not in ("digits", "mnist1d"):
                raise UserError(f"model 'cnn' needs dataset 'digits' or 'mnist1d', "
                                f"got {self.dataset!r}")
            if not self.channels:
                raise UserError("channels: a CNN needs at least one convolution, e.g. 16 or "
                                "'16,32'")
        if self.model == "quadratic":
            _int("dim", self.dim, 1)
            _number("condition", self.condition, 1.0)
            _number("noise", self.noise, 0.0)

    @classmethod
    def field_names(cls) -> tuple[str, ...]:
        return tuple(f.name for f in dataclasses.fields(cls))


def _one_of(name: str, value: Any, allowed: tuple[str, ...]) -> None:
    if value not in allowed:
        raise UserError(f"{name} = {value!r} is not allowed; choose one of "
                        f"{', '.join(allowed)}")


def _int(name: str, value: Any, low: int) -> None:
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value < low:
        raise UserError(f"{name} = {value!r} is not allowed; it must be an integer >= {low}")


def _number(name: str, value: Any, low: float) -> None:
    if (isinstance(value, bool) or not isinstance(value, (int, float, np.number))
            or not math.isfinite(value) or value < low):
        raise UserError(f"{name} = {value!r} is not allowed; it must be a finite number "
                        f">= {low}")


def _sizes(name: str, value: Any) -> tuple[int, ...]:
    items: Any = value
    if isinstance(value, str):
        items = [s for s in value.replace(" ", "").split(",") if s]
        try:
            items = [int(s) for s in items]
        except ValueError:
            items = None
    elif isinstance(value, (int, np.integer)) and not isinstance(value, bool):
        items = [value]
    if (not isinstance(items, (list, tuple))
            or any(isinstance(v, bool) or not isinstance(v, (int, np.integer)) or v < 1
                   for v in items)):
        raise UserError(f"{name} = {value!r} is not allowed; give positive integers: a tuple, "
                        f"one integer or a string such as '64,64'")
    return tuple(int(v) for v in items)


# Each family's prior. Choices are drawn uniformly; `condition` and `noise` log-uniformly.
_PRIORS: dict[str, dict[str, Any]] = {
    "digits_mlp": {"dataset": "digits", "model": "mlp", "widths": (32, 64, 128),
                   "depths": (1, 2), "batch_sizes": (32, 64, 128)},
    "digits_cnn": {"dataset": "digits", "model": "cnn", "channels": (8, 16, 32),
                   "conv_depths": (1, 2), "widths": (32, 64), "depths": (0, 1),
                   "batch_sizes": (32, 64, 128)},
    "mnist1d_mlp": {"dataset": "mnist1d", "model": "mlp", "widths": (64, 128, 256),
                    "depths": (1, 2, 3), "batch_sizes": (32, 64, 128)},
    "mnist1d_cnn": {"dataset": "mnist1d", "model": "cnn", "channels": (16, 32),
                    "conv_depths": (1, 2), "widths": (64, 128), "depths": (0, 1),
                    "batch_sizes": (32, 64, 128)},
    "regression_mlp": {"dataset": "regression", "model": "mlp", "widths": (16, 32, 64, 128),
                       "depths": (1, 2, 3), "batch_sizes": (16, 32, 64)},
    "quadratic": {"dataset": "quadratic", "model": "quadratic", "dims": (8, 16, 32, 64),
                  "condition": (1.0, 1e3), "noise": (0.01, 1.0), "batch_sizes": (8, 16, 32, 64)},
}


def _log_uniform(rng: np.random.Generator, low: float, high: float) -> float:
    return float(f"{math.exp(rng.uniform(math.log(low), math.log(high))):.3g}")


def _draw(family: str, index: int) -> dict[str, Any]:
    prior = _PRIORS[family]
    # crc32, not hash(): str hashes change between processes
    rng = np.random.default_rng([zlib.crc32(family.encode()), index])
    fields: dict[str, Any] = {"family": family, "dataset": prior["dataset"],
                              "model": prior["model"]}
    if prior["model"] == "quadratic":
        fields["dim"] = int(rng.choice(prior["dims"]))
        fields["condition"] = _log_uniform(rng, *prior["condition"])
        fields["noise"] = _log_uniform(rng, *prior["noise"])
    else:
        if prior["model"] == "cnn":
            width = int(rng.choice(prior["channels"]))
            fields["channels"] = (width,) * int(rng.choice(prior["conv_depths"]))
        depth = int(rng.choice(prior["depths"]))
        fields["hidden_sizes"] = tuple(int(rng.choice(prior["widths"])) for _ in range(depth))
        fields["activation"] = str(rng.choice(ACTIVATION_NAMES))
    fields["batch_size"] = int(rng.choice(prior["batch_sizes"]))
    return fields


def member(family: str, index: int = 0, **overrides: Any) -> TaskConfig:
    """The `index`-th member of `family`: a deterministic draw from the family's prior, with
    `overrides` (any `TaskConfig` field but `family`) fixed instead of drawn."""
    if family not in FAMILY_NAMES:
        raise UserError(f"unknown supervised task family {family!r}; choose one of "
                        f"{', '.join(FAMILY_NAMES)}")
    _int("member", index, 0)
    allowed = tuple(f for f in TaskConfig.field_names() if f != "family")
    unknown = sorted(set(overrides) - set(allowed))
    if unknown:
        raise UserError(f"unknown task field(s) {', '.join(unknown)} for supervised/{family}; "
                        f"choose from {', '.join(allowed)}")
    return TaskConfig(**{**_draw(family, int(index)), **overrides})
