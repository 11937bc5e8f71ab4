"""Does the discovered rule beat PPO-clip on tasks it never saw?

Meta-trains an update rule with `search/lpo_classic.toml` (or --spec), then trains fresh
agents on the spec's held-out tasks with the learned rule (search mean), PPO-clip and DPO,
same budget and seeds, and prints per-task means, IQM of normalised returns with bootstrap
95% CIs, and the ratio learned / PPO-clip. Target: ratio >= 1.05.

    python benchmarks/update_rule_quality.py                      # the full CPU search
    python benchmarks/update_rule_quality.py --generations 3 --seeds 3   # smoke run
    python benchmarks/update_rule_quality.py --export rule.py         # keep the learned rule
    python benchmarks/update_rule_quality.py --rule rule.py           # re-evaluate it only
    python benchmarks/update_rule_quality.py --rule rule.py --train     # ... on training tasks too
"""

from __future__ import annotations

import argparse
import os
import tempfile
import time

from metarl.export import load_rule, write_module
from metarl.learned import make_objective
from metarl.programs.evaluation import evaluate_rules
from metarl.programs.runner import Search, run_search
from metarl.programs.stats import ratio_ci
from metarl.spec import SearchSpec, load_spec


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--spec", default="search/lpo_classic.toml")
    ap.add_argument("--generations", type=int, default=None)
    # at 10 seeds the IQM ratio of two equally good rules swings by +-5%, the size of the target
    ap.add_argument("--seeds", type=int, default=40, help="evaluation seeds per rule and task")
    ap.add_argument("--final-fraction", type=float, default=0.1,
                    help="held-out score: mean return over this last fraction of updates "
                         "(independent of the search's own fitness window)")
    ap.add_argument("--set", dest="overrides", action="append", default=[])
    ap.add_argument("--export", metavar="FILE", help="write the learned rule (search mean) "
                    "to FILE as a metarl export, before the evaluation starts")
    ap.add_argument("--train", action="store_true", help="also score the rules on the "
                    "training tasks with the search's fitness window (fresh seeds)")
    ap.add_argument("--rule", metavar="FILE", help="skip meta-training: evaluate this "
                    "exported rule against the baselines on the spec's held-out tasks")
    args = ap.parse_args()
    overrides = list(args.overrides)
    if args.generations:
        overrides.append(f"outer.generations={args.generations}")
    spec = load_spec(args.spec, overrides)
    if args.rule:
        learned = load_rule(args.rule)
        print(f"rule: {args.rule} (no meta-training)")
    else:
        learned = meta_train(spec, args.export)
    hp = spec.inner.hparams()
    rules = {"learned": (*learned, hp)}
    for name in ("ppo_clip", "dpo"):
        obj = make_objective(name)
        rules[name] = (obj, obj.init(None), hp)
    inner = spec.inner.model_copy(update={"seeds": args.seeds})
    if args.train:
        # the search's own objective, on fresh seeds: did the search improve what it optimised?
        report(evaluate_rules(rules, list(spec.tasks.train), inner, spec.outer.final_fraction,
                              seed=spec.seed + 2),
               f"training tasks (the search's objective, last {spec.outer.final_fraction:.0%})",
               args.seeds)
    tasks = list(spec.tasks.held_out or spec.tasks.train)
    results = evaluate_rules(rules, tasks, inner, args.final_fraction, seed=spec.seed + 1)
    ratio, lo, hi = report(results, f"held-out tasks (last {args.final_fraction:.0%})",
                           args.seeds)
    print(f"learned / ppo_clip normalised IQM: {ratio:.3f} [{lo:.3f}, {hi:.3f}]   "
          "(target >= 1.05)")


def report(results: dict, title: str, seeds: int) -> tuple[float, float, float]:
    """Print per-task means, IQMs with CIs and each rule's IQM ratio to PPO-clip with a
    paired-bootstrap CI; return the learned rule's `(ratio, low, high)`."""
    print(f"{title}: {seeds} seeds per rule and task")
    print(f"{'task':24s}" + "".join(f"{n:>26s}" for n in results))
    for task in results["learned"].final:
        cells = "".join(f"{res.final[task].mean():>26.2f}" for res in results.values())
        print(f"{task:24s}{cells}")
    iqms = {n: res.iqm() for n, res in results.items()}
    print(f"{'IQM normalised [95% CI]':24s}" + "".join(
        f"{m:>10.3f} [{lo:.3f}, {hi:.3f}]" for m, lo, hi in iqms.values()))
    base = results["ppo_clip"].scores()
    ratios = {n: ratio_ci(res.scores(), base) for n, res in results.items()}
    print(f"{'/ ppo_clip [paired CI]':24s}" + "".join(
        f"{m:>10.3f} [{lo:.3f}, {hi:.3f}]" for m, lo, hi in ratios.values()))
    return ratios["learned"]


def meta_train(spec: SearchSpec, export: str | None) -> tuple:
    """Run the search in a throw-away MLflow store; the learned rule is its final mean."""
    search = Search(spec)
    t0 = time.perf_counter()
    with tempfile.TemporaryDirectory() as tmp:
        cwd = os.getcwd()
        os.chdir(tmp)
        try:
            result = run_search(spec, f"sqlite:///{tmp}/mlflow.db", "# benchmark\n",
                                search=search)
        finally:
            os.chdir(cwd)
    print(f"meta-training: {result.generations} generations in "
          f"{time.perf_counter() - t0:.0f} s, best train fitness {result.best_fitness:.3f}")
    learned = (search.program.objective, result.mean_params)
    if export:
        write_module(*learned, export, {"search": spec.name, "seed": spec.seed,
                                        "generations": result.generations})
        print(f"learned rule written to {export}")
    return learned


if __name__ == "__main__":
    main()
