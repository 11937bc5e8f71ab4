"""Symbolic distillation of a learned optimizer's update into a short closed form.

A learned optimizer (`metarl.learned_optimizers`) computes each parameter's update with a
network; :func:`fit_optimizer` approximates its descent direction ``-update / learning_rate``
by a sparse linear combination of hand-picked terms of the statistics Adam keeps, in the spirit
of the symbolic discovery of optimizers (Bello et al. 2017, "Neural Optimizer Search with
Reinforcement Learning", ICML; Chen et al. 2023, "Symbolic Discovery of Optimization
Algorithms", the source of Lion's sign terms). The candidates are functions of

* ``g``: the gradient;
* ``m_hat[d]``: the bias-corrected momentum at each of the optimizer's decays ``d`` (the first,
  Adam's b1, is written ``m_hat``);
* ``v_hat``: Adam's bias-corrected second moment; ``progress`` in [0, 1].

so Adam is the single term ``m_hat/(sqrt(v_hat)+eps)`` with coefficient 1. The inputs are not
drawn from an invented distribution but recorded along real training: the learned optimizer
trains a small problem (by default a tanh MLP regressing a fixed teacher on fresh minibatches,
:func:`regression_problem`) for ``n_steps`` steps, and every element of every tensor at every
step is one sample. The learned optimizers normalise features per tensor, so a closed form that
sees one element at a time can only approximate them; the held-out error (a second training run
from another seed) says how well.

The regression is the one of `metarl.distill.symbolic` (:func:`sparse_regression`: STLSQ,
Brunton et al. 2016, with forward orthogonal least squares, Chen et al. 1989).
"""

from __future__ import annotations

import math
import re
import textwrap
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from types import CodeType
from typing import Any, NamedTuple

import jax
import jax.numpy as jnp
import numpy as np
import optax
from jax.flatten_util import ravel_pytree

from metarl.distill.symbolic import fit_metrics, one_blas_thread, sparse_regression
from metarl.learned_optimizers.features import init_moments, update_moments
from metarl.learned_optimizers.registry import make_learned_optimizer, optimizer_settings

__all__ = ["OptimizerFit", "TrainingProblem", "candidate_terms", "fit_optimizer",
           "fit_transformation", "regression_problem"]

PyTree = Any
DEFAULT_DECAYS = (0.9, 0.99, 0.999)
METHOD = "STLSQ (Brunton et al. 2016) + forward OLS (Chen et al. 1989)"
_ADAM_DENOMINATOR = "(jnp.sqrt(v + eps_root) + eps)"


def _momentum_name(k: int, decays: Sequence[float]) -> str:
    return "m_hat" if k == 0 else f"m_hat[{decays[k]:g}]"


def candidate_terms(momentum_decays: Sequence[float] = DEFAULT_DECAYS) -> dict[str, str]:
    """Readable name -> jax.numpy source of every candidate term, in priority order (the
    first listed wins ties between equally good supports).

    A source is the single definition of its term: it is evaluated with numpy on the samples
    and pasted verbatim into the generated optimizer. It reads ``g``, ``v`` (bias-corrected
    second moment), ``m0``, ``m1``, ... (bias-corrected momenta, one per decay), ``p``
    (progress), ``eps`` and ``eps_root``.
    """
    decays = tuple(momentum_decays)
    if not decays:
        raise ValueError("need at least one momentum decay (Adam's b1)")
    adam = f"m0 / {_ADAM_DENOMINATOR}"
    terms = {"m_hat/(sqrt(v_hat)+eps)": adam}  # Adam (Kingma & Ba 2015)
    for k in range(1, len(decays)):  # Adam with a slower momentum
        terms[f"{_momentum_name(k, decays)}/(sqrt(v_hat)+eps)"] = f"m{k} / {_ADAM_DENOMINATOR}"
    terms.update({
        "g/(sqrt(v_hat)+eps)": f"g / {_ADAM_DENOMINATOR}",  # RMSProp (Tieleman & Hinton 2012)
        "sign(m_hat)": "jnp.sign(m0)",  # signum / Lion's sign step (Chen et al. 2023)
        "sign(g)": "jnp.sign(g)",  # signSGD (Bernstein et al. 2018)
        "progress*m_hat/(sqrt(v_hat)+eps)": f"p * m0 / {_ADAM_DENOMINATOR}",  # a schedule
        "progress*sign(m_hat)": "p * jnp.sign(m0)",
        "m_hat": "m0",  # heavy ball (Polyak 1964), in the gradient's own units
        "g": "g",  # plain SGD
    })
    return terms


def _uses(source: str) -> set[str]:
    return set(re.findall(r"\b(?:g|v|p|m\d+)\b", source))


_CODE: dict[str, CodeType] = {}


def _eval_source(source: str, variables: dict[str, Any]) -> Any:
    # Only term sources from candidate_terms (module constants) are ever compiled.
    if source not in _CODE:
        _CODE[source] = compile(source, "<term>", "eval")
    return eval(_CODE[source], {"__builtins__": {}}, {"jnp": np, **variables})


class TrainingProblem(NamedTuple):
    """What the optimizer trains while its inputs are recorded: `init_params(key)`,
    `loss(params, batch)` and `batch(key)` (a fresh minibatch per step)."""

    init_params: Callable[[jax.Array], PyTree]
    loss: Callable[[PyTree, Any], jax.Array]
    batch: Callable[[jax.Array], Any]


def regression_problem(in_dim: int = 8, hidden: int = 32, batch_size: int = 32
                       ) -> TrainingProblem:
    """A tanh MLP (one hidden layer) regressing ``sin`` of a fixed random projection of
    Gaussian inputs: weights and biases of two shapes, noisy minibatch gradients, a loss that
    keeps falling for hundreds of steps."""
    teacher = jax.random.normal(jax.random.PRNGKey(1234), (in_dim,)) / math.sqrt(in_dim)

    def init_params(key: jax.Array) -> PyTree:
        k0, k1 = jax.random.split(key)
        return {"w0": jax.random.normal(k0, (in_dim, hidden)) / math.sqrt(in_dim),
                "b0": jnp.zeros(hidden),
                "w1": jax.random.normal(k1, (hidden, 1)) / math.sqrt(hidden),
                "b1": jnp.zeros(1)}

    def loss(params: PyTree, batch: tuple[jax.Array, jax.Array]) -> jax.Array:
        x, y = batch
        h = jnp.tanh(x @ params["w0"] + params["b0"])
        return jnp.mean(((h @ params["w1"] + params["b1"])[:, 0] - y) ** 2)

    def batch(key: jax.Array) -> tuple[jax.Array, jax.Array]:
        x = jax.random.normal(key, (batch_size, in_dim))
        return x, jnp.sin(2.0 * x @ teacher)

    return TrainingProblem(init_params, loss, batch)


@dataclass(frozen=True)
class OptimizerFit:
    """``update = -learning_rate * sum_i coefficients[i] * terms[i]`` (see
    :func:`candidate_terms`), with its error on held-out samples.

    ``relative_rmse`` is the held-out RMSE over the RMS of the target ``-update/lr``; ``r2``
    the coefficient of determination; both describe the closed form as :meth:`transformation`
    computes it.
    """

    terms: list[str]
    coefficients: list[float]
    r2: float
    relative_rmse: float
    rmse: float
    max_abs_error: float
    momentum_decays: tuple[float, ...] = DEFAULT_DECAYS
    b2: float = 0.999
    eps: float = 1e-8
    eps_root: float = 0.0
    learning_rate: float = 1e-3
    total_steps: int | None = None
    optimizer: str = ""  # what was distilled, for the generated docstring
    found_by: str = ""
    n_train: int = 0
    n_test: int = 0
    method: str = METHOD
    sources: dict[str, str] = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        library = candidate_terms(self.momentum_decays)
        unknown = [t for t in self.terms if t not in library]
        if unknown:
            raise ValueError(f"unknown terms {unknown}; known: {list(library)}")
        if len(self.terms) != len(self.coefficients):
            raise ValueError("terms and coefficients differ in length")
        # floats only: the coefficients are written into generated code with repr
        object.__setattr__(self, "coefficients", [float(c) for c in self.coefficients])
        object.__setattr__(self, "momentum_decays", tuple(float(d) for d in
                                                          self.momentum_decays))
        object.__setattr__(self, "sources", {t: library[t] for t in self.terms})

    def expression(self, precision: int = 4) -> str:
        """The descent direction, e.g. ``0.98*m_hat/(sqrt(v_hat)+eps) + 0.01*sign(g)``; the
        update is ``-learning_rate`` times it."""
        parts: list[str] = []
        for name, c in zip(self.terms, self.coefficients, strict=True):
            mag = f"{abs(c):.{precision}g}*{name}"
            parts.append(("-" if c < 0 else "") + mag if not parts
                         else f"{'-' if c < 0 else '+'} {mag}")
        return " ".join(parts) if parts else "0"

    def _needs(self) -> tuple[list[int], bool, bool]:
        used = set().union(*(_uses(s) for s in self.sources.values()))
        momenta = sorted(int(u[1:]) for u in used if u.startswith("m"))
        return momenta, "v" in used, "p" in used

    def source(self, function_name: str = "symbolic_optimizer", imports: bool = False) -> str:
        """Python source defining ``function_name(learning_rate=..., total_steps=...) ->
        optax.GradientTransformationExtraArgs``, the closed form with only the moments it
        reads in its state.

        The definition uses the module-level names ``jax``, ``jnp`` (jax.numpy) and ``optax``
        and defines no other top-level name, so it can be appended to a module that imports
        them (an exported optimizer module does); ``imports=True`` puts the three imports
        first, making a module of its own. Progress is the ``progress`` extra argument of
        ``update`` when given, else the step count over ``total_steps``, else 0, as in the
        learned optimizers.
        """
        if not function_name.isidentifier():
            raise ValueError(f"not a Python identifier: {function_name!r}")
        momenta, needs_v, needs_p = self._needs()
        decays = tuple(self.momentum_decays[k] for k in momenta)
        what = f"the learned optimizer {self.optimizer!r}" if self.optimizer else "an optimizer"
        doc = (f"Closed form distilled from {what} by {self.method}; held-out r2={self.r2:.6g}, "
               f"relative rmse={self.relative_rmse:.3g}. The update is -learning_rate * "
               f"({self.expression()}), with bias-corrected moments m_hat (decays "
               f"{', '.join(f'{d:g}' for d in self.momentum_decays)}) and v_hat (decay "
               f"{self.b2:g}) and progress = count / total_steps unless `progress` is passed "
               "to update().")
        args = ["g", *(["v"] if needs_v else []), *(f"m{k}" for k in momenta)]
        lines = [
            f"def {function_name}(learning_rate={self.learning_rate!r}, "
            f"total_steps={self.total_steps!r}):",
            *_wrap_doc(doc, "    "),
            f"    decays = {decays!r}",
        ]
        if needs_v:
            lines += [f"    b2 = {self.b2!r}", f"    eps = {self.eps!r}",
                      f"    eps_root = {self.eps_root!r}"]
        lines += [
            "",
            "    def init_fn(params):",
            "        state = {",
            '            "count": jnp.zeros([], jnp.int32),',
            '            "mu": tuple(jax.tree.map(jnp.zeros_like, params) for _ in decays),',
            "        }",
        ]
        if needs_v:
            lines.append('        state["nu"] = jax.tree.map(jnp.zeros_like, params)')
        lines += [
            "        return state",
            "",
            "    def update_fn(updates, state, params=None, **extra_args):",
            "        del params",
            '        count = optax.safe_int32_increment(state["count"])',
            "        mu = tuple(optax.tree.update_moment(updates, m, d, 1)",
            '                   for d, m in zip(decays, state["mu"], strict=True))',
            "        mu_hat = [optax.tree.bias_correction(m, d, count)",
            "                  for d, m in zip(decays, mu, strict=True)]",
            '        new_state = {"count": count, "mu": mu}',
        ]
        if needs_v:
            lines += [
                '        nu = optax.tree.update_moment_per_elem_norm(updates, state["nu"], b2, '
                "2)",
                '        new_state["nu"] = nu',
                "        nu_hat = [optax.tree.bias_correction(nu, b2, count)]",
            ]
        else:
            lines.append("        nu_hat = []")
        if needs_p:
            lines += [
                '        if "progress" in extra_args:',
                '            p = jnp.asarray(extra_args["progress"], jnp.float32)',
                "        elif total_steps is None:",
                "            p = jnp.zeros([], jnp.float32)",
                "        else:",
                "            p = jnp.clip(count.astype(jnp.float32) / total_steps, 0.0, 1.0)",
            ]
        lines += ["", f"        def direction({', '.join(args)}):"]
        if not self.terms:
            lines.append("            out = jnp.zeros_like(g)")
        for i, (name, c) in enumerate(zip(self.terms, self.coefficients, strict=True)):
            # subtracting |c| * t equals adding -|c| * t in IEEE arithmetic; this reads better
            mag, src = repr(abs(c)), self.sources[name]
            if i == 0:
                lines.append(f"            out = {'-' if c < 0 else ''}{mag} * ({src})")
            else:
                lines.append(f"            out = out {'-' if c < 0 else '+'} {mag} * ({src})")
        lines += [
            "            return (-learning_rate * out).astype(g.dtype)",
            "",
            "        new = jax.tree.map(direction, updates, *nu_hat, *mu_hat)",
            "        return new, new_state",
            "",
            "    return optax.GradientTransformationExtraArgs(init_fn, update_fn)",
        ]
        text = "\n".join(lines) + "\n"
        if imports:
            text = "import jax\nimport jax.numpy as jnp\nimport optax\n\n\n" + text
        return text

    def transformation(self, learning_rate: float | jax.Array | None = None,
                       total_steps: int | None = None
                       ) -> optax.GradientTransformationExtraArgs:
        """The closed form as an optax optimizer (defaults: the learning rate and horizon of
        the distilled optimizer's settings)."""
        # Built by running `source()` so that the two cannot disagree; the text consists of
        # this module's constant term sources and repr'd floats (checked in __post_init__).
        name = "_distilled"
        namespace: dict[str, Any] = {"jax": jax, "jnp": jnp, "optax": optax}
        exec(compile(self.source(name), "<distilled optimizer>", "exec"), namespace)
        return namespace[name](
            learning_rate=self.learning_rate if learning_rate is None else learning_rate,
            total_steps=self.total_steps if total_steps is None else total_steps)


def _wrap_doc(doc: str, indent: str) -> list[str]:
    body = textwrap.wrap(doc, 96 - len(indent), break_long_words=False,
                         break_on_hyphens=False)
    body[0] = '"""' + body[0]
    return [indent + line for line in body] + [indent + '"""']


def _trajectory(tx: optax.GradientTransformationExtraArgs, problem: TrainingProblem,
                n_steps: int, decays: tuple[float, ...], b2: float
                ) -> Callable[[jax.Array], dict[str, jax.Array]]:
    """A jitted `key -> records`: one training run, recording per step the flattened
    gradient, the moments after the step (kept here, not read from the optimizer's state, so
    any transformation can be distilled), the count, the progress and the update."""

    def step(carry, inputs):
        params, state, moments = carry
        t, key = inputs
        grads = jax.grad(problem.loss)(params, problem.batch(key))
        progress = (t + 1.0) / n_steps
        updates, state = tx.update(grads, state, params, progress=progress)
        moments = update_moments(grads, moments, decays, b2)
        flat = lambda tree: ravel_pytree(tree)[0]  # noqa: E731
        record = {"g": flat(grads), "m": jnp.stack([flat(m) for m in moments.momenta]),
                  "v": flat(moments.nu), "count": moments.count, "p": progress,
                  "update": flat(updates)}
        return (optax.apply_updates(params, updates), state, moments), record

    @jax.jit
    def run(key: jax.Array) -> dict[str, jax.Array]:
        init_key, data_key = jax.random.split(key)
        params = problem.init_params(init_key)
        carry = (params, tx.init(params), init_moments(params, len(decays)))
        inputs = (jnp.arange(n_steps, dtype=jnp.float32), jax.random.split(data_key, n_steps))
        return jax.lax.scan(step, carry, inputs)[1]

    return run


def _samples(records: dict[str, jax.Array], decays: tuple[float, ...], b2: float,
             learning_rate: float, n: int, rng: np.random.Generator
             ) -> tuple[dict[str, np.ndarray], np.ndarray]:
    """`n` (step, element) samples drawn without replacement: term variables and the target
    ``-update / learning_rate``, in float64."""
    rec = {k: np.asarray(v, np.float64) for k, v in records.items()}
    if not all(np.all(np.isfinite(v)) for v in rec.values()):
        raise ValueError("training with the optimizer gave non-finite values; distil it on a "
                         "problem (or learning rate) where it does not diverge")
    steps, size = rec["g"].shape
    pick = rng.choice(steps * size, size=min(n, steps * size), replace=False)
    row, col = pick // size, pick % size
    count = rec["count"][row]
    variables = {"g": rec["g"][row, col], "p": rec["p"][row],
                 "v": rec["v"][row, col] / (1.0 - b2 ** count)}
    for k, d in enumerate(decays):
        variables[f"m{k}"] = rec["m"][row, k, col] / (1.0 - d ** count)
    return variables, -rec["update"][row, col] / learning_rate


@one_blas_thread
def fit_transformation(
    tx: optax.GradientTransformation,
    *,
    learning_rate: float,
    momentum_decays: Sequence[float] = DEFAULT_DECAYS,
    b2: float = 0.999,
    eps: float = 1e-8,
    eps_root: float = 0.0,
    total_steps: int | None = None,
    seed: int = 0,
    problem: TrainingProblem | None = None,
    n_steps: int = 200,
    n_samples: int = 20000,
    max_terms: int = 4,
    library: Sequence[str] | None = None,
    tolerance: float = 0.002,
    n_thresholds: int = 60,
    optimizer: str = "",
) -> OptimizerFit:
    """Distil any optax transformation `tx` whose update scales with `learning_rate` into
    ``-learning_rate * sum_i c_i term_i``; :func:`fit_optimizer` is this for a learned one.

    `tx` trains `problem` (default :func:`regression_problem`) for `n_steps` steps from
    `seed`, receiving ``progress = step / n_steps`` as an extra argument; the moments the
    terms read are kept alongside with `momentum_decays` (the first is Adam's b1), `b2`, `eps`
    and `eps_root`, which should be `tx`'s own. `n_samples` (step, element) pairs of that run
    are the training set of :func:`metarl.distill.symbolic.sparse_regression` (at most
    `max_terms` terms of `library`, default all of :func:`candidate_terms`, giving up at most
    `tolerance` of validation r2 for sparsity); ``max(n_samples // 4, 1000)`` pairs of a
    second run from another seed are the held-out set the errors are measured on.
    `total_steps` is only what the closed form defaults to for its own progress.
    """
    decays = tuple(float(d) for d in momentum_decays)
    b2, eps, eps_root = float(b2), float(eps), float(eps_root)
    if max_terms < 0 or n_samples < 10 or tolerance < 0 or n_steps < 1:
        raise ValueError("need max_terms >= 0, n_samples >= 10, tolerance >= 0, n_steps >= 1")
    all_terms = candidate_terms(decays)
    names = list(all_terms) if library is None else list(library)
    unknown = [t for t in names if t not in all_terms]
    if unknown:
        raise ValueError(f"unknown terms {unknown}; known: {list(all_terms)}")
    names = [t for t in all_terms if t in set(names)]  # library order is the tie-break

    run = _trajectory(optax.with_extra_args_support(tx), problem or regression_problem(),
                      n_steps, decays, b2)
    train_seq, test_seq = np.random.SeedSequence(seed).spawn(2)
    train_rng, test_rng = np.random.default_rng(train_seq), np.random.default_rng(test_seq)
    key = jax.random.PRNGKey(seed)
    x, y = _samples(run(key), decays, b2, learning_rate, n_samples, train_rng)
    n_test = max(n_samples // 4, 1000)
    x_test, y_test = _samples(run(jax.random.fold_in(key, 1)), decays, b2, learning_rate,
                              n_test, test_rng)

    def columns(variables: dict[str, np.ndarray], terms: Sequence[str]) -> np.ndarray:
        constants = {"eps": eps, "eps_root": eps_root}
        return np.stack([np.broadcast_to(_eval_source(all_terms[t], {**variables, **constants}),
                                         variables["g"].shape) for t in terms], axis=1)

    solution = sparse_regression(columns(x, names), y, train_rng, max_terms=max_terms,
                                 tolerance=tolerance, n_thresholds=n_thresholds)
    terms = [names[j] for j in solution.support]
    coefs = [float(c) for c in solution.coefficients]
    pred = columns(x_test, terms) @ np.asarray(coefs) if terms else np.zeros_like(y_test)
    metrics = fit_metrics(pred, y_test)
    scale = math.sqrt(float(np.mean(y_test ** 2))) or 1.0
    return OptimizerFit(
        terms=terms, coefficients=coefs, r2=metrics.r2, relative_rmse=metrics.rmse / scale,
        rmse=metrics.rmse, max_abs_error=metrics.max_abs_error, momentum_decays=decays, b2=b2,
        eps=eps, eps_root=eps_root, learning_rate=float(learning_rate),
        total_steps=total_steps, optimizer=optimizer, found_by=solution.found_by,
        n_train=len(y), n_test=len(y_test))


def fit_optimizer(name: str, meta_params: PyTree, settings: dict | None = None, *,
                  seed: int = 0, **options: Any) -> OptimizerFit:
    """Distil learned optimizer `name` with weights `meta_params` and make() `settings`
    (defaults filled in) into a closed form; `options` are :func:`fit_transformation`'s
    (`problem`, `n_steps`, `n_samples`, `max_terms`, `library`, `tolerance`,
    `n_thresholds`). The moments the terms read use the optimizer's own decays, b2, eps and
    eps_root, so at the Adam start (`adam_init_meta`) the fit is exactly Adam."""
    s = optimizer_settings(name, settings)
    tx = make_learned_optimizer(name, meta_params, **(settings or {}))
    return fit_transformation(
        tx, learning_rate=float(s["learning_rate"]), momentum_decays=s["momentum_decays"],
        b2=s["b2"], eps=s["eps"], eps_root=s["eps_root"], total_steps=s.get("total_steps"),
        seed=seed, optimizer=name, **options)
