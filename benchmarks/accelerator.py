"""What one accelerator does for metarl: PPO env steps/s, a search generation, Brax.

Prints a Markdown table (device, jax version, then one row per figure):

* PPO env steps/s with `metarl.ppo.make_train` on gymnax CartPole-v1 and MinAtar
  Breakout-MinAtar, for 1, 256 and 2048 `vmap`-ed seeds (`--quick`: 1, 4 and 16);
* the time of one generation of `search/quickstart.toml` (the bare compiled outer step:
  population x seeds x whole PPO runs, no tracking), after compiling it;
* Brax PPO env steps/s: metarl's PPO on a `brax/...` env, and `brax.training`'s own PPO on the
  same env and batch where it runs (on jax 0.10 it does not: the row then says why).

Each figure is the best of `--repeats` timed runs of an executable compiled (and run once)
beforehand, so compile time and the first run's transfers are not in it; compile seconds are
given beside it. A case that fails (out of memory, say) gets a row saying so, the others
still run, and the script exits 1 at the end. Sized to take under 8 minutes on one GPU;
`--quick` runs everything small enough for a CPU (a few minutes on 2 cores), so the script is
known to work before a GPU is at hand. Run from the repository root:

    bash benchmarks/accelerator.sh            # on a GPU
    bash benchmarks/accelerator.sh --quick    # anywhere
"""

from __future__ import annotations

import argparse
import datetime
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import jax

ROOT = Path(__file__).resolve().parent.parent
GYMNAX_ENVS = ("gymnax/CartPole-v1", "gymnax/Breakout-MinAtar")


@dataclass
class Row:
    benchmark: str
    setting: str
    figure: str
    compile_s: float | None = None


@dataclass
class Settings:
    seeds: list[int]
    timesteps: int  # env steps per seed, gymnax PPO
    repeats: int
    quickstart_overrides: list[str]
    brax_env: str
    brax_envs: int
    brax_steps: int  # env steps per env per update
    brax_updates: int


FULL = Settings(seeds=[1, 256, 2048], timesteps=64 * 512, repeats=3,
                quickstart_overrides=["outer.generations=2"],
                brax_env="brax/ant", brax_envs=512, brax_steps=32, brax_updates=10)
QUICK = Settings(seeds=[1, 4, 16], timesteps=8 * 512, repeats=3,
                 quickstart_overrides=["outer.generations=2", "tasks.train.0.timesteps=4096"],
                 brax_env="brax/inverted_pendulum", brax_envs=16, brax_steps=32,
                 brax_updates=2)


def log(msg: str) -> None:
    print(msg, file=sys.stderr, flush=True)  # progress on stderr, the table alone on stdout


def compile_and_time(fn: Callable[[jax.Array], Any], repeats: int) -> tuple[float, float]:
    """(compile seconds, best wall seconds of `repeats` runs) of `jax.jit(fn)` on one key,
    after one untimed run."""
    key = jax.random.key(0)
    t0 = time.perf_counter()
    compiled = jax.jit(fn).lower(key).compile()
    compile_s = time.perf_counter() - t0
    jax.block_until_ready(compiled(key))
    best = float("inf")
    for _ in range(repeats):
        t0 = time.perf_counter()
        jax.block_until_ready(compiled(key))
        best = min(best, time.perf_counter() - t0)
    return compile_s, best


def gymnax_ppo(env_name: str, seeds: int, settings: Settings) -> Row:
    from metarl.envs import make
    from metarl.ppo import PPOConfig, make_train

    config = PPOConfig(total_timesteps=settings.timesteps)
    train = make_train(config, make(env_name))
    compile_s, run_s = compile_and_time(
        lambda key: jax.vmap(train)(jax.random.split(key, seeds)), settings.repeats)
    steps = seeds * config.num_updates * config.batch_size
    return Row(f"PPO {short(env_name)}", f"{seeds} seed(s) x {steps // seeds:,} steps",
               f"{steps / run_s:,.0f} env steps/s", compile_s)


def short(env_name: str) -> str:
    return env_name.split("/", 1)[1]


def quickstart_generation(settings: Settings) -> Row:
    from metarl.programs.runner import Search
    from metarl.spec import load_spec

    spec = load_spec(ROOT / "search" / "quickstart.toml", settings.quickstart_overrides)
    search = Search(spec)
    state = search.initial_state()
    search.compile(state)
    state, _ = jax.block_until_ready(search.step(state))  # first run: transfers, warm caches
    best = float("inf")
    for _ in range(max(1, settings.repeats - 1)):
        t0 = time.perf_counter()
        state, _ = jax.block_until_ready(search.step(state))
        best = min(best, time.perf_counter() - t0)
    pop = spec.outer.population_size
    steps = search.env_steps(pop)
    return Row("quickstart generation", f"{pop} members x {steps // pop:,} steps",
               f"{best:.2f} s ({steps / best:,.0f} env steps/s)", search.compile_seconds)


def brax_config(settings: Settings) -> Any:
    from metarl.ppo import PPOConfig

    batch = settings.brax_envs * settings.brax_steps
    return PPOConfig(total_timesteps=batch * settings.brax_updates, num_envs=settings.brax_envs,
                     num_steps=settings.brax_steps, num_minibatches=4, update_epochs=4)


def brax_metarl(settings: Settings) -> Row:
    from metarl.envs import make
    from metarl.ppo import make_train

    config = brax_config(settings)
    train = make_train(config, make(settings.brax_env))
    compile_s, run_s = compile_and_time(train, settings.repeats)
    steps = config.num_updates * config.batch_size
    return Row(f"Brax {short(settings.brax_env)}, metarl PPO", _brax_setting(settings),
               f"{steps / run_s:,.0f} env steps/s", compile_s)


def brax_training(settings: Settings) -> Row:
    """`brax.training`'s PPO on the same env and batch: the same env steps per update (envs x
    unroll length), epochs and minibatches. Its own `training/sps` (steps per second of the
    training steps between evaluations, compilation excluded) is the figure."""
    from brax import envs
    from brax.training.agents.ppo import train as brax_ppo

    name = short(settings.brax_env)
    sps: list[float] = []
    t0 = time.perf_counter()
    brax_ppo.train(
        environment=envs.get_environment(name), num_timesteps=settings.brax_envs
        * settings.brax_steps * settings.brax_updates, episode_length=1000,
        num_envs=settings.brax_envs, unroll_length=settings.brax_steps,
        batch_size=settings.brax_envs // 4, num_minibatches=4, num_updates_per_batch=4,
        num_evals=3, seed=0,
        progress_fn=lambda _, metrics: sps.append(float(metrics.get("training/sps", 0.0))))
    total = time.perf_counter() - t0
    figure = f"{sps[-1]:,.0f} env steps/s" if sps and sps[-1] else "no training/sps reported"
    return Row(f"Brax {name}, brax.training PPO", _brax_setting(settings),
               f"{figure} ({total:.0f} s in all, compile included)")


def _brax_setting(settings: Settings) -> str:
    return (f"{settings.brax_envs} envs x {settings.brax_steps} steps x "
            f"{settings.brax_updates} updates, 4 epochs x 4 minibatches")


def measure(rows: list[Row], failures: list[str], benchmark: str, setting: str,
            fn: Callable[[], Row], expected_failure: bool = False) -> None:
    """Run one case; a failure becomes a row (one line: the exception and its first line)."""
    t0 = time.perf_counter()
    log(f"{benchmark} [{setting}] ...")
    try:
        row = fn()
    except Exception as err:  # noqa: BLE001 - any failure is a result to print
        # one line: the message's first sentence
        first = (str(err).strip().splitlines() or [""])[0].split(". ")[0][:160]
        rows.append(Row(benchmark, setting, f"did not run: {type(err).__name__}: {first}"))
        if not expected_failure:
            failures.append(benchmark)
    else:
        rows.append(row)
    log(f"  {rows[-1].figure} ({time.perf_counter() - t0:.1f} s)")


def table(rows: list[Row], header: dict[str, str]) -> str:
    lines = [f"* {k}: {v}" for k, v in header.items()]
    lines += ["", "| benchmark | setting | figure | compile s |", "| :--- | :--- | ---: | ---: |"]
    for r in rows:
        compile_s = "" if r.compile_s is None else f"{r.compile_s:.1f}"
        lines.append(f"| {r.benchmark} | {r.setting} | {r.figure} | {compile_s} |")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true",
                        help="CPU-sized: seeds 1/4/16, 4,096 steps per seed, a 4,096-step "
                             "quickstart, Brax inverted_pendulum with 16 envs")
    parser.add_argument("--seeds", type=int, nargs="+", help="vmapped seed counts")
    parser.add_argument("--timesteps", type=int, help="env steps per seed, gymnax PPO")
    parser.add_argument("--repeats", type=int, help="timed runs per case, best kept")
    parser.add_argument("--brax-env", help="metarl env name, e.g. brax/ant")
    parser.add_argument("--brax-envs", type=int, help="Brax envs per update")
    parser.add_argument("--skip-brax", action="store_true", help="leave out both Brax rows")
    args = parser.parse_args(argv)
    s = QUICK if args.quick else FULL
    s = Settings(args.seeds or s.seeds, args.timesteps or s.timesteps, args.repeats or s.repeats,
                 s.quickstart_overrides, args.brax_env or s.brax_env,
                 args.brax_envs or s.brax_envs, s.brax_steps, s.brax_updates)

    t_start = time.perf_counter()
    device = jax.devices()[0]
    header = {"device": f"{device.device_kind} ({device.platform}, {jax.device_count()} "
                        "device(s))",
              "jax": jax.__version__, "date": datetime.date.today().isoformat(),
              "mode": "quick" if args.quick else "full",
              "PPO": "4 envs x 128 steps per seed, 4 epochs x 4 minibatches, 64-64 tanh",
              "quickstart": "search/quickstart.toml, bare outer step, --set "
                            + " --set ".join(s.quickstart_overrides)}
    rows: list[Row] = []
    failures: list[str] = []
    for env_name in GYMNAX_ENVS:
        for seeds in s.seeds:
            measure(rows, failures, f"PPO {short(env_name)}", f"{seeds} seed(s)",
                    lambda e=env_name, n=seeds: gymnax_ppo(e, n, s))
    measure(rows, failures, "quickstart generation", "search/quickstart.toml",
            lambda: quickstart_generation(s))
    if not args.skip_brax:
        measure(rows, failures, f"Brax {short(s.brax_env)}, metarl PPO", _brax_setting(s),
                lambda: brax_metarl(s))
        # brax.training's PPO does not run on jax 0.10 (it calls the removed
        # jax.device_put_replicated): expected, and reported as a row rather than a failure
        measure(rows, failures, f"Brax {short(s.brax_env)}, brax.training PPO",
                _brax_setting(s),
                lambda: brax_training(s), expected_failure=True)
    header["wall"] = f"{time.perf_counter() - t_start:.0f} s"
    print(table(rows, header), flush=True)
    if failures:
        log(f"failed: {', '.join(failures)}")
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
