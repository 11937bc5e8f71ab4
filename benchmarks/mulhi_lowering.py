"""PPO with jax's own `mulhi` lowering against metarl's portable one, in one process.

The portable lowering (`metarl.mulhi.use_portable_mulhi`) lets Philox compile inside sharded
programs; it is process-wide, so metarl installs it only when it builds a sharded program.
This measures what it costs where it is not needed: a CartPole PPO compiled before the
lowering is installed and the same PPO compiled after, timed alternately.

    python benchmarks/mulhi_lowering.py            # 2^17 steps, 1 and 16 seeds, 5 runs each
"""

from __future__ import annotations

import argparse
import time

import jax
import numpy as np

from metarl.envs import make
from metarl.mulhi import use_portable_mulhi
from metarl.ppo import PPOConfig, make_train


def compiled(config: PPOConfig, seeds: int):  # noqa: ANN201
    train = make_train(config, make("gymnax/CartPole-v1"))  # a fresh function: a new compile
    run = (lambda k: train(k)) if seeds == 1 else (
        lambda k: jax.vmap(train)(jax.random.split(k, seeds)))
    t0 = time.perf_counter()
    exe = jax.jit(run).lower(jax.random.key(0)).compile()
    return exe, time.perf_counter() - t0


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--timesteps", type=int, default=2**17)
    ap.add_argument("--repeats", type=int, default=5)
    args = ap.parse_args()
    config = PPOConfig(total_timesteps=args.timesteps)
    steps = config.num_updates * config.batch_size
    print("| seeds | compile jax / portable (s) | steps/s jax (median) | steps/s portable "
          "(median) | jax / portable |")
    print("| --- | --- | --- | --- | --- |")
    seed_counts = (1, 16)
    # every jax-lowered program first: installing the portable lowering is process-wide
    native = {n: compiled(config, n) for n in seed_counts}
    use_portable_mulhi()
    portable = {n: compiled(config, n) for n in seed_counts}
    for seeds in seed_counts:
        times: dict[str, list[float]] = {"jax": [], "portable": []}
        outs = {}
        for _ in range(args.repeats):
            for name, exe in (("jax", native[seeds][0]), ("portable", portable[seeds][0])):
                t0 = time.perf_counter()
                outs[name] = jax.block_until_ready(exe(jax.random.key(0)))
                times[name].append(time.perf_counter() - t0)
        same = np.array_equal(outs["jax"][1]["episode_return"],
                              outs["portable"][1]["episode_return"])
        rate = {k: steps * seeds / float(np.median(v)) for k, v in times.items()}
        print(f"| {seeds} | {native[seeds][1]:.1f} / {portable[seeds][1]:.1f} | "
              f"{rate['jax']:,.0f} | {rate['portable']:,.0f} | "
              f"{rate['jax'] / rate['portable']:.2f} (returns identical: {same}) |")


if __name__ == "__main__":
    main()
