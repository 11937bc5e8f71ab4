"""PPO throughput: metarl's PPO against a PureJaxRL-style reference, in one process.

For 1 seed and for N `vmap`-ed seeds, and for each implementation, it measures

* compile seconds: `jax.jit(f).lower(key).compile()` (tracing + lowering + XLA), best of
  `--compile-repeats`, ours and the reference alternating;
* env steps/s: wall time of the compiled run (`block_until_ready`), best and median of
  `--repeats` runs (`--single-repeats` for one seed), ours and the reference alternating
  so that load from other processes hits both alike;
* final return: mean episode return over the last 10% of updates, averaged over seeds;

then prints a Markdown table with the ratios ours/reference, and Brax `inverted_pendulum`
throughput with our PPO (continuous actions). Run from the repository root:

    python benchmarks/ppo_throughput.py            # full: 500k steps, 1 and 16 seeds, Brax
    python benchmarks/ppo_throughput.py --quick    # a smoke run of about two minutes
    python benchmarks/ppo_throughput.py --phases   # also: SGD epochs vs rollout, per update
    python benchmarks/ppo_throughput.py --phases 1 16   # ... at 1 and at 16 seeds
"""

from __future__ import annotations

import argparse
import datetime
import os
import platform
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import jax
import numpy as np

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

import reference_ppo  # noqa: E402

from metarl.envs import make  # noqa: E402
from metarl.ppo import PPOConfig, make_train  # noqa: E402

FINAL_FRACTION = 0.1  # "final return" = mean over this last fraction of updates


@dataclass
class Result:
    compile_s: float
    steps_per_s: float  # best timed run
    final_return: float
    median_steps_per_s: float = float("nan")


def _ours_final_return(metrics: dict) -> float:
    ret = np.asarray(metrics["episode_return"], np.float64)  # (..., num_updates)
    n = ret.shape[-1]
    return float(ret[..., n - max(1, int(n * FINAL_FRACTION)):].mean())


def _seeded(train: Callable, seeds: int) -> Callable:
    """`f(key)` running `train` for one seed, or `vmap`-ed over `seeds` split keys.

    A fresh closure every call: `jax.jit` caches traces and executables per function object,
    so re-jitting the same function would time a cache hit instead of a compilation."""
    if seeds == 1:
        return lambda key: train(key)
    return lambda key: jax.vmap(train)(jax.random.split(key, seeds))


def _compile(train: Callable, seeds: int, key: jax.Array) -> tuple[Any, float]:
    t0 = time.perf_counter()
    compiled = jax.jit(_seeded(train, seeds)).lower(key).compile()
    return compiled, time.perf_counter() - t0


def _timed_run(compiled: Any, key: jax.Array) -> tuple[Any, float]:
    t0 = time.perf_counter()
    out = jax.block_until_ready(compiled(key))
    return out, time.perf_counter() - t0


def compare(timesteps: int, seeds: int, repeats: int, compile_repeats: int,
            log: Callable[[str], None]) -> dict[str, Result]:
    """Measure ours and the reference for one seed count, interleaving every measurement."""
    config = PPOConfig(total_timesteps=timesteps)
    env = make("gymnax/CartPole-v1")
    ref_config = dict(reference_ppo.CONFIG, TOTAL_TIMESTEPS=timesteps)
    trains = {"ours": make_train(config, env), "reference": reference_ppo.make_train(ref_config)}
    steps = config.num_updates * config.batch_size * seeds  # same for both
    key = jax.random.key(0)

    compiled: dict[str, Any] = {}
    compile_s = {name: float("inf") for name in trains}
    for _ in range(compile_repeats):
        for name, train in trains.items():
            compiled[name], dt = _compile(train, seeds, key)
            compile_s[name] = min(compile_s[name], dt)
            log(f"  [{seeds} seed(s)] {name:9s} compile {dt:6.2f} s")

    run_s: dict[str, list[float]] = {name: [] for name in trains}
    outputs: dict[str, Any] = {}
    for _ in range(repeats):
        for name in trains:
            outputs[name], dt = _timed_run(compiled[name], key)
            run_s[name].append(dt)
            log(f"  [{seeds} seed(s)] {name:9s} run     {dt:6.2f} s  "
                f"({steps / dt:,.0f} steps/s)")

    finals = {"ours": _ours_final_return(outputs["ours"][1]),
              "reference": reference_ppo.final_return(outputs["reference"]["metrics"],
                                                      FINAL_FRACTION)}
    return {name: Result(compile_s[name], steps / min(run_s[name]), finals[name],
                         steps / float(np.median(run_s[name]))) for name in trains}


def warm_up(log: Callable[[str], None]) -> None:
    """Compile and run a two-update program of each implementation once and discard it.

    Measured here: the first executable a process compiles can run persistently slower (by up
    to a third) than an identical one compiled later, which would penalise whichever
    implementation is measured first."""
    config = PPOConfig(total_timesteps=2 * 512)
    env = make("gymnax/CartPole-v1")
    ref_config = dict(reference_ppo.CONFIG, TOTAL_TIMESTEPS=2 * 512)
    key = jax.random.key(1)
    t0 = time.perf_counter()
    for train in (make_train(config, env), reference_ppo.make_train(ref_config)):
        compiled, _ = _compile(train, 1, key)
        _timed_run(compiled, key)
    log(f"  warm-up {time.perf_counter() - t0:.1f} s")


def phases(timesteps: int, repeats: int, log: Callable[[str], None],
           seeds: int = 1) -> dict[str, tuple]:
    """Where one update's time goes, for `seeds` vmapped seeds: both implementations
    compiled with 1 and with 4 epochs; the difference is 3 epochs of minibatch SGD, the rest
    is rollout, GAE and bookkeeping. Returns `{impl: (ms per update, ms per SGD epoch,
    ms rollout and rest)}`."""
    env = make("gymnax/CartPole-v1")
    key = jax.random.key(0)
    compiled, best = {}, {}
    for epochs in (1, 4):
        config = PPOConfig(total_timesteps=timesteps, update_epochs=epochs)
        ref_config = dict(reference_ppo.CONFIG, TOTAL_TIMESTEPS=timesteps, UPDATE_EPOCHS=epochs)
        compiled[("ours", epochs)] = _compile(make_train(config, env), seeds, key)[0]
        compiled[("reference", epochs)] = _compile(reference_ppo.make_train(ref_config), seeds,
                                                   key)[0]
    for _ in range(repeats):
        for case, fn in compiled.items():
            best[case] = min(best.get(case, float("inf")), _timed_run(fn, key)[1])
    updates = PPOConfig(total_timesteps=timesteps).num_updates
    out = {}
    for name in ("ours", "reference"):
        per_epoch = (best[(name, 4)] - best[(name, 1)]) / 3 / updates * 1e3
        out[name] = (best[(name, 4)] / updates * 1e3, per_epoch,
                     best[(name, 1)] / updates * 1e3 - per_epoch)
        log(f"  phases, {seeds} seeds, {name:9s} {out[name][0]:.2f} ms per update: SGD "
            f"{out[name][1]:.2f} ms per epoch, rollout and rest {out[name][2]:.2f} ms")
    return out


def brax_throughput(timesteps: int, repeats: int, log: Callable[[str], None]) -> Result:
    """Our PPO on Brax inverted_pendulum (continuous actions), 1 seed, small batch."""
    t0 = time.perf_counter()
    env = make("brax/inverted_pendulum")
    log(f"  brax env constructed in {time.perf_counter() - t0:.1f} s")
    config = PPOConfig(total_timesteps=timesteps, num_envs=16, num_steps=32, num_minibatches=4,
                       update_epochs=4)
    key = jax.random.key(0)
    compiled, compile_s = _compile(make_train(config, env), 1, key)
    log(f"  brax compile {compile_s:.1f} s")
    steps = config.num_updates * config.batch_size
    best = float("inf")
    for _ in range(repeats):
        out, dt = _timed_run(compiled, key)
        best = min(best, dt)
        log(f"  brax run {dt:.2f} s ({steps / dt:,.0f} steps/s)")
    return Result(compile_s, steps / best, _ours_final_return(out[1]))


def _ratio(a: float, b: float) -> str:
    return f"{a / b:.2f}x" if b else "n/a"


def format_table(results: dict[int, dict[str, Result]]) -> str:
    lines = ["| seeds | impl | env steps/s (best run) | median run | compile s | final return |",
             "| ---: | :--- | ---: | ---: | ---: | ---: |"]
    for seeds, res in results.items():
        for name, r in res.items():
            lines.append(f"| {seeds} | {name} | {r.steps_per_s:,.0f} "
                         f"| {r.median_steps_per_s:,.0f} | {r.compile_s:.1f} "
                         f"| {r.final_return:.1f} |")
        o, ref = res["ours"], res["reference"]
        lines.append(f"| {seeds} | **ours/ref** | **{_ratio(o.steps_per_s, ref.steps_per_s)}** "
                     f"| {_ratio(o.median_steps_per_s, ref.median_steps_per_s)} "
                     f"| **{_ratio(o.compile_s, ref.compile_s)}** "
                     f"| **{_ratio(o.final_return, ref.final_return)}** |")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--timesteps", type=int, default=500_000,
                        help="CartPole env steps per seed (default 500k)")
    parser.add_argument("--seeds", type=int, default=16,
                        help="number of vmapped seeds in the batched comparison (default 16)")
    parser.add_argument("--repeats", type=int, default=3,
                        help="timed runs per case with --seeds seeds, best kept (default 3)")
    parser.add_argument("--single-repeats", type=int, default=12,
                        help="timed runs per case with 1 seed (default 12: these runs are "
                             "short, and on a noisy machine 3 of them rarely include one "
                             "undisturbed run of each implementation)")
    parser.add_argument("--compile-repeats", type=int, default=2,
                        help="compilations per case, best kept")
    parser.add_argument("--brax-timesteps", type=int, default=16 * 32 * 30,
                        help="Brax inverted_pendulum env steps (default 15,360)")
    parser.add_argument("--skip-brax", action="store_true", help="leave out the Brax figure")
    parser.add_argument("--phases", type=int, nargs="*", metavar="SEEDS",
                        help="also split one update's time into SGD epochs and the rest, "
                             "for both implementations, at these seed counts (default 1)")
    parser.add_argument("--quick", action="store_true",
                        help="100k steps, 4 seeds, 2 repeats, 1 compile each, tiny Brax run")
    args = parser.parse_args(argv)
    if args.quick:
        args.timesteps, args.seeds = 100_000, 4
        args.repeats, args.single_repeats, args.compile_repeats = 2, 2, 1
        args.brax_timesteps = 16 * 32 * 10

    def log(msg: str) -> None:
        print(msg, flush=True)

    log(f"PPO throughput, {datetime.date.today()}, jax {jax.__version__}, "
        f"{jax.devices()[0].platform} ({os.cpu_count()} cores, {platform.processor() or '?'}), "
        f"{args.timesteps:,} steps per seed")
    warm_up(log)
    results: dict[int, dict[str, Result]] = {}
    for seeds in dict.fromkeys((1, args.seeds)):
        repeats = args.single_repeats if seeds == 1 else args.repeats
        results[seeds] = compare(args.timesteps, seeds, repeats, args.compile_repeats, log)
    phase_seeds = [] if args.phases is None else args.phases or [1]
    splits = {n: phases(args.timesteps, args.repeats, log, n) for n in phase_seeds}
    brax = None if args.skip_brax else brax_throughput(args.brax_timesteps, 2, log)

    log("\nCartPole-v1, 4 envs x 128 steps, 4 epochs x 4 minibatches, 64-64 tanh MLPs "
        f"({args.timesteps:,} steps per seed)\n")
    log(format_table(results))
    if splits:
        log("\n| seeds | impl | ms per update | SGD ms per epoch | rollout and rest ms |\n"
            "| ---: | :--- | ---: | ---: | ---: |")
        for n, split in splits.items():
            for name, (total, sgd, rest) in split.items():
                log(f"| {n} | {name} | {total:.2f} | {sgd:.2f} | {rest:.2f} |")
    if brax is not None:
        log(f"\nBrax inverted_pendulum, our PPO, 16 envs x 32 steps, 1 seed, "
            f"{args.brax_timesteps:,} steps: {brax.steps_per_s:,.0f} env steps/s "
            f"(compile {brax.compile_s:.1f} s)")


if __name__ == "__main__":
    main()
