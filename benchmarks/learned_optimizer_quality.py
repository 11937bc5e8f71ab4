"""Does the discovered optimizer beat tuned Adam on tasks it never saw?

Meta-trains a learned optimizer with a spec (on the CPU), then trains fresh models on held-out
tasks with it (the search mean) and with Adam, AdamW and SGD with momentum, each with its
learning rate tuned per task on a grid (`metarl.programs.optimizer_baselines`), same budget
and seeds. Prints per-task means, the IQM of the final scores with bootstrap 95% CIs, the
paired ratio learned / tuned Adam and, for supervised tasks, the updates the learned optimizer
needs to reach tuned Adam's final loss over Adam's own.

Targets (issue #19): supervised held-out tasks of the training families: steps ratio <= 0.5
(CI upper bound included); RL held-out tasks: normalised return ratio >= 1.0.

    python benchmarks/learned_optimizer_quality.py supervised          # search/lopt_supervised.toml
    python benchmarks/learned_optimizer_quality.py rl                  # search/lopt_rl.toml
    python benchmarks/learned_optimizer_quality.py supervised --generations 3 --seeds 2  # smoke
"""

from __future__ import annotations

import argparse
import os
import tempfile
import time
from pathlib import Path

from metarl.programs.optimizer_baselines import steps_to_reach
from metarl.programs.runner import Search, run_search
from metarl.programs.stats import ratio_ci
from metarl.spec import load_spec, load_task_suite

SETUPS = {
    # spec, held-out tasks (None: the spec's own), the target and what it is measured on
    "supervised": ("search/lopt_supervised.toml", "tasks/lopt_held_out.toml",
                   "steps ratio to tuned Adam <= 0.5 (upper CI bound included)"),
    "rl": ("search/lopt_rl.toml", None, "normalised return / tuned Adam >= 1.0"),
}
# `symbolic`: the discovered optimizer's distilled closed form, at the inner learning rate
BASELINES = ["adam", "adamw", "sgd_momentum", "symbolic"]


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("setup", choices=sorted(SETUPS))
    ap.add_argument("--spec", default=None, help="another spec than the setup's")
    ap.add_argument("--generations", type=int, default=None)
    ap.add_argument("--seeds", type=int, default=10, help="evaluation seeds per task")
    ap.add_argument("--final-fraction", type=float, default=None,
                    help="held-out score window (default: the spec's outer.final_fraction)")
    ap.add_argument("--set", dest="overrides", action="append", default=[])
    ap.add_argument("--export", metavar="FILE", help="also write the discovered optimizer "
                    "(search mean) to FILE as a metarl export")
    args = ap.parse_args()
    spec_path, held_out, target = SETUPS[args.setup]
    overrides = list(args.overrides)
    if args.generations:
        overrides.append(f"outer.generations={args.generations}")
    spec = load_spec(args.spec or spec_path, overrides)
    search, result, seconds = meta_train(spec)
    kind = search.program
    if args.export:
        kind.export_module(result.mean_params, Path(args.export), {"search": spec.name,
                           "generations": result.generations}, symbolic=False)
    tasks = (load_task_suite(held_out).held_out if held_out else list(spec.tasks.held_out))
    fraction = args.final_fraction or spec.outer.final_fraction
    t0 = time.perf_counter()
    # the start (Adam at the inner learning rate) beside the discovered optimizer
    start = kind.compare(kind.initial_mean(), tasks, args.seeds, [], fraction, spec.seed + 1)
    results = kind.compare(result.mean_params, tasks, args.seeds, BASELINES, fraction,
                           spec.seed + 1)
    results = {"learned": results.pop("learned"), "start": start["learned"], **results}
    print(f"meta-training: {result.generations} generations in {seconds:.0f} s; mean fitness "
          f"{result.history['mean_fitness'][0]:.3f} -> {result.history['mean_fitness'][-1]:.3f}")
    print(f"evaluation: {len(tasks)} held-out tasks x {args.seeds} seeds in "
          f"{time.perf_counter() - t0:.0f} s (window: last {fraction:.0%} of updates)")
    report(results)
    print(f"target: {target}")


def report(results: dict) -> None:
    names = list(results)
    print(f"{'task':18s}" + "".join(f"{n:>14s}" for n in names) + "   tuned lr (adam)")
    for task in results["learned"].final:
        cells = "".join(f"{results[n].final[task].mean():>14.3f}" for n in names)
        print(f"{task:18s}{cells}   {results['adam'].settings[task]:.3g}")
    base = results["adam"].scores()
    print(f"{'IQM [95% CI]':18s}" + "".join(
        f"{m:>8.3f} [{lo:.2f},{hi:.2f}]" for m, lo, hi in (r.iqm() for r in results.values())))
    print(f"{'/ tuned adam':18s}" + "".join(
        f"{m:>8.3f} [{lo:.2f},{hi:.2f}]" for m, lo, hi in
        (ratio_ci(r.scores(), base) for r in results.values())))
    steps = steps_to_reach(results)
    for key, value in steps.items():
        print(f"{key}: {value:.3f}")


def meta_train(spec) -> tuple:  # noqa: ANN001
    """Run the search in a throw-away MLflow store."""
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
    return search, result, time.perf_counter() - t0


if __name__ == "__main__":
    main()
