"""How much room is there for a better update rule? PPO-clip at several clip ranges, the
unclipped surrogate (an LPO drift of zero) and DPO, trained with the same seeds on every task
of a spec's suite, training and held-out.

A learned drift can only beat PPO-clip on held-out tasks if some rule does; this sweep shows
whether a simple change of trust region already does at the spec's budgets. Only the policy's
clip range varies: PPO also clips the value update with `clip_eps`, and that stays at the
spec's value, because a learned policy objective cannot change it.

    python benchmarks/clip_sweep.py                       # search/lpo_classic.toml, 10 seeds
    python benchmarks/clip_sweep.py --clip 0.1 0.2 0.3 --seeds 5
    python benchmarks/clip_sweep.py --set inner.lr=0.001   # at another PPO learning rate
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
from metarl.programs.evaluation import evaluate_rules
from metarl.programs.stats import iqm, ratio_ci
from metarl.spec import load_spec


def policy_clip(eps: float) -> Callable[[ObjectiveInputs, dict], jax.Array]:
    """PPO-clip with its own policy clip range `eps`; the value clip keeps `HParams.clip_eps`."""
    def objective(inputs: ObjectiveInputs, meta_params: dict) -> jax.Array:
        return ppo_clip(inputs._replace(clip_eps=jnp.asarray(eps, inputs.ratio.dtype)))
    return objective


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--spec", default="search/lpo_classic.toml")
    ap.add_argument("--seeds", type=int, default=10)
    ap.add_argument("--clip", type=float, nargs="+", default=[0.2, 0.3, 0.5])
    ap.add_argument("--final-fraction", type=float, default=0.1)
    ap.add_argument("--set", dest="overrides", action="append", default=[],
                    help="spec override, e.g. inner.lr=0.001")
    args = ap.parse_args()
    spec = load_spec(args.spec, args.overrides)
    train, held_out = list(spec.tasks.train), list(spec.tasks.held_out)
    inner = spec.inner.model_copy(update={"seeds": args.seeds})
    hp = spec.inner.hparams()
    dpo, lpo = make_objective("dpo"), make_objective("lpo")
    no_drift = jax.tree.map(lambda x: 0 * x, lpo.init(jax.random.PRNGKey(0)))
    variants = [(f"ppo_clip {c}", policy_clip(c), {}) for c in args.clip]
    variants += [("unclipped", lpo, no_drift), ("dpo", dpo, dpo.init(None))]
    print(f"{'rule':16s}" + "".join(f"{t.label:>22s}" for t in train + held_out)
          + f"{'held-out IQM':>14s}{'/ first [paired 95% CI]':>26s}{'seconds':>9s}")
    first = None
    for name, objective, params in variants:
        t0 = time.perf_counter()
        res = evaluate_rules({name: (objective, params)}, train + held_out, inner, hp,
                             args.final_fraction, seed=spec.seed + 1)[name]
        held = np.stack([res.normalised[t.label] for t in held_out], 1)
        first = held if first is None else first
        m, lo, hi = ratio_ci(held, first)
        cells = "".join(f"{res.normalised[t.label].mean():>22.3f}" for t in train + held_out)
        print(f"{name:16s}{cells}{iqm(held):>14.3f}{f'{m:.3f} [{lo:.3f}, {hi:.3f}]':>26s}"
              f"{time.perf_counter() - t0:>9.0f}", flush=True)


if __name__ == "__main__":
    main()
