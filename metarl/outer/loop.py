"""One interface over every outer loop (ES, PES, truncated ES, meta-gradients), and the
helpers they share (the registry is `metarl.outer.registry`).

An outer loop is three pure functions over a state pytree that holds everything, keys
included, so the state is the checkpoint and `step` can be jitted once:

    state = loop.init(key, mean, problem)
    state, report = loop.step(state, problem)     # jax.jit(loop.step, static_argnums=1)
    meta = loop.mean(state)

`problem` is a `TruncatedProblem` (`metarl.outer.problem`); its fitness is maximised.
"""

from __future__ import annotations

import inspect
from collections.abc import Callable, Iterable
from typing import Any, NamedTuple, Protocol

import jax
import jax.numpy as jnp
import optax

from metarl.errors import UserError
from metarl.outer.problem import TruncatedProblem

PyTree = Any

# the optimizers a loop may move its mean with, by spec name
OPTIMIZERS = {"adam": optax.adam, "sgd": optax.sgd}


class OuterLoopError(UserError):
    """An outer loop that does not exist, a setting it does not take, or a problem it cannot
    serve. The message names what is allowed."""


class StepReport(NamedTuple):
    """What one outer step hands back to the host for tracking."""

    population: PyTree | None  # members evaluated this step, leading axis (pop,); None if none
    fitness: jax.Array  # (pop,) as evaluated, NaN/inf kept
    info: PyTree  # per-member info, leading axis (pop,)
    mean: PyTree  # the meta-parameters after the step
    metrics: dict[str, jax.Array]  # scalars for tracking


class OuterLoop(Protocol):
    name: str

    def init(self, key: jax.Array, mean: PyTree, problem: TruncatedProblem) -> PyTree: ...

    def step(self, state: PyTree, problem: TruncatedProblem) -> tuple[PyTree, StepReport]: ...

    def mean(self, state: PyTree) -> PyTree: ...


def normalise_name(name: str) -> str:
    """Names match case-insensitively and with or without `_`/`-`: `open_es` is `Open_ES`."""
    return name.lower().replace("_", "").replace("-", "")


def check_settings(loop: str, settings: Iterable[str], allowed: Iterable[str]) -> None:
    unknown = sorted(set(settings) - set(allowed))
    if unknown:
        raise OuterLoopError(f"outer loop {loop!r} does not take {', '.join(unknown)}; "
                             f"its settings: {', '.join(sorted(allowed)) or 'none'}")


def keyword_names(fn: Callable, skip: Iterable[str] = ()) -> set[str]:
    """The keyword settings a constructor takes, less those the registry fills itself."""
    params = inspect.signature(fn).parameters.values()
    return {p.name for p in params if p.kind in (p.POSITIONAL_OR_KEYWORD, p.KEYWORD_ONLY)
            } - {"self", *skip}


def to_array(x: Any) -> jax.Array:
    """A leaf as a strongly typed array, so a state restored from a checkpoint (numpy arrays)
    has the same types as the state it was saved from and runs the same compiled step."""
    return jnp.asarray(x, dtype=jnp.result_type(x))


def as_state(tree: PyTree) -> PyTree:
    return jax.tree.map(to_array, tree)


def raw_key(key: jax.Array) -> jax.Array:
    """uint32 key data: typed keys cannot be written to a checkpoint."""
    if jnp.issubdtype(key.dtype, jax.dtypes.prng_key):
        return jax.random.key_data(key)
    return key


def global_norm(tree: PyTree) -> jax.Array:
    """The L2 norm of all leaves together (optax's is deprecated across its supported
    versions under two different names)."""
    return jnp.sqrt(sum(jnp.sum(jnp.square(x)) for x in jax.tree.leaves(tree)))


def where(condition: jax.Array, new: PyTree, old: PyTree) -> PyTree:
    """`new` where the scalar `condition` holds, else `old`, leaf by leaf."""
    return jax.tree.map(lambda n, o: jnp.where(condition, n, o), new, old)


def fitness_metrics(fitness: jax.Array) -> dict[str, jax.Array]:
    """Statistics over the finite fitness values of one step, and how many were not."""
    finite = jnp.isfinite(fitness)
    n = jnp.maximum(finite.sum(), 1)
    mean = jnp.where(finite, fitness, 0.0).sum() / n
    var = jnp.where(finite, (fitness - mean) ** 2, 0.0).sum() / n
    stats = {"fitness_mean": mean, "fitness_std": jnp.sqrt(var),
             "fitness_max": jnp.where(finite, fitness, -jnp.inf).max(),
             "fitness_min": jnp.where(finite, fitness, jnp.inf).min()}
    # NaN, not a made-up number, when no member could be scored
    stats = {k: jnp.where(finite.any(), v, jnp.nan) for k, v in stats.items()}
    return stats | {"nan_skipped": (~finite).sum()}
