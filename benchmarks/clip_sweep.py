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
from metarl.spec import load_spec
from metarl.spec.schema import Task


def policy_clip(eps: float) -> Callable[[ObjectiveInputs, dict], jax.Array]:
    """PPO-clip with its own policy clip range `eps`; the value clip keeps `HParams.clip_eps`."""
    def objective(inputs: ObjectiveInputs, meta_params: dict) -> jax.Array:
        return ppo_clip(inputs._replace(clip_eps=jnp.asarray(eps, inputs.ratio.dtype)))
    return objective


def window_scores(res: RuleResult, tasks: list[Task], fraction: float) -> np.ndarray:
    """`(seeds, tasks)` normalised mean returns over the last `fraction` of updates."""
    cols = []
    for task in tasks:
        curves = res.curves[task.label]
        mean = curves[:, -max(1, round(curves.shape[1] * fraction)):].mean(1)
        lo, hi = task.return_range or (0.0, 1.0)
        cols.append((mean - lo) / (hi - lo))
    return np.stack(cols, 1)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--spec", default="search/lpo_classic.toml")
    ap.add_argument("--seeds", type=int, default=10)
    ap.add_argument("--clip", type=float, nargs="+", default=[0.2, 0.3, 0.5])
    ap.add_argument("--final-fraction", type=float, nargs="+", default=[0.1],
                    help="score windows: mean return over this last fraction of updates")
    ap.add_argument("--no-baselines", action="store_true",
                    help="only the clip ranges: skip the unclipped surrogate and DPO")
    ap.add_argument("--set", dest="overrides", action="append", default=[],
                    help="spec override, e.g. inner.lr=0.001")
    args = ap.parse_args()
    spec = load_spec(args.spec, args.overrides)
    suites = {"training": (list(spec.tasks.train), spec.seed + 2),
              "held-out": (list(spec.tasks.held_out), spec.seed + 1)}
    inner = spec.inner.model_copy(update={"seeds": args.seeds})
    hp = spec.inner.hparams()
    variants = [(f"ppo_clip {c}", policy_clip(c), {}) for c in args.clip]
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
            res = evaluate_rules({name: (objective, params)}, tasks, inner, hp, 1.0,
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
