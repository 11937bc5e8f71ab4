"""How much room is there for a better update rule? PPO-clip at several clip ranges, the
unclipped surrogate (an LPO drift of zero) and DPO, trained with the same seeds on every task
of a spec's suite, training and held-out.

A learned drift can only beat PPO-clip on held-out tasks if some rule does; this sweep shows
whether a simple change of trust region already does at the spec's budgets.

    python benchmarks/clip_sweep.py                       # search/lpo_classic.toml, 10 seeds
    python benchmarks/clip_sweep.py --clip 0.1 0.2 0.3 --seeds 5
"""

from __future__ import annotations

import argparse
import time

import jax
import numpy as np

from metarl.learned import make_objective
from metarl.programs.evaluation import evaluate_rules
from metarl.programs.stats import iqm
from metarl.spec import load_spec


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--spec", default="search/lpo_classic.toml")
    ap.add_argument("--seeds", type=int, default=10)
    ap.add_argument("--clip", type=float, nargs="+", default=[0.2, 0.3, 0.5])
    ap.add_argument("--final-fraction", type=float, default=0.1)
    args = ap.parse_args()
    spec = load_spec(args.spec)
    train, held_out = list(spec.tasks.train), list(spec.tasks.held_out)
    inner = spec.inner.model_copy(update={"seeds": args.seeds})
    hp = spec.inner.hparams()
    ppo, dpo, lpo = (make_objective(n) for n in ("ppo_clip", "dpo", "lpo"))
    no_drift = jax.tree.map(lambda x: 0 * x, lpo.init(jax.random.PRNGKey(0)))
    variants = [(f"ppo_clip {c}", hp._replace(clip_eps=c), ppo, ppo.init(None))
                for c in args.clip]
    variants += [("unclipped", hp, lpo, no_drift), ("dpo", hp, dpo, dpo.init(None))]
    print(f"{'rule':16s}" + "".join(f"{t.label:>22s}" for t in train + held_out)
          + f"{'held-out IQM':>14s}{'seconds':>9s}")
    for name, h, objective, params in variants:
        t0 = time.perf_counter()
        res = evaluate_rules({name: (objective, params)}, train + held_out, inner, h,
                             args.final_fraction, seed=spec.seed + 1)[name]
        held = np.stack([res.normalised[t.label] for t in held_out], 1)
        cells = "".join(f"{res.normalised[t.label].mean():>22.3f}" for t in train + held_out)
        print(f"{name:16s}{cells}{iqm(held):>14.3f}{time.perf_counter() - t0:>9.0f}",
              flush=True)


if __name__ == "__main__":
    main()
