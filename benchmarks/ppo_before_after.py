"""metarl's PPO against its own earlier version, in one process, alternating.

A redesign of the inner loop must not cost speed: this loads `metarl/ppo/train.py` as it was at
a git revision (`--before`, default the last commit before the loop was split into pieces) next
to today's, compiles both for CartPole-v1 at 1 and at 16 `vmap`-ed seeds, and times their runs
interleaved so that load from other processes hits both alike. Prints steps/s (best and median)
and the ratio today/before; the two must also agree bit for bit on the final returns.

    python benchmarks/ppo_before_after.py                 # 2^17 steps, 5 timed runs each
    python benchmarks/ppo_before_after.py --quick         # a smoke run
"""

from __future__ import annotations

import argparse
import importlib.util
import subprocess
import sys
import tempfile
import time
import types
from pathlib import Path

import jax
import numpy as np

from metarl.envs import make
from metarl.mulhi import use_portable_mulhi
from metarl.ppo import PPOConfig, make_train

ROOT = Path(__file__).resolve().parents[1]
BEFORE = "2f24a33"  # the sealed `lax.scan` loop


def load_train_at(rev: str):  # noqa: ANN201 - a module
    """`metarl/ppo/train.py` at `rev`, imported as a module of its own beside today's."""
    source = subprocess.run(["git", "show", f"{rev}:metarl/ppo/train.py"], cwd=ROOT,
                            capture_output=True, text=True, check=True).stdout
    # the sealed loop imported the Philox lowering from where it lived then, and installed
    # it at import (process-wide: today's PPO runs with it too, and it computes the same bits)
    shim = types.ModuleType("metarl.ppo.mulhi")
    shim.register_portable_mulhi = use_portable_mulhi
    sys.modules.setdefault("metarl.ppo.mulhi", shim)
    path = Path(tempfile.mkdtemp()) / "train_before.py"
    path.write_text(source)
    spec = importlib.util.spec_from_file_location("train_before", path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def seeded(train, seeds: int):  # noqa: ANN001, ANN201
    if seeds == 1:
        return lambda key: train(key)
    return lambda key: jax.vmap(train)(jax.random.split(key, seeds))


def measure(trains: dict, seeds: int, repeats: int, steps: int) -> dict[str, list[float]]:
    key = jax.random.key(0)
    compiled, finals, times = {}, {}, {name: [] for name in trains}
    for name, train in trains.items():
        t0 = time.perf_counter()
        compiled[name] = jax.jit(seeded(train, seeds)).lower(key).compile()
        print(f"  [{seeds:2d} seed(s)] {name:6s} compile {time.perf_counter() - t0:5.1f} s")
    for _ in range(repeats):
        for name in trains:
            t0 = time.perf_counter()
            _, metrics = jax.block_until_ready(compiled[name](key))
            times[name].append(time.perf_counter() - t0)
            finals[name] = np.asarray(metrics["episode_return"])
    same = np.array_equal(finals["before"], finals["today"])
    print(f"  [{seeds:2d} seed(s)] returns bit-identical: {same}")
    return {name: [steps * seeds / t for t in ts] for name, ts in times.items()}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--before", default=BEFORE)
    parser.add_argument("--timesteps", type=int, default=2**17)
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--quick", action="store_true")
    args = parser.parse_args()
    if args.quick:
        args.timesteps, args.repeats = 2**13, 2
    config = PPOConfig(total_timesteps=args.timesteps)
    env = make("gymnax/CartPole-v1")
    trains = {"before": load_train_at(args.before).make_train(config, env),
              "today": make_train(config, env)}
    steps = config.num_updates * config.batch_size
    rows = []
    for seeds in (1, 16):
        rates = measure(trains, seeds, args.repeats, steps)
        best = {k: max(v) for k, v in rates.items()}
        med = {k: float(np.median(v)) for k, v in rates.items()}
        rows.append(f"| {seeds} | {best['before']:,.0f} | {best['today']:,.0f} | "
                    f"{best['today'] / best['before']:.3f} | "
                    f"{med['today'] / med['before']:.3f} |")
    print(f"\nPPO CartPole-v1, {args.timesteps:,} steps per seed, {args.repeats} timed runs "
          f"each, alternating (before = {args.before})\n")
    print("| seeds | before steps/s (best) | today steps/s (best) | ratio best | ratio median |")
    print("| --- | --- | --- | --- | --- |")
    print("\n".join(rows))
    sys.stdout.flush()


if __name__ == "__main__":
    main()
