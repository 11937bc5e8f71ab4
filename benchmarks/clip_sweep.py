"""How much room is there for a better update rule? PPO-clip at several clip ranges, the
unclipped surrogate (an LPO drift of zero) and DPO, trained with the same seeds on every task
of a spec's suite, training and held-out.

A learned drift can only beat PPO-clip on held-out tasks if some rule does; this sweep shows
whether a simple change of trust region already does at the spec's budgets. Only the policy's
clip range varies: PPO also clips the value update with `clip_eps`, and that stays at the
spec's value, because a learned policy objective cannot change it.

The seeds are `benchmarks/update_rule_quality.py`'s (training tasks `spec.seed + 2`, held out
`spec.seed + 1`), so the two scripts' figures pair. Each window (`--final-fraction`, several
allowed) scores the same training curves: the search's fitness window (0.5) and the
benchmark's held-out window (0.1) side by side.

    python benchmarks/clip_sweep.py                       # search/lpo_classic.toml, 10 seeds
    python benchmarks/clip_sweep.py --clip 0.2 0.15 0.25 --seeds 40 --no-baselines
    python benchmarks/clip_sweep.py --set inner.lr=0.0025   # at another PPO learning rate

Beyond the width, three hand-made shapes a learned rule could take (each `POS,NEG` or
`START,END` pair one variant, compared with the first `--clip`):

    python benchmarks/clip_sweep.py --clip 0.2 --seeds 40 --no-baselines --final-fraction 0.5 \
        --asym 0.3,0.1 0.1,0.3 --anneal 0.3,0.1 0.1,0.3 --adv-weight 1.5,1 1,1.5

`--asym` clips at POS where A > 0 and at NEG where A < 0; `--anneal` moves the clip range
linearly from START to END over training (both signs); `--adv-weight` multiplies positive and
negative advantages inside PPO-clip (an asymmetric step, which no LPO drift can express: the
drift's gradient vanishes at r = 1).
"""

from __future__ import annotations

import argparse
import time
from collections.abc import Callable

import jax
import jax.numpy as jnp
import numpy as np

from metarl.learned import make_objective
from metarl.ppo.objectives import ObjectiveInputs, ppo_clip
from metarl.programs.evaluation import RuleResult, evaluate_rules
from metarl.programs.stats import iqm, ratio_ci
from metarl.programs.task_eval import normalise_return, tail_mean
from metarl.spec import load_spec
from metarl.spec.schema import Task


def policy_clip(eps: float) -> Callable[[ObjectiveInputs, dict], jax.Array]:
    """PPO-clip with its own policy clip range `eps`; the value clip keeps `HParams.clip_eps`."""
    def objective(inputs: ObjectiveInputs, meta_params: dict) -> jax.Array:
        return ppo_clip(inputs._replace(clip_eps=jnp.asarray(eps, inputs.ratio.dtype)))
    return objective


def shaped_clip(pos: tuple[float, float], neg: tuple[float, float],
                weight: tuple[float, float] = (1.0, 1.0)
                ) -> Callable[[ObjectiveInputs, dict], jax.Array]:
    """PPO-clip whose clip range moves linearly from `pos[0]` to `pos[1]` over training where
    A > 0 (`neg` where A < 0), with positive and negative advantages weighted by `weight`."""
    def objective(inputs: ObjectiveInputs, meta_params: dict) -> jax.Array:
        a, n = inputs.advantage, inputs.progress
        positive = a > 0
        eps = jnp.where(positive, pos[0] + (pos[1] - pos[0]) * n, neg[0] + (neg[1] - neg[0]) * n)
        a = a * jnp.where(positive, weight[0], weight[1])
        return ppo_clip(inputs._replace(advantage=a, clip_eps=eps))
    return objective


def _pair(text: str) -> tuple[float, float]:
    try:
        first, second = (float(v) for v in text.split(","))
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected two numbers as A,B, got {text!r}") from None
    return first, second


def window_scores(res: RuleResult, tasks: list[Task], fraction: float) -> np.ndarray:
    """`(seeds, tasks)` normalised mean returns over the last `fraction` of updates."""
    return np.stack([normalise_return(task, tail_mean(res.curves[task.label], fraction))
                     for task in tasks], 1)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--spec", default="search/lpo_classic.toml")
    ap.add_argument("--seeds", type=int, default=10)
    ap.add_argument("--clip", type=float, nargs="+", default=[0.2, 0.3, 0.5])
    ap.add_argument("--final-fraction", type=float, nargs="+", default=[0.1],
                    help="score windows: mean return over this last fraction of updates")
    ap.add_argument("--no-baselines", action="store_true",
                    help="only the clip ranges: skip the unclipped surrogate and DPO")
    ap.add_argument("--asym", type=_pair, nargs="+", default=[], metavar="POS,NEG",
                    help="clip ranges for positive and negative advantages")
    ap.add_argument("--anneal", type=_pair, nargs="+", default=[], metavar="START,END",
                    help="clip range moving linearly over training")
    ap.add_argument("--adv-weight", type=_pair, nargs="+", default=[], metavar="POS,NEG",
                    help="weights of positive and negative advantages (clip 0.2)")
    ap.add_argument("--set", dest="overrides", action="append", default=[],
                    help="spec override, e.g. inner.lr=0.001")
    args = ap.parse_args()
    spec = load_spec(args.spec, args.overrides)
    suites = {"training": (list(spec.tasks.train), spec.seed + 2),
              "held-out": (list(spec.tasks.held_out), spec.seed + 1)}
    inner = spec.inner.model_copy(update={"seeds": args.seeds})
    hp = spec.inner.hparams()
    variants = [(f"ppo_clip {c}", policy_clip(c), {}) for c in args.clip]
    variants += [(f"asym {p:g}/{n:g}", shaped_clip((p, p), (n, n)), {}) for p, n in args.asym]
    variants += [(f"anneal {a:g}>{b:g}", shaped_clip((a, b), (a, b)), {})
                 for a, b in args.anneal]
    variants += [(f"adv-wt {p:g}/{n:g}", shaped_clip((0.2, 0.2), (0.2, 0.2), (p, n)), {})
                 for p, n in args.adv_weight]
    if not args.no_baselines:
        dpo, lpo = make_objective("dpo"), make_objective("lpo")
        no_drift = jax.tree.map(lambda x: 0 * x, lpo.init(jax.random.PRNGKey(0)))
        variants += [("unclipped", lpo, no_drift), ("dpo", dpo, dpo.init(None))]
    print(f"{args.seeds} seeds per rule and task; normalised mean per task, IQM, and IQM / "
          f"{variants[0][0]} with a paired 95% CI")
    first: dict[tuple[str, float], np.ndarray] = {}
    for name, objective, params in variants:
        t0 = time.perf_counter()
        for suite, (tasks, seed) in suites.items():
            if not tasks:
                continue
            res = evaluate_rules({name: (objective, params, hp)}, tasks, inner, 1.0,
                                 seed=seed)[name]
            for frac in args.final_fraction:
                s = window_scores(res, tasks, frac)
                m, lo, hi = ratio_ci(s, first.setdefault((suite, frac), s))
                cells = " ".join(f"{t.label} {v:.3f}" for t, v in zip(tasks, s.mean(0),
                                                                     strict=True))
                print(f"{name:14s} {suite:8s} last {frac:<4g} {cells}  IQM {iqm(s):.3f}  "
                      f"ratio {m:.3f} [{lo:.3f}, {hi:.3f}]", flush=True)
        print(f"{name:14s} {time.perf_counter() - t0:.0f} s", flush=True)


if __name__ == "__main__":
    main()
