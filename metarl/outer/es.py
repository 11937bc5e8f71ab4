"""Evolution strategies by evosax name, each member scored on a full inner run.

Any algorithm in `evosax.algorithms.algorithms` can be named (case-insensitive, `_` optional:
`open_es`, `snes`, `cma_es`, `pgpe`, `simple_es`, `xnes`, `sep_cma_es`, ...); `random` is
evosax's `RandomSearch`. The algorithm's params live in the loop state, not on the instance,
so a search can change them between steps and a checkpoint holds them.

Fitness here is *to be maximised*; evosax minimises, and `to_evosax` is the one place the
sign flips.
"""

from __future__ import annotations

from typing import Any, NamedTuple

import jax
import jax.numpy as jnp
import optax
from evosax.algorithms import algorithms, population_based_algorithms
from evosax.core.optimizer import clipup

from metarl.outer.loop import OPTIMIZERS as LOOP_OPTIMIZERS
from metarl.outer.loop import (
    OuterLoopError,
    StepReport,
    as_state,
    check_settings,
    fitness_metrics,
    keyword_names,
    normalise_name,
    raw_key,
)
from metarl.outer.problem import Evaluation, TruncatedProblem, full_fitness
from metarl.outer.sharding import replicated, shard_over_population

PyTree = Any

# evosax estimators over truncated unrolls: a full-run fitness would misuse them
TRUNCATED_ONLY = {"PersistentES": "pes", "NoiseReuseES": "truncated_es"}
# several populations at once: their state and mean have a population axis of their own
MULTI_POPULATION = ("SV_CMA_ES", "SV_Open_ES")
# the registry fills these constructor arguments itself (or they are not data)
FILLED = ("population_size", "solution", "optimizer", "std_schedule", "use_antithetic_sampling",
          "fitness_shaping_fn", "metrics_fn", "sampling_fn", "params")
OPTIMIZERS = {**LOOP_OPTIMIZERS, "clipup": clipup}  # evosax also offers ClipUp
# evosax's own default optimizer kind, except Open_ES: metarl has always run it with adam
DEFAULT_OPTIMIZER = {"Open_ES": "adam", "ARS": "adam", "ASEBO": "adam", "ESMC": "adam",
                     "PGPE": "clipup"}


class ESState(NamedTuple):
    es: PyTree  # the evosax algorithm's state
    params: PyTree  # the evosax algorithm's params (traced: changeable between steps)
    key: jax.Array
    step: jax.Array


def evosax_names() -> dict[str, str]:
    """Normalised name -> evosax's spelling, for every algorithm a full-run ES can use."""
    names = {normalise_name(n): n for n in algorithms
             if n not in TRUNCATED_ONLY and n not in MULTI_POPULATION}
    names["random"] = "RandomSearch"
    return names


def resolve(name: str) -> str:
    key = normalise_name(name)
    for evosax_name, loop in TRUNCATED_ONLY.items():
        if key == normalise_name(evosax_name):
            raise OuterLoopError(f"outer loop {name!r} estimates gradients from truncated "
                                 f"unrolls; use outer loop {loop!r}")
    if key in {normalise_name(n) for n in MULTI_POPULATION}:
        raise OuterLoopError(f"outer loop {name!r} evolves several populations at once, which "
                             "no metarl kind can score; use its single-population version")
    names = evosax_names()
    if key not in names:
        allowed = ", ".join(["pes", "truncated_es", "meta_gradient", "pbt", "random",
                             *sorted(set(names.values()) - {"RandomSearch"}, key=str.lower)])
        raise OuterLoopError(f"unknown outer loop {name!r}; allowed: {allowed} "
                             "(evosax names match case-insensitively, '_' optional)")
    return names[key]


def to_evosax(fitness: jax.Array) -> jax.Array:
    """Maximised fitness -> evosax's minimised one. A non-finite member (a failed run) is
    ranked worst: one fitness range below the worst finite member, a finite value, so
    rank-based and value-based algorithms alike move away from it without overflowing."""
    finite = jnp.isfinite(fitness)
    worst = jnp.where(finite, fitness, jnp.inf).min()
    best = jnp.where(finite, fitness, -jnp.inf).max()
    penalty = worst - jnp.maximum(best - worst, 1.0)
    return -jnp.where(finite, fitness, penalty)


def evolution_settings(cls: type) -> set[str]:
    ctor = keyword_names(cls)
    params = set(getattr(cls(**_probe_args(cls)).default_params, "__dataclass_fields__", {}))
    allowed = {"population_size", "params", "mesh"} | (ctor - set(FILLED))
    if "std_schedule" in ctor or "std_init" in params or _is_population_based(cls):
        allowed.add("sigma_init")
    if "optimizer" in ctor:
        allowed |= {"learning_rate", "optimizer"}
    if "use_antithetic_sampling" in ctor:
        allowed.add("antithetic")
    if "sampling_fn" in ctor:
        allowed |= {"sample", "sigma_init"}
    return allowed


def _probe_args(cls: type) -> dict[str, Any]:
    """Enough constructor arguments to read an algorithm's default params."""
    args: dict[str, Any] = {"population_size": 4, "solution": jnp.zeros(2)}
    if "sampling_fn" in keyword_names(cls):
        args["sampling_fn"] = lambda k: jnp.zeros(2)
    return args


def _is_population_based(cls: type) -> bool:
    return cls in population_based_algorithms.values()


def make_es(name: str, solution: PyTree, **settings: Any) -> EvolutionStrategy:
    """The ES called `name` over meta-parameters shaped like `solution` (see module doc)."""
    evosax_name = resolve(name)
    cls = algorithms[evosax_name]
    check_settings(name, settings, evolution_settings(cls))
    if "population_size" not in settings:
        raise OuterLoopError(f"outer loop {name!r} needs population_size")
    return EvolutionStrategy(evosax_name, solution, **settings)


class EvolutionStrategy:
    """Salimans et al. 2017-style outer step over any evosax algorithm: ask a population,
    score each member on a full inner run (`full_fitness`, vmapped, common random numbers:
    every member sees the same inner seeds), tell."""

    def __init__(self, algorithm: str, solution: PyTree, population_size: int,
                 sigma_init: float | None = None, learning_rate: float | None = None,
                 optimizer: str | None = None, antithetic: bool | None = None,
                 params: dict[str, Any] | None = None, sample: Any = None,
                 mesh: jax.sharding.Mesh | None = None, **options: Any):
        cls = algorithms[algorithm]
        self.name = algorithm
        self.solution = solution
        self.sigma_init = 1.0 if sigma_init is None else float(sigma_init)
        self.population_based = _is_population_based(cls)
        self.mesh = mesh
        ctor = keyword_names(cls)
        kwargs = dict(options)
        if "optimizer" in ctor:
            kwargs.update(self._optimizer(algorithm, learning_rate, optimizer))
        if "std_schedule" in ctor and sigma_init is not None:
            kwargs["std_schedule"] = optax.constant_schedule(self.sigma_init)
        if antithetic is not None:
            kwargs["use_antithetic_sampling"] = bool(antithetic)
        if "sampling_fn" in ctor:
            kwargs["sampling_fn"] = sample or self._gaussian_sampler(solution)
        try:
            self.es = cls(population_size=population_size, solution=solution, **kwargs)
        except (AssertionError, TypeError, ValueError) as err:
            raise OuterLoopError(f"outer loop {algorithm!r} rejected its settings "
                                 f"({err or type(err).__name__})") from None
        self.population_size = population_size
        self.default_params = self._params(params or {}, sigma_init)

    def _optimizer(self, algorithm: str, learning_rate: float | None,
                   optimizer: str | None) -> dict[str, Any]:
        if learning_rate is None:
            if optimizer is not None:
                raise OuterLoopError(f"outer loop {algorithm!r}: optimizer needs learning_rate")
            return {}  # evosax's own default optimizer
        kind = optimizer or DEFAULT_OPTIMIZER.get(algorithm, "sgd")
        if kind not in OPTIMIZERS:
            raise OuterLoopError(f"outer loop {algorithm!r}: optimizer {kind!r} unknown; "
                                 f"allowed: {', '.join(OPTIMIZERS)}")
        return {"optimizer": OPTIMIZERS[kind](learning_rate)}

    def _gaussian_sampler(self, solution: PyTree):
        def sample(key: jax.Array) -> PyTree:
            leaves, tree = jax.tree.flatten(solution)
            keys = jax.random.split(key, len(leaves))
            return jax.tree.unflatten(tree, [
                x + self.sigma_init * jax.random.normal(k, jnp.shape(x))
                for x, k in zip(leaves, keys, strict=True)])
        return sample

    def _params(self, params: dict[str, Any], sigma_init: float | None) -> PyTree:
        default = self.es.default_params
        fields = set(getattr(default, "__dataclass_fields__", {}))
        unknown = sorted(set(params) - fields)
        if unknown:
            raise OuterLoopError(f"outer loop {self.name!r}: params {', '.join(unknown)} "
                                 f"unknown; its params: {', '.join(sorted(fields)) or 'none'}")
        if sigma_init is not None and "std_init" in fields:
            params = {"std_init": self.sigma_init, **params}
        return default.replace(**params) if params else default

    def init(self, key: jax.Array, mean: PyTree, problem: TruncatedProblem) -> ESState:
        key = raw_key(key)
        key, k_init, k_pop, k_eval = jax.random.split(key, 4)
        params = self.default_params
        if self.population_based:  # seeded from a scored cloud around `mean`
            sample = self._gaussian_sampler(mean)
            population = jax.vmap(sample)(jax.random.split(k_pop, self.population_size))
            fitness = to_evosax(self._evaluate(problem, population, k_eval).fitness)
            es = self.es.init(k_init, population, fitness, params)
        else:
            es = self.es.init(k_init, mean, params)
        return ESState(as_state(es), as_state(params), key, jnp.zeros((), jnp.int32))

    def _evaluate(self, problem: TruncatedProblem, population: PyTree,
                  key: jax.Array) -> Evaluation:
        def evaluate(pop: PyTree, k: jax.Array) -> Evaluation:
            return jax.vmap(full_fitness, in_axes=(None, 0, None))(problem, pop, k)

        if self.mesh is not None:
            evaluate = shard_over_population(evaluate, self.mesh)
        return evaluate(population, key)

    def step(self, state: ESState, problem: TruncatedProblem) -> tuple[ESState, StepReport]:
        key, k_ask, k_eval, k_tell = jax.random.split(state.key, 4)
        population, asked = self.es.ask(k_ask, state.es, state.params)
        asked = as_state(asked)
        ev = self._evaluate(problem, population, k_eval)
        told, _ = self.es.tell(k_tell, population, to_evosax(ev.fitness), asked, state.params)
        # all members failed: no ranking to learn from, so the distribution stays as asked
        nothing = ~jnp.isfinite(ev.fitness).any()
        es = jax.tree.map(lambda t, a: jnp.where(nothing, a, t), as_state(told), asked)
        new = ESState(es, state.params, key, state.step + 1)
        metrics = fitness_metrics(ev.fitness)
        if hasattr(es, "std"):
            metrics["sigma_mean"] = jnp.mean(es.std)
        report = StepReport(population, ev.fitness, ev.info, self.mean(new), metrics)
        if self.mesh is not None:  # every process reads whole generations, not its slice
            report = replicated(report, self.mesh)
        return new, report

    def mean(self, state: ESState) -> PyTree:
        if self.population_based:
            return self.es.get_best_solution(state.es)
        return self.es.get_mean(state.es)
