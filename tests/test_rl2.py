"""RL²: trials of sampled tasks (the trial env), and the recurrent agent trained over them."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from metarl.envs import make
from metarl.rl2 import TrialEnv


def _run(env: TrialEnv, steps: int, seed: int = 1):
    obs, state = env.reset(jax.random.PRNGKey(seed), env.default_params)
    step = jax.jit(env.step)

    def body(carry, key):
        state = carry
        out = step(key, state, jnp.asarray(0), env.default_params)
        return out.state, (out.obs, out.reward, out.terminated, out.truncated,
                           out.state.episode, out.state.task)

    keys = jax.random.split(jax.random.PRNGKey(seed + 1), steps)
    return obs, jax.lax.scan(body, state, keys)[1]


def test_a_trial_is_n_episodes_of_one_task_then_a_new_task():
    env = TrialEnv(make("metarl/TabularMDP", episode_length=10), episodes_per_trial=3)
    _, (obs, reward, terminated, truncated, episode, task) = _run(env, 90)
    ends = np.flatnonzero(np.asarray(terminated))
    np.testing.assert_array_equal(ends, [29, 59, 89])  # 3 episodes x 10 steps per trial
    assert not np.asarray(truncated).any()  # nothing is bootstrapped across tasks
    means = np.asarray(task.reward_means)
    assert np.all(means[:29] == means[0]) and not np.allclose(means[30], means[0])
    # the episode-end flag in the observation marks the episode boundaries inside a trial
    flags = np.flatnonzero(np.asarray(obs)[:, -1])
    np.testing.assert_array_equal(flags, [9, 19, 39, 49, 69, 79])


def test_the_agent_sees_its_previous_action_and_reward():
    env = TrialEnv(make("metarl/BernoulliBandit", num_arms=3, trial_length=5), 1)
    first, (obs, reward, *_rest) = _run(env, 4)
    assert first.shape == (1 + 3 + 2,) and not np.asarray(first).any()
    np.testing.assert_array_equal(np.asarray(obs)[:, 1:4], np.tile([1.0, 0.0, 0.0], (4, 1)))
    np.testing.assert_array_equal(np.asarray(obs)[:, 4], np.asarray(reward))


def test_an_env_without_a_task_distribution_is_refused():
    with pytest.raises(ValueError, match="no task distribution"):
        TrialEnv(make("gymnax/CartPole-v1"), 2)


# --- the RL² agent: recurrent PPO over trials --------------------------------------------

N = 10  # pulls per trial of a 2-armed bandit: random earns N/2 on average, the oracle 2N/3


@pytest.fixture(scope="module")
def bandit_agent():
    """RL² trained on 2-armed Bernoulli bandits (CI-sized: 160k pulls), and its loop."""
    from metarl.spec import load_spec_data

    spec = load_spec_data({
        "name": "rl2", "kind": "hparams",
        "tasks": {"train": [{"env": "metarl/BernoulliBandit", "timesteps": 160_000,
                             "env_kwargs": {"num_arms": 2, "trial_length": N}}]},
        "inner": {"algorithm": "rl2", "num_envs": 32, "num_steps": 2 * N,
                  "num_minibatches": 4, "hidden_size": 32, "embed_sizes": [32],
                  "head_sizes": [32], "lr": 3e-3, "gamma": 1.0},
        "search_space": {"lr": {"low": 1e-4, "high": 1e-2}}}, "rl2")
    loop = spec.inner.build_task(spec.tasks.train[0])
    state, metrics = jax.jit(loop.train)(jax.random.PRNGKey(0), None,
                                         spec.inner.hparams().as_arrays())
    return loop, state, np.asarray(metrics["episode_return"])


def test_rl2_beats_random_on_two_armed_bandits(bandit_agent):
    loop, state, curve = bandit_agent
    evaluate = jax.jit(lambda s: loop.evaluate(s, 50))
    _, out = evaluate(state)  # fresh tasks, no learning: 50 rollouts x 32 envs x 2 trials
    trials = np.asarray(out["episode_return"])
    mean, se = trials.mean(), trials.std() / np.sqrt(trials.size)
    assert mean - 3 * se > N / 2 + 0.3, (mean, se)  # random: 5.0, oracle: 6.67
    assert mean < 2 * N / 3 + 3 * se
    assert curve[-10:].mean() > curve[:5].mean() + 0.3  # it learned


def test_hidden_state_persists_within_a_trial_and_resets_between(bandit_agent):
    loop, state, _ = bandit_agent
    # training ended at a trial boundary (rollouts hold whole trials): the carried state is
    # already zeroed for the next trial
    assert not np.asarray(state.hidden).any() and np.asarray(state.done).all()
    step_keys, noise_bits, _ = loop.bits.draw(state.key)
    out = jax.jit(loop._collect)(state.params, state, step_keys, noise_bits)
    resets = np.asarray(out.traj.reset)  # (steps, envs): the state was zeroed before the step
    hidden = np.asarray(out.traj.hidden)
    assert resets[N].all()  # the second trial of the rollout starts from zeros ...
    assert not resets[:N].any() and not resets[N + 1:].any()  # ... nothing else resets
    assert np.abs(hidden[N - 1]).sum(-1).min() > 0  # memory carried to the trial's last pull


def test_evaluate_sets_the_classic_algorithms_beside_an_rl2_agent():
    """`metarl evaluate` of a search whose inner loop is RL² shows the task distribution's
    classic algorithms in the agent's units (total reward per trial); PPO has none."""
    from metarl.programs.evaluation import reference_results
    from metarl.spec import load_spec_data

    task = {"env": "metarl/BernoulliBandit", "timesteps": 4000,
            "env_kwargs": {"num_arms": 2, "trial_length": N}, "return_range": [5.0, 6.667]}
    spec = load_spec_data({"name": "r", "kind": "hparams", "tasks": {"train": [task]},
                           "inner": {"algorithm": "rl2", "num_steps": N},
                           "search_space": {"lr": {"low": 1e-4, "high": 1e-2}}}, "r")
    refs = reference_results(spec.inner, list(spec.tasks.train), seeds=3)
    assert list(refs) == ["random", "epsilon_greedy", "ucb1", "thompson", "gittins", "oracle"]
    means = {name: r.final["BernoulliBandit"].mean() for name, r in refs.items()}
    assert means["random"] < means["thompson"] < means["oracle"]
    assert abs(means["oracle"] - 2 * N / 3) < 0.5 and abs(means["random"] - N / 2) < 0.5
    from metarl.programs.evaluation import regret_figure

    regret = regret_figure(refs, "regret")  # logged by `metarl evaluate` beside the curves
    assert regret is not None and "oracle" in regret.axes[0].get_ylabel()
    ppo = load_spec_data({"name": "p", "kind": "hparams", "tasks": {"train": [
        {"env": "gymnax/CartPole-v1", "timesteps": 1024}]},
        "search_space": {"lr": {"low": 1e-4, "high": 1e-2}}}, "p")
    assert reference_results(ppo.inner, list(ppo.tasks.train), seeds=3) == {}
    assert regret_figure({}, "no oracle") is None


@pytest.mark.parametrize(("task", "message"), [
    ('env = "gymnax/CartPole-v1"', "has no task distribution to draw trials from"),
    ('env = "metarl/BernoulliBandit"\nenv_kwargs = { num_arms = 2, trial_length = 7 }',
     "inner.num_steps = 20 is not a multiple of the trial's 7 steps"),
])
def test_rl2_specs_that_do_not_fit_are_refused_with_the_field_named(task, message, tmp_path):
    """Through the CLI's `--dry-run`: one line naming the field, exit 2, nothing computed."""
    from click.testing import CliRunner

    from metarl.cli import main

    path = tmp_path / "rl2.toml"
    path.write_text(f"""name = "r"
kind = "hparams"
[inner]
algorithm = "rl2"
num_steps = 20
[search_space]
lr = {{ low = 1e-4, high = 1e-2 }}
[[tasks.train]]
timesteps = 4000
{task}
""")
    result = CliRunner().invoke(main, ["search", "run", str(path), "--dry-run"])
    assert result.exit_code == 2, result.output
    assert "Traceback" not in result.output and len(result.output.strip().splitlines()) == 1
    assert "tasks.train[0]" in result.output and message in result.output, result.output


def test_the_hidden_state_is_kept_across_the_episodes_of_a_trial():
    """Two MDP episodes of 10 steps per trial: the state restarts every 20 steps, never at the
    episode boundary inside a trial."""
    from metarl.spec import load_spec_data

    spec = load_spec_data({
        "name": "m", "kind": "hparams",
        "tasks": {"train": [{"env": "metarl/TabularMDP", "timesteps": 1280}]},
        "inner": {"algorithm": "rl2", "episodes_per_trial": 2, "num_envs": 4, "num_steps": 40,
                  "num_minibatches": 2, "hidden_size": 8, "embed_sizes": [8],
                  "head_sizes": [8]},
        "search_space": {"lr": {"low": 1e-4, "high": 1e-2}}}, "m")
    loop = spec.inner.build_task(spec.tasks.train[0])
    state = loop.init(jax.random.PRNGKey(0))
    step_keys, noise_bits, _ = loop.bits.draw(state.key)
    out = jax.jit(loop._collect)(state.params, state, step_keys, noise_bits)
    resets = np.asarray(out.traj.reset).all(1)
    np.testing.assert_array_equal(np.flatnonzero(resets), [20])  # step 0 starts from zeros
    episode_end = np.asarray(out.traj.obs)[:, :, -1].all(1)  # the flag after a step ends one
    np.testing.assert_array_equal(np.flatnonzero(episode_end), [10, 30])
