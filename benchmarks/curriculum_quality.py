"""Do PLR-style curricula beat domain randomisation on held-out mazes, on a CPU budget?

`quality`: trains recurrent PPO agents on generated `metarl/Maze` levels with domain
randomisation (DR), robust PLR and ACCEL at equal env steps (every step counts, the ones
robust PLR and ACCEL only score too), `--seeds` seeds each (vmapped), then plays each agent on
the held-out named mazes (one episode per env, sampled actions) and prints the solve rate per
maze and overall, each with a bootstrap 95% CI over seeds, and the paired difference to DR.

`search`: a `curriculum` search (OpenES over the replay settings of robust PLR, fitness the
solve rate on TwoRooms9 after `--search-steps`), writing the found settings to `--found`;
`quality --methods found` then tests them on the held-out mazes with the seeds the hand-set
curricula used (the same keys: comparable with an earlier `quality` run).

`throughput`: env steps per second of the same loop with PLR on against DR, alternating,
best of `--repeats`: the sampler's overhead (target <= 5%).

Targets (issue 21): robust PLR or ACCEL >= DR + 10 points of mean held-out solve rate; the
searched curriculum >= the best hand-set one.

    python benchmarks/curriculum_quality.py quality --steps 3000000 --seeds 4
    python benchmarks/curriculum_quality.py throughput
    python benchmarks/curriculum_quality.py search --generations 4
    python benchmarks/curriculum_quality.py quality --methods found --seeds 4
"""

from __future__ import annotations

import argparse
import tempfile
import time
from pathlib import Path

import jax
import numpy as np

from metarl.envs.maze_levels import NAMED_MAZES
from metarl.spec import load_spec_data

HELD_OUT = [n for n in NAMED_MAZES if n.endswith("9")]
TRAIN_EVAL = HELD_OUT[:1]  # the search's fitness maze; the others stay unseen


def inner(method: str, **overrides: object) -> dict:
    """The `[inner]` section: recurrent PPO as in jaxued's maze runs, scaled to the CPU."""
    return {"algorithm": "plr", "method": method, "num_envs": 32, "num_steps": 64,
            "num_minibatches": 4, "update_epochs": 4, "hidden_size": 64, "embed_sizes": [64],
            "head_sizes": [64], "lr": 3e-4, "gamma": 0.99, "gae_lambda": 0.95,
            "ent_coef": 0.01, "anneal_lr": False, "capacity": 512, "replay_prob": 0.8,
            "staleness_coef": 0.3, "temperature": 0.3, "score_function": "maxmc",
            "num_edits": 5, "min_fill": 0.1, **overrides}


def maze_task(steps: int, levels: list[str], args: argparse.Namespace) -> dict:
    return {"env": "metarl/Maze", "timesteps": steps, "eval_levels": levels,
            "env_kwargs": {"size": args.size, "n_walls": args.walls,
                           "max_steps": args.max_steps}}


def spec(method: str, steps: int, levels: list[str], args: argparse.Namespace,
         kind: str = "curriculum", **overrides: object) -> object:
    data = {"name": "curriculum_quality", "kind": kind, "seed": args.seed,
            "tasks": {"train": [maze_task(steps, levels, args)]},
            "inner": inner(method, **overrides)}
    if method == "dr":  # a curriculum search refuses dr: the spec only carries [inner]
        data.update(kind="hparams", search_space={"lr": {"low": 1e-4, "high": 1e-3}})
    return load_spec_data(data, "curriculum_quality")


def train_and_test(s: object, seeds: int, seed: int, meta: object = None
                   ) -> tuple[np.ndarray, float]:
    """`(seeds, mazes)` held-out solve rates of agents trained with spec `s`, and the wall
    time of training and testing."""
    loop = s.inner.build_task(s.tasks.train[0])
    hp = s.inner.hparams().as_arrays()
    keys = jax.random.split(jax.random.PRNGKey(seed), seeds)
    t0 = time.perf_counter()
    _, metrics = jax.jit(jax.vmap(lambda k: loop.train(k, meta, hp)))(keys)
    per_level = np.asarray(metrics["eval_per_level"])[:, -1]
    return per_level, time.perf_counter() - t0


def mean_ci(x: np.ndarray, reps: int = 2000, seed: int = 0) -> tuple[float, float, float]:
    rng = np.random.default_rng(seed)
    boots = rng.choice(x, (reps, len(x))).mean(1)
    return float(x.mean()), float(np.percentile(boots, 2.5)), float(np.percentile(boots, 97.5))


def report(results: dict[str, np.ndarray], mazes: list[str], baseline: str = "dr") -> None:
    unseen = [j for j, m in enumerate(mazes) if m not in TRAIN_EVAL]
    rows = [*mazes, "mean", "mean, search-unseen"]
    width = max(len(m) for m in rows)
    print(f"{'maze':<{width}}  " + "  ".join(f"{n:>22}" for n in results))
    for j, maze in enumerate(rows):
        cells = []
        for rates in results.values():
            x = (rates.mean(1) if maze == "mean" else rates[:, unseen].mean(1)
                 if maze.startswith("mean,") else rates[:, j])
            m, lo, hi = mean_ci(x)
            cells.append(f"{m:6.3f} [{lo:5.3f}, {hi:5.3f}]")
        print(f"{maze:<{width}}  " + "  ".join(f"{c:>22}" for c in cells))
    for cols, what in ((slice(None), "all mazes"), (unseen, "search-unseen mazes")):
        base = results[baseline][:, cols].mean(1)
        for name, rates in results.items():
            if name != baseline:
                m, lo, hi = mean_ci(rates[:, cols].mean(1) - base)
                print(f"{name} - {baseline}, {what}: {100 * m:+.1f} points "
                      f"[{100 * lo:+.1f}, {100 * hi:+.1f}] (paired over seeds)")


def found_meta(path: str) -> object:
    """The curriculum a `search` run found (its JSON), as the plr loop's meta-parameters."""
    import json

    from metarl.curriculum.loop import CurriculumMeta, CurriculumParams
    from metarl.curriculum.sampler import SamplerParams

    v = {k: np.float32(x) for k, x in json.loads(Path(path).read_text()).items()}
    params = CurriculumParams(SamplerParams(v["replay_prob"], v["temperature"],
                                            v["staleness_coef"]), v["score_mix"], v["edit_rate"])
    return CurriculumMeta(params, None, None)


def quality(args: argparse.Namespace) -> dict[str, np.ndarray]:
    results = {}
    for method in args.methods:
        meta = None
        if method == "found":  # robust PLR with the searched settings
            meta = found_meta(args.found)
        s = spec("robust_plr" if method == "found" else method, args.steps, HELD_OUT, args)
        rates, seconds = train_and_test(s, args.seeds, args.seed, meta)
        results[method] = rates
        print(f"{method}: {args.seeds} seeds x {args.steps:,} env steps in {seconds:.0f} s",
              flush=True)
    print(f"\nheld-out solve rate, {args.size}x{args.size} mazes, {args.walls} walls, "
          f"max_steps {args.max_steps}, {args.seeds} seeds, 32 episodes per maze and seed")
    report(results, HELD_OUT, baseline="dr" if "dr" in results else args.methods[0])
    return results


def throughput(args: argparse.Namespace) -> None:
    loops = {}
    for method in ("dr", "plr"):
        s = spec(method, args.throughput_steps, HELD_OUT[:1], args)
        loop = s.inner.build_task(s.tasks.train[0])
        hp = s.inner.hparams().as_arrays()
        state = loop.init(jax.random.PRNGKey(0), None, hp)
        step = jax.jit(lambda st, loop=loop: loop.step(st, None, 10))
        jax.block_until_ready(step(state))
        loops[method] = (step, state, 10 * loop.config.batch_size)
    best = {m: np.inf for m in loops}
    for _ in range(args.repeats):
        for method, (step, state, _) in loops.items():
            t0 = time.perf_counter()
            jax.block_until_ready(step(state))
            best[method] = min(best[method], time.perf_counter() - t0)
    for method, (_, _, steps) in loops.items():
        print(f"{method}: {steps / best[method]:,.0f} env steps/s (10 updates incl. one "
              f"evaluation, best of {args.repeats})")
    print(f"plr / dr time: {best['plr'] / best['dr']:.3f}x")


def search(args: argparse.Namespace) -> None:
    """A curriculum search with the fitness maze TwoRooms9; writes the mean's settings to
    `--found` for `quality --methods found ...` on the held-out mazes."""
    import json

    from metarl.programs.curriculum import CurriculumSearch
    from metarl.programs.runner import run_search

    s = load_spec_data({
        "name": "curriculum_search", "kind": "curriculum", "seed": args.seed,
        "tasks": {"train": [maze_task(args.search_steps, TRAIN_EVAL, args)]},
        "inner": inner("robust_plr"),
        "curriculum": {"search": ["replay_prob", "temperature", "staleness_coef",
                                  "score_mix"]},
        "outer": {"algorithm": "open_es", "population_size": args.population,
                  "generations": args.generations, "sigma_init": 1.0,
                  "learning_rate": 0.5},
        "tracking": {"trials": "best"}}, "curriculum_search")
    t0 = time.perf_counter()
    with tempfile.TemporaryDirectory() as tmp:
        result = run_search(s, f"sqlite:///{Path(tmp) / 'mlflow.db'}", "# search\n")
    found = CurriculumSearch(s).describe(jax.tree.map(np.asarray, result.mean_params))
    print(f"search: {time.perf_counter() - t0:.0f} s; fitness by generation "
          f"{[round(f, 3) for f in result.history['mean_fitness']]}; found {found}")
    Path(args.found).write_text(json.dumps(found, indent=1))


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("mode", choices=("quality", "throughput", "search"))
    p.add_argument("--steps", type=int, default=3_000_000)
    p.add_argument("--seeds", type=int, default=4)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--size", type=int, default=9)
    p.add_argument("--walls", type=int, default=12)
    p.add_argument("--max-steps", type=int, default=128)
    p.add_argument("--methods", nargs="+", default=["dr", "robust_plr", "accel"])
    p.add_argument("--throughput-steps", type=int, default=32 * 64 * 10)
    p.add_argument("--repeats", type=int, default=3)
    p.add_argument("--search-steps", type=int, default=1_000_000)
    p.add_argument("--population", type=int, default=4)
    p.add_argument("--generations", type=int, default=4)
    p.add_argument("--found", default="curriculum_found.json",
                   help="search: where to write the found settings; quality: where to read "
                   "them for the method 'found'")
    args = p.parse_args()
    {"quality": quality, "throughput": throughput, "search": search}[args.mode](args)


if __name__ == "__main__":
    main()
