"""Does PBT beat random search for the same env steps, and what does exploit/explore cost?

For each task, with the same prior over five PPO hyperparameters (lr, ent_coef, clip_eps,
gamma, gae_lambda) and the same population of P members each trained for the task's budget:

* PBT (kind `pbt`, Jaderberg et al. 2017): one run per member cut into 10 intervals, the
  bottom quarter copying the top quarter and perturbing (x0.8 / x1.2, or resampling with
  probability 0.25) after each interval. Score: the best member's mean return over the last
  interval (the last 10% of updates).
* Random search (kind `hparams`, outer `random`): P configurations drawn from the prior, each
  trained for the same budget. Score: the best configuration's mean return over the last 10%
  of updates. Same total env steps, same selection (best of the population on its own runs).

Every figure is measured in this run, over `--seeds` independent repetitions (different
spec seeds): mean, bootstrap 95% CI, and the paired difference PBT - best random with its
CI. With `--replay-seeds R`, each method's winner (PBT: the best member's schedule; random:
the best configuration) is also re-trained on R fresh seeds, which removes the optimism of
picking the best of a population on its own runs. The overhead of the exploit/explore step
is the wall time of a compiled PBT search step (one interval of every member, then
exploit/explore) over that of the same search step with exploit/explore left out, timed
alternately on the same state.

    python benchmarks/pbt_quality.py                    # three tasks, ~10-15 min on 2 cores
    python benchmarks/pbt_quality.py --tasks cartpole --seeds 2 --scale 0.25   # smoke run
    python benchmarks/pbt_quality.py --explore pb2      # PB2's explore step instead
"""

from __future__ import annotations

import argparse
import time

import jax
import jax.numpy as jnp
import numpy as np

from metarl.outer.loop import as_state
from metarl.outer.search_step import SearchState, init_search_state, make_search_step
from metarl.pbt.outer import PBT, PBTState
from metarl.pbt.population import best_member
from metarl.programs.runner import Search
from metarl.spec import load_spec_data

SPACE = {"lr": {"low": 1e-5, "high": 1e-2, "log": True},
         "ent_coef": {"low": 0.0, "high": 0.05}, "clip_eps": {"low": 0.05, "high": 0.4},
         "gamma": {"low": 0.95, "high": 0.999}, "gae_lambda": {"low": 0.8, "high": 1.0}}
INNER = {"num_envs": 8, "num_steps": 64, "update_epochs": 4, "num_minibatches": 4,
         "hidden_sizes": [64, 64]}
# env, per-member budget (env steps, a multiple of 10 updates of 512 steps), return range;
# CartPole at 51,200: at 128,000 every winner of both methods reached the maximum, 500
TASKS = {"cartpole": ("gymnax/CartPole-v1", 51_200, (22.0, 500.0)),
         "acrobot": ("gymnax/Acrobot-v1", 128_000, (-500.0, -80.0)),
         "breakout": ("gymnax/Breakout-MinAtar", 256_000, (0.5, 60.0))}
INTERVALS = 10
POPULATION = 8


def task_spec(env: str, steps: int, rr: tuple[float, float]) -> dict:
    return {"env": env, "timesteps": steps, "return_range": list(rr)}


def pbt_search(task: dict, seed: int, explore: str = "perturb") -> Search:
    return Search(load_spec_data({
        "name": "pbt_quality", "kind": "pbt", "seed": seed, "tasks": {"train": [task]},
        "inner": INNER, "outer": {"population_size": POPULATION, "truncations": INTERVALS,
                                  "generations": INTERVALS},
        "pbt": {"search_space": SPACE, "explore": explore}}, "pbt_quality"))


def random_search(task: dict, seed: int) -> Search:
    return Search(load_spec_data({
        "name": "random_quality", "kind": "hparams", "seed": seed, "tasks": {"train": [task]},
        "inner": INNER, "outer": {"algorithm": "random", "population_size": POPULATION,
                                  "generations": 1, "final_fraction": 1 / INTERVALS},
        "search_space": SPACE}, "random_quality"))


def seeded(search: Search, seed: int) -> SearchState:
    """The search's initial state for `seed`: the compiled step serves every seed."""
    return init_search_state(search.loop, jax.random.PRNGKey(seed),
                             search.program.initial_mean(), search.problem)


def run_pbt(search: Search, seed: int) -> tuple[float, float, np.ndarray]:
    """Best member's raw return over the last interval, the wall time of the run, and the
    best member's schedule (`(intervals, D)` values in `SPACE`'s sorted order)."""
    state = seeded(search, seed)
    t0 = time.perf_counter()
    for _ in range(INTERVALS):
        state, out = search.step(state)
    returns = np.asarray(jax.device_get(out.info))[:, 0]
    wall = time.perf_counter() - t0
    best = jax.device_get(search.mean(state))
    return float(np.nanmax(returns)), wall, search.program.space.value(best.schedule, np)


def run_random(search: Search, seed: int) -> tuple[float, float, np.ndarray]:
    """The same for random search; its best configuration as a constant schedule."""
    state = seeded(search, seed)
    t0 = time.perf_counter()
    state, out = search.step(state)
    out = jax.device_get(out)
    returns = np.asarray(out.info)[:, 0]
    wall = time.perf_counter() - t0
    i = int(np.nanargmax(returns))
    hp = search.program.describe(jax.tree.map(lambda x: x[i], out.population))
    row = np.array([hp[n] for n in sorted(SPACE)], np.float32)
    return float(returns[i]), wall, np.tile(row, (INTERVALS, 1))


def make_replay(search: Search):
    """`replay(keys, schedule) -> (seeds,)` final returns: fresh runs of the task's PPO with
    a schedule's values set before each interval (a constant schedule for a fixed
    configuration), scored over the last interval: the winners of both methods re-measured
    on seeds neither was selected on. Compiled once for both."""
    program = search.program
    loop = program.suite.tasks[0].loop
    names, base = program.space.names, program.base.as_arrays()
    per = loop.config.num_updates // INTERVALS

    def one(key: jax.Array, values: jax.Array) -> jax.Array:
        def hp(i: jax.Array):
            return base._replace(**{n: values[i, j] for j, n in enumerate(names)})

        def interval(state, i):
            state, metrics = loop.step(state._replace(hparams=hp(i)), None, per)
            return state, loop.score(metrics)

        _, curves = jax.lax.scan(interval, loop.init(key, None, hp(0)), jnp.arange(INTERVALS))
        return curves[-1].mean()

    return jax.jit(jax.vmap(one, in_axes=(0, None)))


class WithoutExploit(PBT):
    """The same population and search step with exploit/explore left out: every member keeps
    its state and hyperparameters. The baseline of the overhead figure."""

    def exploit(self, key: jax.Array, scores: jax.Array, state: PBTState,
                runs: object) -> PBTState:
        return as_state(state._replace(runs=runs, step=state.step + 1,
                                       best=best_member(scores).astype(jnp.int32)))


def _timed(fn, *args) -> float:
    t0 = time.perf_counter()
    jax.block_until_ready(fn(*args))
    return time.perf_counter() - t0


def overhead(search: Search, reps: int) -> tuple[float, float]:
    """The cost of exploit/explore relative to the same population's step without it
    (`WithoutExploit`): (end to end: full step / bare step - 1; isolated: the exploit/explore
    step alone, compiled by itself, / bare step). Everything is compiled before timing and
    run alternately on the same state; the minimum over repetitions is compared, the figure
    least disturbed by other processes on the machine."""
    loop = search.loop
    bare = WithoutExploit(loop.solution, loop.population_size, loop.explorer, loop.quantile,
                          loop.mesh)
    plain = jax.jit(make_search_step(bare, search.problem))
    full = search.step
    state = search.initial_state()
    scores = jnp.arange(loop.population_size, dtype=jnp.float32)
    alone = jax.jit(lambda st: loop.exploit(jax.random.PRNGKey(1), scores, st.loop,
                                            st.loop.runs))
    for fn in (plain, full, alone):
        jax.block_until_ready(fn(state))
    times: dict[str, list[float]] = {"plain": [], "full": [], "alone": []}
    for _ in range(reps):
        for name, fn in (("plain", plain), ("full", full), ("alone", alone)):
            times[name].append(_timed(fn, state))
    base = min(times["plain"])
    return min(times["full"]) / base - 1, min(times["alone"]) / base


def at_least(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """`a >= b` up to float32 rounding of the returns (500.0 read as 499.99997)."""
    return a >= b - 1e-5 * np.maximum(np.abs(b), 1.0)


def mean_ci(x: np.ndarray, reps: int = 5000, seed: int = 0) -> tuple[float, float, float]:
    """Mean and a percentile bootstrap 95% CI over repetitions."""
    rng = np.random.default_rng(seed)
    means = rng.choice(x, (reps, len(x))).mean(1)
    return float(x.mean()), float(np.quantile(means, 0.025)), float(np.quantile(means, 0.975))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--tasks", default="cartpole,acrobot,breakout")
    parser.add_argument("--seeds", type=int, default=4)
    parser.add_argument("--scale", type=float, default=1.0, help="budget multiplier")
    parser.add_argument("--timing-reps", type=int, default=7)
    parser.add_argument("--explore", choices=["perturb", "pb2"], default="perturb")
    parser.add_argument("--overhead-only", action="store_true",
                        help="only time exploit/explore against the same step without it")
    parser.add_argument("--replay-seeds", type=int, default=4,
                        help="re-train each method's winner on this many fresh seeds")
    args = parser.parse_args()
    print(f"population {POPULATION}, {INTERVALS} intervals, {args.seeds} seeds, explore "
          f"{args.explore}, devices {jax.device_count()}")
    for name in args.tasks.split(","):
        env, steps, rr = TASKS[name]
        unit = INNER["num_envs"] * INNER["num_steps"] * INTERVALS
        steps = max(unit, int(steps * args.scale) // unit * unit)
        task = task_spec(env, steps, rr)
        if args.overhead_only:
            search = pbt_search(task, 0, args.explore)
            end_to_end, isolated = overhead(search, args.timing_reps)
            print(f"{name}: exploit/explore costs {100 * isolated:.2f}% (timed alone) and "
                  f"{100 * end_to_end:+.2f}% (step with it vs without) of a step of "
                  f"{POPULATION} members x {steps // INTERVALS:,} env steps", flush=True)
            continue
        pbt, rnd, t_pbt, t_rnd, re_pbt, re_rnd = [], [], [], [], [], []
        searches = pbt_search(task, 0, args.explore), random_search(task, 0)
        for search in searches:
            search.compile(search.initial_state())
        replay = make_replay(searches[0]) if args.replay_seeds else None
        for seed in range(args.seeds):
            p, tp, sched_p = run_pbt(searches[0], seed)
            r, tr, sched_r = run_random(searches[1], seed)
            pbt.append(p), rnd.append(r), t_pbt.append(tp), t_rnd.append(tr)
            line = (f"  {name} seed {seed}: pbt {p:8.2f}  best random {r:8.2f}  "
                    f"({tp:.1f} s / {tr:.1f} s)")
            if replay is not None:
                keys = jax.random.split(jax.random.PRNGKey(10_000 + seed), args.replay_seeds)
                re_pbt.append(float(np.mean(replay(keys, sched_p))))
                re_rnd.append(float(np.mean(replay(keys, sched_r))))
                line += f"; replayed on fresh seeds: {re_pbt[-1]:8.2f} / {re_rnd[-1]:8.2f}"
            print(line, flush=True)
        pbt_a, rnd_a = np.array(pbt), np.array(rnd)
        m, lo, hi = mean_ci(pbt_a)
        mr, lor, hir = mean_ci(rnd_a)
        d, dlo, dhi = mean_ci(pbt_a - rnd_a)
        end_to_end, isolated = overhead(searches[0], args.timing_reps)
        total = POPULATION * steps
        print(f"{name} ({env}, {steps:,} steps per member, {total:,} per method): "
              f"PBT {m:.2f} [{lo:.2f}, {hi:.2f}]  best random {mr:.2f} [{lor:.2f}, {hir:.2f}]"
              f"  PBT - random {d:+.2f} [{dlo:+.2f}, {dhi:+.2f}]  PBT >= random in "
              f"{int(np.sum(at_least(pbt_a, rnd_a)))}/{len(pbt_a)} seeds; exploit/explore "
              f"{100 * isolated:.2f}% alone, {100 * end_to_end:+.2f}% end to end; wall pbt "
              f"{np.mean(t_pbt):.1f} s, random {np.mean(t_rnd):.1f} s", flush=True)
        if re_pbt:
            a, b = np.array(re_pbt), np.array(re_rnd)
            d, dlo, dhi = mean_ci(a - b)
            print(f"{name} replayed winners ({args.replay_seeds} fresh seeds each): PBT schedule "
                  f"{a.mean():.2f}, best random configuration {b.mean():.2f}, difference "
                  f"{d:+.2f} [{dlo:+.2f}, {dhi:+.2f}]", flush=True)


if __name__ == "__main__":
    main()
