"""Does RL² trained on the CPU match the classic algorithms of its task distribution?

Trains one RL² agent (recurrent PPO over trials, `metarl.rl2`) per setting, then plays it on
freshly drawn tasks without learning and plays the baselines on freshly drawn tasks too:
bandits — random, epsilon-greedy, UCB1, Thompson sampling, Gittins indices, the oracle; tabular
MDPs — random, Q-learning, PSRL, the oracle. Prints each one's mean total reward per trial with
a bootstrap 95% CI, and RL²'s env steps and wall time.

Targets (issue 20): bandits with n = 100 and k in {5, 10}: RL² >= Thompson sampling and within
1% of Gittins; tabular MDPs with n <= 25 episodes: RL² >= PSRL.

    python benchmarks/rl2_quality.py bandits              # k = 5 and 10, n = 100
    python benchmarks/rl2_quality.py mdps                 # n = 10 episodes of 10 steps
    python benchmarks/rl2_quality.py bandits --steps 500000 --trials 512   # smoke run
    python benchmarks/rl2_quality.py throughput   # recurrent PPO steps/s, 1 and 64 seeds
"""

from __future__ import annotations

import argparse
import time

import jax
import numpy as np
from matplotlib.figure import Figure

from metarl.envs import make
from metarl.meta_rl import bandit_baselines, mdp_baselines
from metarl.spec import load_spec, load_spec_data


def agent_spec(env: str, kwargs: dict, trial_steps: int, steps: int, episodes: int,
               lr: float) -> object:
    """An `hparams` spec whose `[inner]` is the RL² agent trained here (the search part is
    unused: the spec is how every inner loop is configured)."""
    return load_spec_data({
        "name": "rl2_quality", "kind": "hparams",
        "tasks": {"train": [{"env": env, "timesteps": steps, "env_kwargs": kwargs}]},
        "inner": {"algorithm": "rl2", "episodes_per_trial": episodes, "num_envs": 64,
                  "num_steps": trial_steps, "num_minibatches": 4, "update_epochs": 4,
                  "hidden_size": 128, "embed_sizes": [64], "head_sizes": [64], "lr": lr,
                  "gamma": 1.0, "gae_lambda": 0.95, "ent_coef": 0.01, "anneal_lr": True},
        "search_space": {"lr": {"low": 1e-4, "high": 1e-2}}}, "rl2_quality")


def train_and_play(spec: object, trials: int, seed: int
                   ) -> tuple[np.ndarray, np.ndarray, float]:
    """Total reward of `trials` fresh trials played by an RL² agent trained with `spec`, its
    mean reward at every step of a trial, and the training's wall time."""
    loop = spec.inner.build_task(spec.tasks.train[0])
    t0 = time.perf_counter()
    state, _ = jax.jit(loop.train)(jax.random.PRNGKey(seed), None,
                                   spec.inner.hparams().as_arrays())
    jax.block_until_ready(state.params)
    seconds = time.perf_counter() - t0
    rollouts = -(-trials // loop.config.num_envs)
    _, out = jax.jit(lambda s: loop.evaluate(s, rollouts))(state)
    per_step = np.asarray(out["step_reward"]).mean((0, 2))  # rollouts hold one trial per env
    return np.asarray(out["last_return"]).ravel()[:trials], per_step, seconds


def mean_ci(x: np.ndarray, reps: int = 2000, seed: int = 0) -> tuple[float, float, float]:
    rng = np.random.default_rng(seed)
    means = x[rng.integers(0, len(x), (reps, len(x)))].mean(1)
    return float(x.mean()), float(np.quantile(means, 0.025)), float(np.quantile(means, 0.975))


def report(title: str, rows: dict[str, np.ndarray]) -> None:
    print(title)
    for name, x in rows.items():
        m, lo, hi = mean_ci(x)
        print(f"  {name:16s} {m:8.2f}  [{lo:.2f}, {hi:.2f}]")


def bandits(args: argparse.Namespace) -> None:
    for k in args.arms:
        n = args.trial_length
        spec = agent_spec("metarl/BernoulliBandit", {"num_arms": k, "trial_length": n}, n,
                          args.steps, 1, args.lr)
        rl2, rl2_steps, seconds = train_and_play(spec, args.trials, args.seed)
        env = make("metarl/BernoulliBandit", num_arms=k, trial_length=n)
        tasks = jax.vmap(env.sample_params)(jax.random.split(jax.random.PRNGKey(7), args.trials))
        rows, steps = {"rl2": rl2}, {"rl2": rl2_steps}
        for name, policy in bandit_baselines.BASELINES.items():
            rewards = np.asarray(policy(jax.random.PRNGKey(8), tasks, n))
            rows[name], steps[name] = rewards.sum(1), rewards.mean(0)
        report(f"bandits k={k}, n={n}: total reward per trial, {args.trials} fresh trials "
               f"(RL²: {args.steps:,} pulls of training in {seconds:.0f} s)", rows)
        if args.figures:
            regret_figure(steps, f"Bernoulli bandits, k = {k}, n = {n}").savefig(
                f"{args.figures}/rl2_regret_k{k}_n{n}.png")


def regret_figure(per_step: dict[str, np.ndarray], title: str) -> Figure:
    """Expected cumulative regret over a trial: the oracle's mean reward per step minus each
    algorithm's, summed (tasks are fresh draws of one distribution, so the means compare)."""
    fig = Figure(figsize=(5.5, 3.6), dpi=110)
    ax = fig.subplots()
    best = per_step["oracle"]
    for name, rewards in per_step.items():
        if name != "oracle":
            ax.plot(np.arange(1, len(rewards) + 1), np.cumsum(best - rewards), label=name,
                    lw=2.0 if name == "rl2" else 1.0)
    ax.set_xlabel("step of the trial")
    ax.set_ylabel("cumulative regret")
    ax.set_title(title, fontsize=9)
    ax.grid(alpha=0.3)
    ax.legend(fontsize=8)
    fig.tight_layout()
    return fig


def mdps(args: argparse.Namespace) -> None:
    env = make("metarl/TabularMDP")
    n, length = args.episodes, env.episode_length
    spec = agent_spec("metarl/TabularMDP", {}, n * length, args.steps, n, args.lr)
    rl2, _, seconds = train_and_play(spec, args.trials, args.seed)
    tasks = jax.vmap(env.sample_params)(jax.random.split(jax.random.PRNGKey(7), args.trials))
    rows = {"rl2": rl2}
    for name, policy in mdp_baselines.BASELINES.items():
        rows[name] = np.asarray(policy(jax.random.PRNGKey(8), tasks, n, length)).sum(1)
    report(f"tabular MDPs, n={n} episodes of {length} steps: total reward per trial, "
           f"{args.trials} fresh trials (RL²: {args.steps:,} steps of training in "
           f"{seconds:.0f} s)", rows)


def throughput(args: argparse.Namespace) -> None:
    """Recurrent PPO env steps per second on the bandit task of `search/rl2_bandits.toml`
    (its [inner] settings: 32 envs, GRU of 32, 20-pull trials), 10 updates per run,
    alternating 1 and 64 vmapped seeds."""
    spec = load_spec("search/rl2_bandits.toml", ["tasks.train.0.timesteps=6400"])
    loop = spec.inner.build_task(spec.tasks.train[0])
    hp = spec.inner.hparams().as_arrays()
    runs = {1: jax.jit(loop.train), 64: jax.jit(jax.vmap(loop.train, in_axes=(0, None, None)))}
    keys = {1: jax.random.PRNGKey(0), 64: jax.random.split(jax.random.PRNGKey(0), 64)}
    for seeds, run in runs.items():  # compile outside the timing
        jax.block_until_ready(run(keys[seeds], None, hp)[0].params)
    steps = loop.config.num_updates * loop.config.batch_size
    times: dict[int, list[float]] = {1: [], 64: []}
    for _ in range(args.repeats):
        for seeds, run in runs.items():
            t0 = time.perf_counter()
            jax.block_until_ready(run(keys[seeds], None, hp)[0].params)
            times[seeds].append(time.perf_counter() - t0)
    for seeds, ts in times.items():
        print(f"  {seeds:3d} seed(s): {steps * seeds / min(ts):>12,.0f} env steps/s (best of "
              f"{args.repeats}; median {steps * seeds / np.median(ts):,.0f})")
    print(f"  64 seeds / 1 seed throughput: {min(times[1]) * 64 / min(times[64]):.1f}x")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("setting", choices=["bandits", "mdps", "throughput"])
    ap.add_argument("--arms", type=int, nargs="+", default=[5, 10])
    ap.add_argument("--trial-length", type=int, default=100)
    ap.add_argument("--episodes", type=int, default=10, help="MDP episodes per trial")
    ap.add_argument("--steps", type=int, default=5_000_000, help="RL² training env steps")
    ap.add_argument("--lr", type=float, default=1e-3)
    ap.add_argument("--trials", type=int, default=2048, help="fresh trials per algorithm")
    ap.add_argument("--repeats", type=int, default=5, help="throughput repetitions")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--figures", metavar="DIR", help="write regret curves (bandits) there")
    args = ap.parse_args()
    {"bandits": bandits, "mdps": mdps, "throughput": throughput}[args.setting](args)


if __name__ == "__main__":
    main()
