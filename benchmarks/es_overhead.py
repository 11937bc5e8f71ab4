"""Outer-loop overhead: a full search step (tracking, checkpoints, trials included) against
the bare compiled outer step (the loop's own step: ask, the members' inner runs, tell),
measured in one run, for any outer loop (`--set outer.algorithm=...`).

A search's generation time is the interval between consecutive finished generations, as the
search itself logs it (`generation_seconds`); the one-off costs of starting and finishing a
tracked run (creating the MLflow run, final artifacts) are printed separately, amortised over
the generations.

    python benchmarks/es_overhead.py                 # quickstart-sized, 6 generations
    python benchmarks/es_overhead.py --trials best   # one child run per generation
    python benchmarks/es_overhead.py --spec search/hparams_metagrad.toml   # meta-gradients
    python benchmarks/es_overhead.py --spec search/lpo_pes.toml            # PES

Target: ratio <= 1.05.
"""

from __future__ import annotations

import argparse
import os
import statistics
import tempfile
import time

import jax

from metarl.outer.settings import members_per_step
from metarl.programs.runner import Search, run_search
from metarl.spec import load_spec


def bare_seconds(search: Search, generations: int) -> list[float]:
    """Per-step time of the compiled outer step alone, from the search's initial state."""
    state = search.initial_state()
    state = jax.block_until_ready(search.step(state)[0])  # compiles once, then warm
    times = []
    for _ in range(generations):
        t0 = time.perf_counter()
        state = jax.block_until_ready(search.step(state)[0])
        times.append(time.perf_counter() - t0)
    return times


def full_seconds(search: Search, generations: int) -> tuple[float, float, float]:
    """A whole tracked search, compile excluded: (mean seconds between consecutive finished
    generations as the search logged them, total wall seconds / generations including setup
    and finish, compile seconds)."""
    from mlflow.tracking import MlflowClient

    with tempfile.TemporaryDirectory() as tmp:
        cwd = os.getcwd()
        os.chdir(tmp)
        try:
            uri = f"sqlite:///{tmp}/mlflow.db"
            # a store is created once and reused by every later search: not a per-search cost
            MlflowClient(uri).search_experiments()
            t0 = time.perf_counter()
            result = run_search(search.spec, uri, "# benchmark\n", search=search)
            total = time.perf_counter() - t0
            history = MlflowClient(uri).get_metric_history(result.run_id, "generation_seconds")
        finally:
            os.chdir(cwd)
    assert result.generations == generations
    per_generation = statistics.mean(m.value for m in history)
    return per_generation, total / generations, search.compile_seconds


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--spec", default="search/quickstart.toml")
    ap.add_argument("--generations", type=int, default=6)
    ap.add_argument("--trials", choices=["all", "best"], default="all")
    ap.add_argument("--set", dest="overrides", action="append", default=[])
    args = ap.parse_args()
    overrides = [f"outer.generations={args.generations}", f"tracking.trials={args.trials}",
                 *args.overrides]
    spec = load_spec(args.spec, overrides)
    search = Search(spec)
    # warm up the tracking store and the machine once so neither side pays first-use costs
    bare = bare_seconds(search, args.generations)
    full, full_total, compile_s = full_seconds(search, args.generations)
    bare2 = bare_seconds(search, args.generations)  # bracket the full run: machines drift
    bare_med = statistics.median(bare + bare2)
    steps = search.env_steps(members_per_step(spec.outer.algorithm, spec.outer.model_dump()))
    print(f"spec {args.spec}: {spec.outer.algorithm}, "
          f"{steps:,} env steps per step, trials={args.trials}, "
          f"checkpoint every {spec.tracking.checkpoint_every}, devices {len(jax.devices())}")
    print(f"compile (outer step)               : {compile_s:8.2f} s")
    print(f"bare outer step                    : {bare_med:8.3f} s  "
          f"({steps / bare_med:,.0f} env steps/s)")
    print(f"full search per step               : {full:8.3f} s  "
          f"({steps / full:,.0f} env steps/s)")
    print(f"  with setup and finish amortised  : {full_total:8.3f} s")
    print(f"overhead ratio full / bare         : {full / bare_med:8.3f}   (target <= 1.05)")
    print(f"  with setup and finish amortised  : {full_total / bare_med:8.3f}")


if __name__ == "__main__":
    main()
