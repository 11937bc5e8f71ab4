"""Source text of an exported rule module.

The numerical core of each rule (`mlp`, `lpo_drift`, `dpo_drift`, ...) is copied verbatim
from `metarl.learned` with `inspect.getsource`, so an exported rule computes with exactly the
code it was searched with; only the thin public wrappers (`drift`, `policy_objective`) are
written here. Those kernels therefore use nothing but `jnp` (checked by the tests, which run
ruff's undefined-name check on an exported file).
"""

from __future__ import annotations

import hashlib
import inspect
import textwrap
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import jax
import numpy as np

from metarl.export.errors import ExportError
from metarl.export.literals import check_round_trip, plain, render
from metarl.learned import (
    DPO,
    LPO,
    LearnedObjective,
    MLPObjective,
    PPOClip,
    dpo_drift,
    lpo_drift,
    lpo_features,
    lpo_gap,
    mlp,
    mlp_objective,
    objective_features,
    objective_settings,
    ppo_clip_drift,
)

FORMAT = "metarl-objective/1"
WIDTH = 88  # black's and ruff's default, so the file is clean under a user's default config
CHECKSUM_MESSAGE = ("was modified after export: weights do not match their checksum; "
                    "re-export with `metarl export`")
_SPLIT = CHECKSUM_MESSAGE.index("match")  # where the generated source breaks the line


@dataclass(frozen=True)
class _Rule:
    summary: str  # first docstring line
    formula: str  # docstring paragraph
    kernels: tuple[Callable, ...]
    wrappers: str  # source of drift / policy_objective
    usage: str


def weights_digest(settings: dict[str, Any], weights: dict[str, Any]) -> str:
    """The checksum an exported module embeds and verifies: SHA-256 of the literals' repr."""
    return hashlib.sha256(repr((settings, weights)).encode()).hexdigest()


def _args_doc(extra: str) -> str:
    text = ("Arguments are arrays (or Python floats), elementwise over broadcastable shapes: "
            "ratio = pi_new(a|s) / pi_old(a|s) (> 0), advantage = the advantage estimate "
            f"(normalised per minibatch, as in PPO){extra}. Returns an array of the "
            "broadcast shape.")
    return textwrap.fill(text, WIDTH, initial_indent="    ", subsequent_indent="    ")


def _drift_wrappers(call: str, temporal: bool, extra_params: str = "",
                    objective_body: str | None = None) -> str:
    """`drift` and `policy_objective` for a Mirror-Learning rule `r*A - drift`."""
    if temporal:
        guard = ('    if progress is None:\n'
                 '        raise ValueError("this rule is temporally aware: pass progress = "\n'
                 '                         "update / num_updates")\n')
        doc_extra = ", progress = update / num_updates in [0, 1) (required)"
    else:
        guard = "    del progress  # not an input of this rule; accepted for a uniform API\n"
        doc_extra = "; progress is accepted and ignored"
    args_doc = _args_doc(doc_extra)
    sig = f"ratio, advantage, progress=None{extra_params}"
    objective = objective_body or f"    return ratio * advantage - drift({sig_call(sig)})\n"
    return (
        f"def drift({sig}):\n"
        f'    """The drift penalty (>= 0, and 0 at ratio = 1).\n\n{args_doc}\n    """\n'
        f"{guard}"
        f"    return {call}\n"
        "\n\n"
        f"def policy_objective({sig}):\n"
        '    """Per-sample objective to maximise: ratio * advantage - drift.\n\n'
        f"{args_doc}\n"
        "    Use `loss = -policy_objective(...).mean()` in place of PPO's clipped loss.\n"
        '    """\n'
        f"{objective}"
    )


def sig_call(sig: str) -> str:
    """`a, b, c=None` -> `a, b, c` (forwarding a signature's arguments by position)."""
    return ", ".join(p.split("=")[0] for p in sig.split(", "))


def _rule_for(objective: LearnedObjective) -> _Rule:
    if isinstance(objective, LPO):
        progress = "progress" if objective.temporal else "None"
        what = ("LPO drift network with training progress as an input (TA-LPO; Jackson et "
                "al. 2024, Discovering Temporally-Aware Reinforcement Learning Algorithms)"
                if objective.temporal else
                "LPO drift network (Lu et al. 2022, Discovered Policy Optimisation)")
        return _Rule(
            summary=f"Learned policy objective `{objective.name}`, exported by metarl.",
            formula=(f"{what}.\n\n"
                     "    policy_objective = r*A - drift(r, A)\n"
                     "    drift(r, A) = relu(f(x(r, A)) - f(x(1, A)))\n\n"
                     "f is the tanh MLP below over x = [r-1, log r, (r-1)^2, (log r)^2] and "
                     "their products with A" + (", plus progress" if objective.temporal else "")
                     + ". The drift is >= 0 everywhere and 0 at r = 1 (Mirror Learning)."),
            kernels=(mlp, lpo_features, lpo_gap, lpo_drift),
            wrappers=_drift_wrappers(f"lpo_drift(_PARAMS, ratio, advantage, {progress})",
                                     objective.temporal),
            usage=("objective = rule.policy_objective(ratio, advantage"
                   + (", progress=update / num_updates)" if objective.temporal else ")")),
        )
    if isinstance(objective, DPO):
        return _Rule(
            summary="Policy objective `dpo` (Discovered Policy Optimisation), exported by "
                    "metarl.",
            formula=("Lu et al. 2022, Discovered Policy Optimisation:\n\n"
                     "    policy_objective = r*A - drift(r, A)\n"
                     "    drift = relu((r-1)A - alpha tanh((r-1)A / alpha))   if A >= 0\n"
                     "            relu(log(r)A - beta tanh(log(r)A / beta))   if A < 0\n\n"
                     "with alpha and beta from SETTINGS."),
            kernels=(dpo_drift,),
            wrappers=_drift_wrappers(
                'dpo_drift(ratio, advantage, SETTINGS["alpha"], SETTINGS["beta"])', False),
            usage="objective = rule.policy_objective(ratio, advantage)",
        )
    if isinstance(objective, PPOClip):
        clipped = ("    del progress\n"
                   "    clipped = jnp.clip(ratio, 1.0 - clip_eps, 1.0 + clip_eps)\n"
                   "    return jnp.minimum(ratio * advantage, clipped * advantage)\n")
        return _Rule(
            summary="Policy objective `ppo_clip` (PPO's clipped surrogate), exported by "
                    "metarl.",
            formula=("Schulman et al. 2017, Proximal Policy Optimization Algorithms:\n\n"
                     "    policy_objective = min(r*A, clip(r, 1-eps, 1+eps)*A)\n"
                     "                     = r*A - relu((r - clip(r, 1-eps, 1+eps)) * A)\n\n"
                     "clip_eps is an argument (PPO's hyperparameter), 0.2 by default."),
            kernels=(ppo_clip_drift,),
            wrappers=_drift_wrappers("ppo_clip_drift(ratio, advantage, clip_eps)", False,
                                     ", clip_eps=0.2", clipped),
            usage="objective = rule.policy_objective(ratio, advantage, clip_eps=0.2)",
        )
    if isinstance(objective, MLPObjective):
        return _Rule(
            summary="Learned policy objective `learned_objective`, exported by metarl.",
            formula=("A tanh MLP g over per-sample features x = [r-1, log r, A, (r-1)A, "
                     "(log r)A, symlog(value_error), entropy, progress]:\n\n"
                     "    policy_objective = base(r, A) + bound * tanh(g(x) / bound)\n\n"
                     "with bound from SETTINGS. base is r*A, or PPO-clip's min(r*A, "
                     "clip(r, 1-eps, 1+eps)*A) where SETTINGS gives base_clip_eps = eps."),
            kernels=(mlp, objective_features, mlp_objective),
            wrappers=(
                "def policy_objective(ratio, advantage, value_error, entropy, progress):\n"
                '    """Per-sample objective to maximise.\n\n'
                "    Arguments are arrays (or Python floats), elementwise over broadcastable\n"
                "    shapes: ratio = pi_new(a|s) / pi_old(a|s) (> 0), advantage = the\n"
                "    advantage estimate (normalised per minibatch), value_error = V(s) -\n"
                "    return target (no gradient), entropy = the policy's entropy at s (with\n"
                "    gradient), progress = update / num_updates in [0, 1). Returns an array\n"
                "    of the broadcast shape. Use `loss = -policy_objective(...).mean()`.\n"
                '    """\n'
                "    return mlp_objective(_PARAMS, ratio, advantage, value_error, entropy,\n"
                '                         progress, SETTINGS["bound"],\n'
                '                         SETTINGS["base_clip_eps"])\n'),
            usage=("objective = rule.policy_objective(ratio, advantage, value_error, "
                   "entropy, progress)"),
        )
    raise ExportError(f"cannot export an objective of type {type(objective).__name__}; "
                      "exportable: LPO, DPO, PPOClip, MLPObjective")


def _docstring_text(value: Any) -> str:
    # one line, and nothing that could end the docstring or start an escape sequence
    text = " ".join(str(value).split())
    return text.replace("\\", "\\\\").replace('"""', '\\"\\"\\"')


def provenance_doc(provenance: dict[str, Any]) -> str:
    """The docstring lines listing `provenance`, one key per (wrapped) line."""
    lines = []
    for key, value in provenance.items():
        lines.append(textwrap.fill(f"{_docstring_text(key)}: {_docstring_text(value)}",
                                   WIDTH, initial_indent="    ", subsequent_indent="        ",
                                   break_long_words=True, break_on_hyphens=False))
    return "\n".join(lines) if lines else "    (none given)"


def literal_assignment(name: str, value: Any) -> str:
    """`name = <value as a literal>` within WIDTH, checked to read back as `value`."""
    source = render(value, 0, len(name) + 3, WIDTH)
    check_round_trip(value, source)
    return f"{name} = {source}\n"


def _check_shapes(objective: LearnedObjective, meta_params: dict) -> None:
    # catches e.g. a whole ES population passed instead of one member, which would export
    # fine and fail only when the user calls the rule
    expected = jax.eval_shape(objective.init, jax.random.PRNGKey(0))
    got = {k: tuple(np.shape(v)) for k, v in meta_params.items()}
    want = {k: tuple(v.shape) for k, v in expected.items()}
    if got != want:
        raise ExportError(f"meta_params do not fit {objective!r}: expected shapes {want}, "
                          f"got {got}")


def render_module(objective: LearnedObjective, meta_params: Any,
                  provenance: dict[str, Any]) -> str:
    """The full text of the exported module for `objective` with `meta_params`."""
    rule = _rule_for(objective)
    if meta_params is None:
        meta_params = {}
    if not isinstance(meta_params, dict):
        raise ExportError(f"meta_params must be a dict of arrays (as `{objective.name}`.init "
                          f"returns), got {type(meta_params).__name__}")
    _check_shapes(objective, meta_params)
    settings = plain(objective_settings(objective))
    weights = plain(dict(sorted(meta_params.items())))
    kernels = "\n\n".join(textwrap.dedent(inspect.getsource(k)).strip() + "\n"
                          for k in rule.kernels)
    # prose paragraphs wrapped, indented (formula) paragraphs kept as they are
    doc = "\n\n".join(p if p.startswith(" ") else textwrap.fill(p, WIDTH)
                       for p in rule.formula.split("\n\n"))
    header = f'''"""{rule.summary}

{doc}

Provenance:
{provenance_doc(provenance)}

Usage in any JAX PPO (e.g. PureJaxRL's), in place of the clipped surrogate:

    import rule  # this file
    {rule.usage}
    loss = -objective.mean() + vf_coef * value_loss - ent_coef * entropy.mean()

Every function is pure jax.numpy, differentiable, and works under jit and vmap.
WEIGHTS and SETTINGS are checked against WEIGHTS_SHA256 on import: an edited value
raises ImportError. Re-export with `metarl export` rather than editing them.
"""

from __future__ import annotations

import hashlib

import jax.numpy as jnp

'''
    body = (
        f'RULE = "{objective.name}"\n'
        f'FORMAT = "{FORMAT}"\n'
        + literal_assignment("PROVENANCE", plain(provenance))
        + "\n"
        + literal_assignment("SETTINGS", settings)
        + literal_assignment("WEIGHTS", weights)
        + f'WEIGHTS_SHA256 = "{weights_digest(settings, weights)}"\n'
        + "\n\n"
        + "def _check_weights() -> None:\n"
        + "    digest = hashlib.sha256(repr((SETTINGS, WEIGHTS)).encode()).hexdigest()\n"
        + "    if digest != WEIGHTS_SHA256:\n"
        + f'        raise ImportError(f"{{__file__}} {CHECKSUM_MESSAGE[:_SPLIT]}"\n'
        + f'                          "{CHECKSUM_MESSAGE[_SPLIT:]}")\n'
        + "\n\n"
        + "_check_weights()\n"
        + "_PARAMS = {k: jnp.asarray(v, jnp.float32) for k, v in WEIGHTS.items()}\n"
        + "\n\n"
        + kernels
        + "\n\n"
        + rule.wrappers
    )
    source = header + body
    try:
        compile(source, "<exported rule>", "exec")
    except SyntaxError as err:  # a provenance value we failed to sanitise, say
        raise ExportError(f"internal error: generated module does not compile ({err})") from None
    return source
