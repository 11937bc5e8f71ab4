"""Outer loops on the same problem at equal inner env steps: OpenES, PES and meta-gradients.

For each problem and loop, a search runs (without tracking) and its mean is recorded every
few steps together with the env steps spent so far (the meta-objective's extra rollouts of
meta-gradients included). Every recorded mean is then scored the same way, whatever loop made
it: whole PPO runs on the problem's tasks (`outer.truncations = 1`), the problem's
`final_fraction` window, `--eval-seeds` fresh seeds. Prints fitness against env steps per
loop, and for each online loop the env steps it needed to reach OpenES's final fitness, as a
ratio (target: <= 0.5 on at least one problem). Writes a figure with `--figure PATH`.

    python benchmarks/outer_loops.py                       # both problems (~30 min on 2 cores)
    python benchmarks/outer_loops.py --problems hparams --figure docs/img/outer_loops.png
"""

from __future__ import annotations

import argparse
import time
from typing import Any

import jax
import numpy as np

from metarl.outer import full_fitness
from metarl.outer.settings import members_per_step, needs_gradients
from metarl.programs.runner import Search
from metarl.spec import load_spec

# problem -> (spec, {loop: overrides}); each loop's settings are the ones its spec ships
PROBLEMS: dict[str, tuple[str, dict[str, list[str]]]] = {
    "hparams": ("search/quickstart.toml", {
        "open_es": ["outer.generations=8"],
        "pes": ["outer.algorithm='pes'", "outer.truncations=8", "outer.population_size=8",
                "outer.learning_rate=0.1", "outer.sigma_init=0.5", "outer.generations=64",
                "outer.final_fraction=1.0"],
        "meta_gradient": ["outer.algorithm='meta_gradient'", "outer.truncations=8",
                          "outer.learning_rate=0.05", "outer.batch=2", "outer.generations=128",
                          "outer.final_fraction=1.0", "outer.max_grad_norm=1.0"],
    }),
    "lpo": ("search/lpo_pes.toml", {
        "open_es": ["outer.algorithm='open_es'", "outer.truncations=1",
                    "outer.population_size=16", "outer.generations=6"],
        "pes": ["outer.generations=48"],
    }),
}


def outer_overrides(loop_overrides: list[str]) -> list[str]:
    """Overrides that reset `[outer]` fields a loop does not take (the base spec's may not
    fit it) before applying the loop's own."""
    defaults = ["outer.population_size=16", "outer.sigma_init=0.5", "outer.learning_rate=0.1"]
    if any("meta_gradient" in o for o in loop_overrides):
        return [*defaults, *loop_overrides]
    return loop_overrides


def run_loop(spec_path: str, overrides: list[str], records: int) -> list[tuple[int, Any]]:
    """(env steps so far, mean) after every few steps of one search, untracked."""
    spec = load_spec(spec_path, outer_overrides(overrides))
    search = Search(spec)
    state = search.initial_state()
    outer = spec.outer
    members = members_per_step(outer.algorithm, outer.model_dump())
    per_step = search.env_steps(members)
    if needs_gradients(outer.algorithm):  # one validation rollout per run per stretch
        per_step += members * sum(t.config.batch_size * t.seeds
                                  for t in search.program.suite.tasks)
    every = max(1, outer.generations // records)
    out = [(0, jax.device_get(search.mean(state)))]
    t0 = time.perf_counter()
    for g in range(1, outer.generations + 1):
        state, _ = search.step(state)
        if g % every == 0 or g == outer.generations:
            out.append((g * per_step, jax.device_get(search.mean(state))))
    print(f"    {outer.algorithm}: {outer.generations} steps, {per_step:,} env steps each, "
          f"{time.perf_counter() - t0:.0f} s")
    return out


def evaluator(spec_path: str, seeds: int):  # noqa: ANN201
    """Whole-run fitness of a mean, averaged over `seeds` fresh inner seeds."""
    spec = load_spec(spec_path, ["outer.algorithm='open_es'", "outer.truncations=1",
                                 "outer.population_size=16"])
    problem = Search(spec).program.problem(1)
    keys = jax.random.split(jax.random.PRNGKey(12345), seeds)
    score = jax.jit(jax.vmap(lambda m, k: full_fitness(problem, m, k).fitness,
                             in_axes=(None, 0)))
    return lambda mean: float(np.mean(score(mean, keys)))


def steps_to_reach(curve: list[tuple[int, float]], target: float) -> float:
    for steps, fitness in curve:
        if fitness >= target:
            return steps
    return float("inf")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--problems", nargs="+", default=list(PROBLEMS), choices=list(PROBLEMS))
    ap.add_argument("--records", type=int, default=8, help="means recorded per search")
    ap.add_argument("--eval-seeds", type=int, default=16)
    ap.add_argument("--figure", default=None)
    args = ap.parse_args()
    curves: dict[str, dict[str, list[tuple[int, float]]]] = {}
    for problem in args.problems:
        spec_path, loops = PROBLEMS[problem]
        print(f"{problem} ({spec_path}):")
        score = evaluator(spec_path, args.eval_seeds)
        curves[problem] = {}
        for loop, overrides in loops.items():
            recorded = run_loop(spec_path, overrides, args.records)
            curves[problem][loop] = [(s, score(m)) for s, m in recorded]
            print("      " + ", ".join(f"{s / 1e6:.2f}M: {f:.3f}"
                                       for s, f in curves[problem][loop]))
        report(problem, curves[problem])
    if args.figure:
        figure(curves, args.figure)


def report(problem: str, curves: dict[str, list[tuple[int, float]]]) -> None:
    es_steps, es_final = curves["open_es"][-1]
    print(f"  {problem}: OpenES final fitness {es_final:.3f} after {es_steps / 1e6:.2f}M "
          "env steps")
    for loop, curve in curves.items():
        if loop == "open_es":
            continue
        reached = steps_to_reach(curve, es_final)
        ratio = reached / es_steps
        shown = "never reached" if ratio == float("inf") else f"{ratio:.2f}x OpenES's steps"
        print(f"  {problem}: {loop} final {curve[-1][1]:.3f} after "
              f"{curve[-1][0] / 1e6:.2f}M steps; reached OpenES's final fitness: {shown} "
              "(target <= 0.5)")


def figure(curves: dict[str, dict[str, list[tuple[int, float]]]], path: str) -> None:
    from matplotlib.figure import Figure

    fig = Figure(figsize=(5 * len(curves), 3.6), dpi=110)
    axes = fig.subplots(1, len(curves), squeeze=False)[0]
    for ax, (problem, loops) in zip(axes, curves.items(), strict=True):
        for loop, curve in loops.items():
            steps, fitness = zip(*curve, strict=True)
            ax.plot(np.asarray(steps) / 1e6, fitness, marker="o", label=loop)
        ax.set_title(problem)
        ax.set_xlabel("inner env steps (millions)")
        ax.set_ylabel("fitness of the mean (whole runs)")
        ax.grid(alpha=0.3)
        ax.legend()
    fig.tight_layout()
    fig.savefig(path)
    print(f"figure: {path}")


if __name__ == "__main__":
    main()
