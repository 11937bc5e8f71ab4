"""The PBT settings a spec gives, shared by the `pbt` search kind (`[pbt]`) and the `pbt`
inner loop (`[inner]` with `algorithm = "pbt"`): which hyperparameters, how members are
selected and how they explore."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any, Literal

from pydantic import Field, ValidationError, field_validator, model_validator

from metarl.pbt.exploit import bottom_count
from metarl.pbt.explore import Explorer, make_explorer
from metarl.pbt.space import HyperSpace
from metarl.spec.base import Strict


class PBTFields(Strict):
    """Exploit and explore (Jaderberg et al. 2017; PB2: Parker-Holder et al. 2020)."""

    # values are `metarl.spec.schema.Range`s, read by `_ranges`: the inner loop's section is
    # imported while schema.py is still being defined, so the type cannot be named here
    search_space: dict[str, Any] = Field(
        default_factory=dict, description="hyperparameter name = range the population is "
        "drawn from and explores within, e.g. lr = { low = 1e-4, high = 1e-2, log = true }")
    quantile: float = Field(
        0.25, gt=0, le=0.5, description="the bottom quantile copies members of the top one")
    explore: Literal["perturb", "pb2"] = Field(
        "perturb", description="perturb: multiply by a factor or resample (PBT); pb2: "
        "GP-bandit choice (PB2)")
    factors: tuple[float, ...] = Field(
        (0.8, 1.2), min_length=1, description="perturb: factors a value is multiplied by")
    resample_probability: float = Field(
        0.25, ge=0, le=1, description="perturb: chance a value is redrawn from its range")
    pb2_window: int = Field(4, gt=0, description="pb2: intervals of data the GP is fitted to")
    objective: str | None = Field(
        None, description="kind pbt: a learned objective (e.g. lpo) whose weights every member "
        "carries, copies when it exploits and perturbs when it explores; none: PPO-clip")
    objective_sigma: float = Field(
        0.01, gt=0, description="std of the Gaussian noise a copier adds to the objective's "
        "weights")

    @field_validator("objective")
    @classmethod
    def _known_objective(cls, name: str | None) -> str | None:
        from metarl.learned import OBJECTIVE_NAMES

        if name is not None and name not in OBJECTIVE_NAMES:
            raise ValueError(f"unknown objective {name!r}; allowed: {', '.join(OBJECTIVE_NAMES)}")
        return name

    @field_validator("search_space")
    @classmethod
    def _ranges(cls, space: dict[str, Any]) -> dict[str, Any]:
        from metarl.spec.schema import Range

        out = {}
        for name, value in space.items():
            try:
                out[name] = Range.model_validate(value)
            except ValidationError as err:
                first = err.errors()[0]
                where = ".".join(str(p) for p in (name, *first["loc"]))
                raise ValueError(f"{where}: {first['msg'].removeprefix('Value error, ')}") \
                    from None
        return out

    @field_validator("factors")
    @classmethod
    def _positive(cls, factors: tuple[float, ...]) -> tuple[float, ...]:
        bad = [f for f in factors if not f > 0]
        if bad:
            raise ValueError(f"perturbation factors must be > 0, got {bad}")
        return factors

    @model_validator(mode="after")
    def _space(self) -> PBTFields:
        if not self.search_space:
            raise ValueError("PBT needs a search_space table, e.g. lr = { low = 1e-4, "
                             "high = 1e-2, log = true }")
        return self

    def check_names(self, allowed: Iterable[str], where: str, loop: str) -> None:
        """A hyperparameter the inner loop does not have is refused, naming those it has."""
        allowed = tuple(allowed)
        unknown = sorted(set(self.search_space) - set(allowed))
        if unknown:
            raise ValueError(f"{where} has hyperparameter(s) {unknown} that inner loop "
                             f"{loop!r} does not have; allowed: {', '.join(allowed)}")

    def check_population(self, population: int, where: str) -> None:
        """Quantiles that leave no one to copy, and populations below 2, are refused."""
        if population < 2:
            raise ValueError(f"{where} = {population}: PBT needs a population of at least 2")
        n = bottom_count(population, self.quantile)
        if n < 1:
            raise ValueError(
                f"quantile = {self.quantile} of a population of {population} is "
                f"{self.quantile * population:g} member(s): no one would copy anyone; raise "
                f"the quantile to at least {1 / population:g} or the population")

    def space(self) -> HyperSpace:
        return HyperSpace.from_ranges(self.search_space)

    def explorer(self) -> Explorer:
        return make_explorer(self.explore, self.space(), self.factors,
                             self.resample_probability, window=self.pb2_window)
