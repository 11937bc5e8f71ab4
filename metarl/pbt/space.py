"""The searched hyperparameters as a box: each a bounded interval (log-scaled or linear), a
member's values held as quantiles `u` in [0, 1] of their intervals.

Values are always clipped into `[low, high]`: a perturbation by a factor can push a value past
a bound, and float32 rounding of `exp(log(high))` can land a hair outside it; both are clamped
here, once, so every value a member trains with lies inside its bounds (Ray Tune #11936 let
perturbed values drift out of them)."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, NamedTuple

import jax.numpy as jnp
import numpy as np


class HyperSpace(NamedTuple):
    """Static description of `D` hyperparameters, in a fixed (sorted) order."""

    names: tuple[str, ...]
    low: tuple[float, ...]
    high: tuple[float, ...]
    log: tuple[bool, ...]

    @classmethod
    def from_ranges(cls, ranges: Mapping[str, Any]) -> HyperSpace:
        """From `{name: Range}` (anything with `low`, `high`, `log`), sorted by name."""
        items = sorted(ranges.items())
        return cls(tuple(n for n, _ in items), tuple(float(r.low) for _, r in items),
                   tuple(float(r.high) for _, r in items), tuple(bool(r.log) for _, r in items))

    @property
    def dims(self) -> int:
        return len(self.names)

    def _ends(self, xp: Any) -> tuple[Any, Any, Any]:
        low = xp.asarray(self.low, xp.float32)
        high = xp.asarray(self.high, xp.float32)
        log = xp.asarray(self.log)
        return low, high, log

    def value(self, u: Any, xp: Any = jnp) -> Any:
        """`(..., D)` quantiles -> values inside the bounds (log-uniform where `log`)."""
        low, high, log = self._ends(xp)
        u = xp.clip(xp.asarray(u, xp.float32), 0.0, 1.0)
        lin = low + u * (high - low)
        safe_low = xp.where(log, low, 1.0)  # a linear range may start at 0: no log of it
        safe_high = xp.where(log, high, 2.0)
        geo = xp.exp(xp.log(safe_low) + u * (xp.log(safe_high) - xp.log(safe_low)))
        return xp.clip(xp.where(log, geo, lin), low, high).astype(xp.float32)

    def unit(self, value: Any, xp: Any = jnp) -> Any:
        """Values -> quantiles in [0, 1] (values outside the bounds are clamped first)."""
        low, high, log = self._ends(xp)
        v = xp.clip(xp.asarray(value, xp.float32), low, high)
        lin = (v - low) / (high - low)
        safe = xp.where(log, v, 1.0)
        safe_low = xp.where(log, low, 1.0)
        safe_high = xp.where(log, high, 2.0)
        geo = (xp.log(safe) - xp.log(safe_low)) / (xp.log(safe_high) - xp.log(safe_low))
        return xp.clip(xp.where(log, geo, lin), 0.0, 1.0).astype(xp.float32)

    def as_dict(self, u: Any) -> dict[str, float]:
        """One member's `(D,)` quantiles as `{name: value}` on the host."""
        values = self.value(np.asarray(u, np.float32), np)
        return {n: float(v) for n, v in zip(self.names, values, strict=True)}
