"""Source text of an exported learned optimizer module.

The module is a drop-in `optax` optimizer: its weights as literals (with their declared shapes
and a SHA-256 checked on import) and `optimizer(**settings)`, a standalone re-statement of
`metarl.learned_optimizers` (features, per-tensor normalisation, Adam skip connection,
direction x exp(magnitude) output, and for `open` the GRU and the learned noise). The code is
written out here rather than copied from the platform so that a user reads one plain file; the
tests hold it to the platform's numbers. See docs/optimizer-export.md.
"""

from __future__ import annotations

import inspect
import textwrap
from pathlib import Path
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np

from metarl.export.codegen import WIDTH, literal_assignment, provenance_doc, weights_digest
from metarl.export.errors import ExportError
from metarl.export.literals import plain
from metarl.export.writer import stamped, write_source
from metarl.learned_optimizers.registry import LEARNED_OPTIMIZERS

OPTIMIZER_FORMAT = "metarl-optimizer/1"
# settings that are a function or a pytree, not a literal: the user passes them to optimizer()
KEYWORD_ONLY = ("actor_mask",)
_FIX = "re-export the optimizer rather than editing the file"

_SUMMARY = {
    "mlp": ("The per-parameter MLP learned optimizer of Metz et al. 2022 (\"Practical tradeoffs "
            "between memory, compute, and performance in learned optimization\"), with a skip "
            "connection to Adam. For every parameter a small tanh MLP, shared by all "
            "parameters, reads normalised features (gradient, value, momenta, second-moment "
            "RMS, momentum/RMS ratios, training progress, the tensor's log size and rank) and "
            "outputs a direction d and a log-magnitude m:",
            "    update = -learning_rate * (adam + d) * exp(magnitude_scale * m)",
            "where adam is Adam's bias-corrected m_hat / (sqrt(v_hat + eps_root) + eps) from the "
            "optimizer's own moments."),
    "open": ("An OPEN-style learned optimizer for reinforcement learning (Goldie et al. 2024, "
             "\"Can Learned Optimization Make Reinforcement Learning Less Difficult?\"), with a "
             "skip connection to Adam. A small GRU, shared by all parameters, keeps a hidden "
             "state per parameter; it reads normalised features (gradient, value, momenta, "
             "second-moment RMS, momentum/RMS ratios, the tensor's log size and rank) and "
             "OPEN's inputs for RL (training proportion, batch proportion, dormancy, layer "
             "proportion), and a linear head gives a direction d, a log-magnitude m and a "
             "noise scale s:",
             "    update = -learning_rate * (adam + d) * exp(magnitude_scale * m)\n"
             "             + learning_rate * s * N(0, 1)      (parameters in actor_mask only)",
             "where adam is Adam's bias-corrected m_hat / (sqrt(v_hat + eps_root) + eps) from the "
             "optimizer's own moments. The noise is OPEN's learned exploration; its PRNG key "
             "lives in the optimizer state and starts from SETTINGS[\"seed\"]."),
}

_USAGE = {
    "mlp": ("    tx = lopt.optimizer()  # or lopt.optimizer(learning_rate=3e-4, total_steps=1000)",
            "Training progress, an input, is the `progress` extra argument of update() when "
            "passed (e.g. tx.update(grads, state, params, progress=step / num_steps)), else the "
            "step count over SETTINGS[\"total_steps\"], else 0."),
    "open": ("    tx = lopt.optimizer(actor_mask=lambda params: ...)  # True where noise goes",
             "update() also takes the extra arguments `progress` (training proportion; else the "
             "step count over SETTINGS[\"total_steps\"], else 0), `batch_proportion` (default "
             "0) and `dormancy` (a pytree broadcastable to the params, default 0). Without "
             "actor_mask no noise is added."),
}

# The checks that run on import: a hand-edited or damaged file must fail there, with a message
# naming what is wrong, rather than as wrong updates later.
_CHECKS = f'''
def _flatten(tree: dict, prefix: str = "") -> list[tuple[str, Any]]:
    """(dotted name, leaf) for every leaf of a nested dict, in its order."""
    items = []
    for key, value in tree.items():
        if isinstance(value, dict):
            items += _flatten(value, f"{{prefix}}{{key}}.")
        else:
            items.append((f"{{prefix}}{{key}}", value))
    return items


def _check_weights() -> None:
    fix = "{_FIX}"
    weights, shapes = dict(_flatten(WEIGHTS)), dict(_flatten(SHAPES))
    if list(weights) != list(shapes):
        raise ValueError(f"{{__file__}}: WEIGHTS holds {{list(weights)}} but SHAPES declares "
                         f"{{list(shapes)}}; {{fix}}")
    for name, value in weights.items():
        try:
            shape = list(np.shape(np.asarray(value, np.float32)))
        except (TypeError, ValueError):
            shape = "no shape (ragged or not numbers)"
        if shape != shapes[name]:
            raise ValueError(f"{{__file__}}: weight {{name}} has shape {{shape}} but SHAPES "
                             f"declares {{shapes[name]}}; {{fix}}")
    digest = hashlib.sha256(repr((SETTINGS, WEIGHTS)).encode()).hexdigest()
    if digest != WEIGHTS_SHA256:
        raise ValueError(f"{{__file__}}: SETTINGS or WEIGHTS were modified after export "
                         f"(they do not match WEIGHTS_SHA256); {{fix}}")


def _arrays(tree: dict) -> dict:
    return {{k: _arrays(v) if isinstance(v, dict) else jnp.asarray(v, jnp.float32)
            for k, v in tree.items()}}


_check_weights()
_PARAMS = _arrays(WEIGHTS)
'''

# Shared by both families: settings, Adam's statistics and the per-parameter features.
_COMMON = '''

def _settings(overrides: dict[str, Any]) -> dict[str, Any]:
    allowed = [*SETTINGS, *_KEYWORD_ONLY]
    unknown = sorted(set(overrides) - set(allowed))
    if unknown:
        raise TypeError(f"optimizer() got unknown argument(s) {', '.join(unknown)}; "
                        f"allowed: {', '.join(allowed)}")
    settings = {**SETTINGS, **dict.fromkeys(_KEYWORD_ONLY), **overrides}
    settings["momentum_decays"] = tuple(settings["momentum_decays"])
    return settings


def _zeros_like(params: Any) -> Any:
    return jax.tree.map(jnp.zeros_like, params)


def _moving_average(new: Any, old: Any, decay: float, power: int) -> Any:
    # written as optax writes Adam's moments, so that the skip connection is optax.adam's step
    return jax.tree.map(lambda g, m: (1 - decay) * (g**power) + decay * m, new, old)


@jax.jit
def _bias_correction(decay: float, count: jax.Array) -> jax.Array:
    # compiled, as optax compiles it: eager and compiled pow round differently, and with the
    # network's outputs at 0 the step is meant to be optax.adam's to the last bit
    return 1 - decay**count


def _bias_corrected(moment: Any, decay: float, count: jax.Array) -> Any:
    correction = _bias_correction(decay, count)
    return jax.tree.map(lambda m: m / correction.astype(m.dtype), moment)


def _progress(count: jax.Array, total_steps: int | None, extra_args: dict) -> jax.Array:
    """Training progress in [0, 1]: the caller's `progress` when passed, else the step count
    over `total_steps`, else 0."""
    if "progress" in extra_args:
        return jnp.asarray(extra_args["progress"], jnp.float32)
    if total_steps is None:
        return jnp.zeros([], jnp.float32)
    return jnp.clip(count.astype(jnp.float32) / total_steps, 0.0, 1.0)


def _statistics(grads: Any, state: Any, s: dict, extra_args: dict) -> tuple:
    """What every step computes first: the step count, the momenta at each decay (the first
    is Adam's m), Adam's v, Adam's direction m_hat / (sqrt(v_hat + eps_root) + eps) and
    training progress."""
    decays = s["momentum_decays"]
    count = optax.safe_int32_increment(state.count)
    momenta = tuple(_moving_average(grads, m, decay, 1)
                    for decay, m in zip(decays, state.momenta, strict=True))
    nu = _moving_average(grads, state.nu, s["b2"], 2)
    m_hat = _bias_corrected(momenta[0], decays[0], count)
    v_hat = _bias_corrected(nu, s["b2"], count)
    adam = jax.tree.map(lambda m, v: m / (jnp.sqrt(v + s["eps_root"]) + s["eps"]), m_hat, v_hat)
    return count, momenta, nu, adam, _progress(count, s["total_steps"], extra_args)


def _tensor_features(g: jax.Array, p: jax.Array, momenta: tuple, nu: jax.Array,
                     eps: float) -> jax.Array:
    """Per-parameter inputs `(*p.shape, features)`: gradient, value, momenta, second-moment
    RMS and each momentum over that RMS, each divided by its root mean square over the
    tensor (Metz et al. 2022), so one network serves tensors and tasks of any scale."""
    rms = jnp.sqrt(nu + 1e-30)  # the offset keeps the derivative finite where nu is 0
    ratios = [m / (rms + eps) for m in momenta]
    x = jnp.stack([g, p, *momenta, rms, *ratios], axis=-1)
    axes = tuple(range(x.ndim - 1))
    return x * jax.lax.rsqrt(jnp.mean(x**2, axis=axes, keepdims=True) + 1e-12)


def _shape_features(p: jax.Array) -> list[jax.Array]:
    """The tensor's log size and rank, scaled to order one: a bias and a weight matrix may
    be treated differently."""
    return [jnp.log(jnp.float32(max(p.size, 1))) / 10.0, jnp.float32(p.ndim) / 4.0]


def _append_features(x: jax.Array, scalars: list) -> jax.Array:
    """`x` with scalars (per tensor, or per element of its shape) added to the feature axis."""
    shape = x.shape[:-1]
    extra = [jnp.broadcast_to(jnp.asarray(s, x.dtype), shape) for s in scalars]
    return jnp.concatenate([x, jnp.stack(extra, axis=-1)], axis=-1)


def _dense(params: dict, x: jax.Array) -> jax.Array:
    """A tanh MLP over the last axis with weights w0, b0, w1, b1, ...; linear output."""
    num_layers = len(params) // 2
    for i in range(num_layers - 1):
        x = jnp.tanh(x @ params[f"w{i}"] + params[f"b{i}"])
    return x @ params[f"w{num_layers - 1}"] + params[f"b{num_layers - 1}"]


def _learned_step(adam: jax.Array, out: jax.Array, learning_rate: Any,
                  magnitude_scale: float) -> jax.Array:
    """Metz et al.'s direction x exp(magnitude), with Adam's direction as a skip
    connection: exactly Adam's step when the network outputs d = m = 0."""
    return -learning_rate * (adam + out[..., 0]) * jnp.exp(magnitude_scale * out[..., 1])
'''

_MLP = '''

class OptimizerState(NamedTuple):
    count: jax.Array  # steps taken (int32)
    momenta: tuple  # per momentum decay, a moving average of the gradients (params' shape)
    nu: Any  # the moving average of the squared gradients (Adam's v)


def optimizer(**settings: Any) -> optax.GradientTransformationExtraArgs:
    """This learned optimizer as an optax transformation; keyword arguments override
    SETTINGS (learning_rate, momentum_decays, b2, eps, eps_root, magnitude_scale,
    total_steps). `update(grads, state, params)` needs params: their values are an input."""
    s = _settings(settings)

    def init_fn(params: Any) -> OptimizerState:
        return OptimizerState(jnp.zeros([], jnp.int32),
                              tuple(_zeros_like(params) for _ in s["momentum_decays"]),
                              _zeros_like(params))

    def update_fn(grads: Any, state: OptimizerState, params: Any = None,
                  **extra_args: Any) -> tuple[Any, OptimizerState]:
        if params is None:
            raise ValueError("this learned optimizer needs params in update()")
        count, momenta, nu, adam, progress = _statistics(grads, state, s, extra_args)

        def leaf_update(g, p, v, direction, *moms):
            x = _tensor_features(g, p, moms, v, s["eps"])
            x = _append_features(x, [progress, *_shape_features(p)])
            out = _dense(_PARAMS, x)
            step = _learned_step(direction, out, s["learning_rate"], s["magnitude_scale"])
            return step.astype(g.dtype)

        updates = jax.tree.map(leaf_update, grads, params, nu, adam, *momenta)
        return updates, OptimizerState(count, momenta, nu)

    return optax.GradientTransformationExtraArgs(init_fn, update_fn)
'''

_OPEN = '''

class OptimizerState(NamedTuple):
    count: jax.Array  # steps taken (int32)
    momenta: tuple  # per momentum decay, a moving average of the gradients (params' shape)
    nu: Any  # the moving average of the squared gradients (Adam's v)
    hidden: Any  # the GRU's state per parameter, (*param.shape, hidden size)
    key: jax.Array  # PRNG key of the learned noise


def _gru_cell(params: dict, x: jax.Array, h: jax.Array) -> jax.Array:
    """One GRU step (Cho et al. 2014) over the last axis, batched over the leading ones."""
    size = h.shape[-1]
    gx = x @ params["wx"] + params["b"]
    gh = h @ params["wh"]
    z = jax.nn.sigmoid(gx[..., :size] + gh[..., :size])
    r = jax.nn.sigmoid(gx[..., size:2 * size] + gh[..., size:2 * size])
    n = jnp.tanh(gx[..., 2 * size:] + r * gh[..., 2 * size:])
    return (1.0 - z) * n + z * h


def optimizer(**settings: Any) -> optax.GradientTransformationExtraArgs:
    """This learned optimizer as an optax transformation; keyword arguments override
    SETTINGS (learning_rate, momentum_decays, b2, eps, eps_root, magnitude_scale,
    total_steps, seed), and `actor_mask` (a pytree of booleans like the params, or a
    function of the params giving one) marks the parameters that get the learned noise.
    `update(grads, state, params, **extra_args)` needs params: their values are an input."""
    s = _settings(settings)
    hidden_size = _PARAMS["gru"]["wh"].shape[0]

    def init_fn(params: Any) -> OptimizerState:
        hidden = jax.tree.map(lambda p: jnp.zeros((*p.shape, hidden_size), p.dtype), params)
        return OptimizerState(jnp.zeros([], jnp.int32),
                              tuple(_zeros_like(params) for _ in s["momentum_decays"]),
                              _zeros_like(params), hidden, jax.random.PRNGKey(s["seed"]))

    def update_fn(grads: Any, state: OptimizerState, params: Any = None,
                  **extra_args: Any) -> tuple[Any, OptimizerState]:
        if params is None:
            raise ValueError("this learned optimizer needs params in update()")
        count, momenta, nu, adam, progress = _statistics(grads, state, s, extra_args)
        batch = jnp.asarray(extra_args.get("batch_proportion", 0.0), jnp.float32)
        dormancy = extra_args.get("dormancy")
        if dormancy is None:
            dormancy = jax.tree.map(lambda _: 0.0, grads)
        mask = s["actor_mask"](params) if callable(s["actor_mask"]) else s["actor_mask"]
        noisy = mask is not None
        if not noisy:
            mask = jax.tree.map(lambda _: False, grads)
        key, noise_key = jax.random.split(state.key)
        leaves, treedef = jax.tree.flatten(grads)
        indices = jax.tree.unflatten(treedef, range(len(leaves)))  # position of each tensor

        def leaf_update(g, p, v, direction, h, dormant, index, masked, *moms):
            x = _tensor_features(g, p, moms, v, s["eps"])
            layer = index / len(leaves)
            x = _append_features(x, [progress, batch, dormant, layer, *_shape_features(p)])
            h = _gru_cell(_PARAMS["gru"], x, h)
            out = _dense(_PARAMS["head"], h)
            step = _learned_step(direction, out, s["learning_rate"], s["magnitude_scale"])
            if noisy:
                noise = jax.random.normal(jax.random.fold_in(noise_key, index), g.shape)
                step = step + jnp.where(masked, s["learning_rate"] * out[..., 2] * noise, 0.0)
            return step.astype(g.dtype), h

        outs = jax.tree.map(leaf_update, grads, params, nu, adam, state.hidden, dormancy,
                            indices, mask, *momenta)
        updates = jax.tree.map(lambda _, o: o[0], grads, outs)
        hidden = jax.tree.map(lambda _, o: o[1], grads, outs)
        return updates, OptimizerState(count, momenta, nu, hidden, key)

    return optax.GradientTransformationExtraArgs(init_fn, update_fn)
'''

_FAMILY_CODE = {"mlp": _MLP, "open": _OPEN}


def literal_settings(name: str, settings: dict[str, Any] | None = None) -> dict[str, Any]:
    """The family's make() settings that are literals, defaults filled in, as plain Python
    values in make()'s order; `ExportError` for an unknown name or setting, for
    `actor_mask` (a function or pytree: the user passes it to the module's optimizer()) and
    for a value that is not a number (e.g. a learning-rate schedule)."""
    if name not in _FAMILY_CODE:
        raise ExportError(f"cannot export learned optimizer {name!r}; exportable: "
                          f"{', '.join(_FAMILY_CODE)}")
    signature = inspect.signature(LEARNED_OPTIMIZERS[name].make).parameters
    defaults = {k: p.default for k, p in signature.items()
                if k != "meta_params" and k not in KEYWORD_ONLY}
    given = dict(settings or {})
    passed_on = sorted(set(given) & set(KEYWORD_ONLY) & set(signature))
    if passed_on:
        raise ExportError(f"{', '.join(passed_on)} is a function or pytree, not a literal, so "
                          "it is not exported: leave it out of the settings and pass it to "
                          f"the exported module's optimizer({passed_on[0]}=...)")
    unknown = sorted(set(given) - set(defaults))
    if unknown:
        raise ExportError(f"unknown setting(s) {', '.join(unknown)} for learned optimizer "
                          f"{name!r}; choose from {', '.join(defaults)}")
    out = plain({**defaults, **given})
    for key, value in out.items():
        numbers = value if isinstance(value, list) else [value]
        if not all(v is None or isinstance(v, int | float) for v in numbers):
            raise ExportError(f"setting {key} = {given.get(key, value)!r} is not a number; an "
                              "export holds literal settings only (a schedule cannot be "
                              "exported: pass it to the module's optimizer() instead)")
    return out


def make_settings(settings: dict[str, Any]) -> dict[str, Any]:
    """Literal settings (as in SETTINGS) as make() takes them."""
    out = dict(settings)
    if isinstance(out.get("momentum_decays"), list):
        out["momentum_decays"] = tuple(out["momentum_decays"])
    return out


def weight_shapes(weights: Any) -> Any:
    """The shape of every weight, as lists, in the weights' nested-dict layout."""
    if isinstance(weights, dict):
        return {k: weight_shapes(v) for k, v in weights.items()}
    return list(np.shape(weights))


def misfit(name: str, weights: Any, settings: dict[str, Any]) -> str | None:
    """None if the in-platform optimizer `name` runs with `weights` (float32 arrays) and
    `settings` and gives updates of the parameters' shapes, else what went wrong. Catches
    e.g. a whole ES population passed instead of one member, which would export fine and
    fail only in the user's training loop."""
    params = {"b": jax.ShapeDtypeStruct((3,), jnp.float32),
              "w": jax.ShapeDtypeStruct((2, 3), jnp.float32)}
    kwargs = make_settings(settings)
    if "actor_mask" in inspect.signature(LEARNED_OPTIMIZERS[name].make).parameters:
        kwargs["actor_mask"] = lambda p: jax.tree.map(lambda _: True, p)  # run the noise too

    def step(meta: Any, params: Any) -> Any:
        tx = LEARNED_OPTIMIZERS[name].make(meta, **kwargs)
        return tx.update(params, tx.init(params), params)[0]

    try:
        updates = jax.eval_shape(step, weights, params)
    except Exception as err:  # whatever fails, the weights do not fit
        return f"{type(err).__name__}: {str(err).splitlines()[0] if str(err) else ''}"
    got = jax.tree.map(lambda u: u.shape, updates)
    want = jax.tree.map(lambda p: p.shape, params)
    if got != want:
        return f"updates come out with shapes {got} for parameters of shapes {want}"
    return None


def _sorted(tree: Any) -> Any:
    # jax orders dict keys when flattening; writing them sorted makes the file deterministic
    if isinstance(tree, dict):
        return {str(k): _sorted(tree[k]) for k in sorted(tree)}
    return tree


def _tuple_source(names: tuple[str, ...]) -> str:
    # double quotes, as the file's other literals (repr would give single ones)
    items = ", ".join(f'"{n}"' for n in names)
    return f"({items},)" if len(names) == 1 else f"({items})"


def _docstring(name: str, provenance: dict[str, Any]) -> str:
    paragraph, formula, after = _SUMMARY[name]
    usage, notes = _USAGE[name]
    fill = lambda text: textwrap.fill(text, WIDTH)  # noqa: E731
    return f'''"""Learned optimizer `{name}`, exported by metarl.

{fill(paragraph)}

{formula}

{fill(after)}

Provenance:
{provenance_doc(provenance)}

Usage in any optax training loop (the file imports only jax, numpy and optax):

    import lopt  # this file
{usage}
    opt_state = tx.init(params)
    updates, opt_state = tx.update(grads, opt_state, params)  # params are required
    params = optax.apply_updates(params, updates)

{fill(notes)}

SETTINGS are optimizer()'s defaults; its keyword arguments override them. On import,
WEIGHTS are checked against SHAPES and WEIGHTS_SHA256: an edited value raises ValueError.
Re-export rather than editing them.
"""
'''


def render_optimizer_module(name: str, meta_params: Any, settings: dict[str, Any],
                            provenance: dict[str, Any], extra_source: str = "") -> str:
    """The full text of the exported module for learned optimizer `name` ("mlp" or "open")
    with weights `meta_params` and make() `settings` (defaults filled in; not actor_mask).

    `provenance` goes into the docstring and `PROVENANCE` as given; `extra_source` is
    appended verbatim after the module's own code (e.g. a distilled closed form). Raises
    `ExportError` for an unknown optimizer or setting, non-finite weights or weights that do
    not fit the optimizer.
    """
    literals = literal_settings(name, settings)
    if not isinstance(meta_params, dict):
        raise ExportError(f"meta_params must be a dict of arrays (as init_meta returns), got "
                          f"{type(meta_params).__name__}")
    weights = plain(_sorted(meta_params))
    arrays = jax.tree.map(lambda w: jnp.asarray(w, jnp.float32), meta_params)
    problem = misfit(name, arrays, literals)
    if problem:
        raise ExportError(f"meta_params do not fit learned optimizer {name!r} with settings "
                          f"{literals}: {problem}")
    keyword_only = tuple(k for k in KEYWORD_ONLY
                         if k in inspect.signature(LEARNED_OPTIMIZERS[name].make).parameters)
    header = _docstring(name, provenance) + (
        "\nfrom __future__ import annotations\n\n"
        "import hashlib\n"
        "from typing import Any, NamedTuple\n\n"
        "import jax\n"
        "import jax.numpy as jnp\n"
        "import numpy as np\n"
        "import optax\n\n"
    )
    body = (
        f'OPTIMIZER = "{name}"\n'
        f'FORMAT = "{OPTIMIZER_FORMAT}"\n'
        + literal_assignment("PROVENANCE", plain(provenance))
        + "\n"
        + literal_assignment("SETTINGS", literals)
        + literal_assignment("SHAPES", weight_shapes(weights))
        + literal_assignment("WEIGHTS", weights)
        + f'WEIGHTS_SHA256 = "{weights_digest(literals, weights)}"\n'
        + "# function or pytree arguments of optimizer(), not literals: no default is exported\n"
        + f"_KEYWORD_ONLY = {_tuple_source(keyword_only)}\n"
        + "\n"
        + _CHECKS
        + _COMMON
        + _FAMILY_CODE[name]
    )
    source = header + body
    if extra_source:
        source += "\n\n" + extra_source
    try:
        compile(source, "<exported optimizer>", "exec")
    except SyntaxError as err:  # in extra_source, or a provenance value we failed to sanitise
        raise ExportError(f"the generated module does not compile ({err})") from None
    return source


def write_optimizer_module(name: str, meta_params: Any, settings: dict[str, Any] | None,
                           path: str | Path, provenance: dict[str, Any] | None = None,
                           extra_source: str = "") -> Path:
    """Write learned optimizer `name` with `meta_params` and `settings` as a self-contained
    module at `path` (atomically) and return the path.

    The metarl version and the export time (UTC) are added to `provenance` unless given. The
    module imports only hashlib, typing, jax, numpy and optax and defines
    `optimizer(**settings) -> optax.GradientTransformationExtraArgs`; see
    docs/optimizer-export.md. Raises `ExportError` as `render_optimizer_module` does.
    """
    source = render_optimizer_module(name, meta_params, settings or {}, stamped(provenance),
                                     extra_source)
    return write_source(path, source)
