"""The gridworld-goal and Brax goal-velocity/direction task distributions (metarl/envs/goal_grid.py,
metarl/envs/brax_goal.py)."""

from types import SimpleNamespace

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from metarl import envs
from metarl.envs.goal_grid import GoalGrid, GoalParams


def philox(seed: int) -> jax.Array:
    # Threefry draws under vmap compile for seconds on this CPU; Philox in a fraction
    return jax.random.key(seed, impl="philox2x32")


def all_goals(env: GoalGrid) -> GoalParams:
    cells = np.array([c for c in range(env.num_cells) if c != env.start_cell], np.int32)
    return GoalParams(jnp.asarray(cells))


def oracle_action(env: GoalGrid, pos: jax.Array, goal: jax.Array) -> jax.Array:
    """One step of a shortest path to a known goal: rows first, then columns."""
    d_row = goal // env.size - pos // env.size
    d_col = goal % env.size - pos % env.size
    return jnp.where(d_row < 0, 0, jnp.where(d_row > 0, 2, jnp.where(d_col > 0, 1, 3)))


def test_goal_grid_is_registered():
    names = envs.list_envs()
    for name in ("metarl/GoalGrid", "metarl/BraxGoalVelocity", "metarl/BraxGoalDirection"):
        assert name in names
    env = envs.make("metarl/GoalGrid", size=4, episode_length=7, view=3)
    assert (env.size, env.episode_steps, env.view) == (4, 7, 3)
    assert env.action_space(env.default_params).n == 4


def test_goals_differ_across_tasks_and_are_never_the_start():
    env = GoalGrid(size=5)
    goals = np.asarray(jax.vmap(env.sample_params)(jax.random.split(philox(0), 2000)).goal)
    assert goals.min() >= 0 and goals.max() < env.num_cells
    assert not (goals == env.start_cell).any()
    # uniform over the 24 other cells: every one drawn, none much more than 2000/24 ~ 83
    counts = np.bincount(goals, minlength=env.num_cells)
    assert (np.delete(counts, env.start_cell) > 40).all() and counts.max() < 140


def test_reaching_the_goal_pays_one_and_returns_to_start():
    env = GoalGrid(size=5)
    goal = GoalParams(jnp.asarray(env.start_cell + 1, jnp.int32))  # right of the start
    obs, state = env.reset(philox(0), goal)
    res = env.step(philox(1), state, 1, goal)
    assert float(res.reward) == 1.0
    assert int(res.state.pos) == env.start_cell and int(res.state.time) == 1
    np.testing.assert_array_equal(res.obs, obs)  # back on the start, in the same episode
    assert not bool(res.truncated) and not bool(res.terminated)
    res = env.step(philox(2), res.state, 3, goal)  # left: away from the goal
    assert float(res.reward) == 0.0 and int(res.state.pos) == env.start_cell - 1


def test_walls_stop_the_agent():
    env = GoalGrid(size=3)
    _, state = env.reset(philox(0), env.default_params)
    for action in (0, 0, 3, 3):  # twice up, twice left: the second of each hits the wall
        state = env.step(philox(0), state, action, env.default_params).state
    assert int(state.pos) == 0


def test_episodes_truncate_at_episode_length():
    env = GoalGrid(size=5, episode_length=6)
    params = env.default_params
    _, state = env.reset(philox(0), params)

    def step(state, action):
        res = env.step(philox(0), state, action, params)
        return res.state, res

    actions = jax.random.randint(jax.random.PRNGKey(0), (18,), 0, 4)
    _, res = jax.lax.scan(step, state, actions)
    assert np.flatnonzero(np.asarray(res.truncated)).tolist() == [5, 11, 17]
    assert not np.asarray(res.terminated).any()
    # after a truncation the next episode starts afresh on the start cell
    assert (np.asarray(res.state.time)[[5, 11, 17]] == 0).all()
    assert (np.asarray(res.state.pos)[[5, 11, 17]] == env.start_cell).all()


def test_oracle_earns_the_closed_form_maximum():
    """Knowing the goal, the best an episode can earn is one lap per `d` steps, `d` the
    start-goal distance: `episode_length // d`. The shortest-path oracle earns exactly that
    on every goal of a 5x5 grid."""
    env = GoalGrid(size=5, episode_length=20)
    goals = all_goals(env)

    def episode_return(params):
        _, state = env.reset(philox(0), params)

        def step(state, _):
            res = env.step(philox(0), state, oracle_action(env, state.pos, params.goal), params)
            return res.state, res.reward

        return jax.lax.scan(step, state, None, env.episode_length)[1].sum()

    returns = np.asarray(jax.jit(jax.vmap(episode_return))(goals))
    g, s = np.asarray(goals.goal), env.start_cell
    distance = np.abs(g // 5 - s // 5) + np.abs(g % 5 - s % 5)
    np.testing.assert_array_equal(returns, env.episode_length // distance)
    assert returns.max() == 20 and returns.min() == 5  # next to the start / in a corner


def test_view_has_the_documented_shape_and_hides_the_goal():
    env = GoalGrid(size=5, view=3)
    assert env.observation_space(env.default_params).shape == (3, 3)
    goals = all_goals(env)
    obs, state = jax.vmap(env.reset, in_axes=(None, 0))(philox(0), goals)
    assert obs.shape == (goals.goal.shape[0], 3, 3)
    assert (np.asarray(obs) == 0).all()  # the centre of an open 5x5 grid sees no wall
    # walk into the top-left corner: the window shows the walls above and to the left
    params = GoalParams(jnp.asarray(24, jnp.int32))  # bottom right, off the path
    _, single = env.reset(philox(0), params)
    for action in (0, 0, 3, 3):
        res = env.step(philox(0), single, action, params)
        single = res.state
    np.testing.assert_array_equal(res.obs, [[1, 1, 1], [1, 0, 0], [1, 0, 0]])
    # the same moves under every goal they do not reach give the same observations
    far = GoalParams(jnp.asarray([14, 18, 22, 24], jnp.int32))
    _, states = jax.vmap(env.reset, in_axes=(None, 0))(philox(0), far)
    for action in (0, 0, 3, 3):
        res = jax.vmap(env.step, in_axes=(None, 0, None, 0))(philox(0), states, action, far)
        states = res.state
        assert (np.asarray(res.obs) == np.asarray(res.obs[:1])).all()
        assert not np.asarray(res.reward).any()
    # the one-hot observation is the position alone: equal under every goal
    plain = GoalGrid(size=5)
    obs, _ = jax.vmap(plain.reset, in_axes=(None, 0))(philox(0), goals)
    assert obs.shape == (24, 25) and (np.asarray(obs) == np.asarray(obs[:1])).all()


def test_per_env_goals_under_vmap():
    env = GoalGrid(size=5)
    goals = GoalParams(jnp.asarray([11, 13, 7], jnp.int32))  # left, right, above the start
    _, state = jax.vmap(env.reset, in_axes=(None, 0))(philox(0), goals)
    res = jax.jit(jax.vmap(env.step, in_axes=(None, 0, None, 0)))(philox(1), state, 1, goals)
    np.testing.assert_array_equal(res.reward, [0.0, 1.0, 0.0])


def test_trial_env_keeps_the_goal_for_a_trial_of_two_episodes():
    from metarl.rl2 import TrialEnv

    base = envs.make("metarl/GoalGrid")
    env = TrialEnv(base, 2)
    length = base.episode_steps
    assert env.trial_steps == 2 * length
    obs, state = env.reset(philox(0), env.default_params)
    assert obs.shape == env.observation_space(env.default_params).shape == (25 + 4 + 2,)

    def step(state, key):
        res = env.step(key, state, oracle_action(base, state.base.pos, state.task.goal),
                       env.default_params)
        return res.state, (res, state.task.goal)

    keys = jax.random.split(philox(1), 2 * length + 1)
    _, (res, goals) = jax.jit(lambda s: jax.lax.scan(step, s, keys))(state)
    goals, done = np.asarray(goals), np.asarray(res.terminated)
    assert (goals[: 2 * length] == goals[0]).all()  # one goal for the whole trial
    assert np.flatnonzero(done).tolist() == [2 * length - 1]  # the trial ends after 2 episodes
    episode_end = np.asarray(res.obs[:, -1])  # the flag that the previous step ended one
    assert episode_end[length - 1] == 1.0 and episode_end[: length - 1].sum() == 0
    rewards = np.asarray(res.reward)
    assert rewards[:length].sum() > 0 and rewards[length:2 * length].sum() > 0
    np.testing.assert_array_equal(np.asarray(res.obs[:, -2])[: 2 * length - 1],
                                  rewards[: 2 * length - 1])  # the previous reward


# ---- Brax: keep these tiny, every Brax compile costs seconds on this CPU


def test_velocity_reward_is_maximal_at_the_target():
    from metarl.envs.brax_goal import direction_reward, forward_velocity, velocity_reward

    velocities = jnp.linspace(-1.0, 4.0, 501)
    rewards = velocity_reward(velocities, 1.7, 0.25)
    best = int(jnp.argmax(rewards))
    assert abs(float(velocities[best]) - 1.7) < 1e-5
    assert float(rewards[best]) == pytest.approx(-0.25)
    assert float(velocity_reward(2.7, 1.7, 0.25)) == pytest.approx(-1.25)
    assert float(direction_reward(2.0, -1.0, 0.1)) == pytest.approx(-2.1)
    assert float(direction_reward(2.0, 1.0, 0.1)) == pytest.approx(1.9)
    # forward velocity is the torso's (body 0) x displacement over dt
    before = SimpleNamespace(x=SimpleNamespace(pos=jnp.array([[1.0, 5.0, 0.5], [9.0, 0, 0]])))
    after = SimpleNamespace(x=SimpleNamespace(pos=jnp.array([[1.2, 7.0, 0.4], [0.0, 0, 0]])))
    assert float(forward_velocity(before, after, 0.05)) == pytest.approx(4.0)


def test_brax_goal_rejects_bodies_without_a_forward_direction():
    from metarl.envs.brax_goal import BraxGoalVelocity

    with pytest.raises(ValueError, match="forward direction"):
        BraxGoalVelocity("reacher")
    with pytest.raises(ValueError, match="low"):
        BraxGoalVelocity(low=2.0, high=1.0)


def test_brax_velocity_reward_on_real_steps():
    """Two real halfcheetah steps (one compile; `spring` compiles fastest of the backends
    here): the reward is -|v - target| - ctrl cost with v the env's own `x_velocity`, it is
    -ctrl cost when the target is v, and the episode truncates at `max_steps_in_episode`."""
    from metarl.envs.brax_goal import BraxGoalDirection, VelocityTask

    env = envs.make("metarl/BraxGoalVelocity", backend="spring", max_steps_in_episode=2)
    assert env.episode_steps == 2
    targets = jax.vmap(env.sample_params)(jax.random.split(philox(0), 500)).target
    assert 0.0 <= float(targets.min()) and float(targets.max()) <= 3.0
    assert float(jnp.std(targets)) > 0.5  # spread over [0, 3], not a constant

    _, state = jax.jit(env.reset)(jax.random.PRNGKey(0), env.default_params)
    step = jax.jit(env.step)
    action = jnp.full((6,), 0.5)
    first = step(jax.random.PRNGKey(0), state, action, VelocityTask(jnp.float32(0.0)))
    metrics = first.state.pipeline.metrics  # the physics state before any reset
    v, ctrl = float(metrics["x_velocity"]), -float(metrics["reward_ctrl"])
    assert ctrl == pytest.approx(0.1 * 6 * 0.25)  # halfcheetah's own control cost
    assert float(first.reward) == pytest.approx(-abs(v) - ctrl, abs=1e-5)
    assert not bool(first.truncated)
    at_target = step(jax.random.PRNGKey(0), state, action, VelocityTask(jnp.float32(v)))
    assert float(at_target.reward) == pytest.approx(-ctrl, abs=1e-5)
    second = step(jax.random.PRNGKey(0), first.state, action, VelocityTask(jnp.float32(v)))
    assert bool(second.truncated) and not bool(second.terminated)
    assert int(second.state.time) == 0  # back at the start of an episode

    # the direction variant shares the step; its task and reward only
    direction = BraxGoalDirection(backend="spring")
    assert direction.episode_steps == 200
    signs = np.asarray(jax.vmap(direction.sample_params)(jax.random.split(philox(1), 200))
                       .direction)
    assert set(signs.tolist()) == {-1.0, 1.0}
    assert float(direction.task_reward(jnp.float32(2.0), jnp.float32(0.1),
                                       direction.default_params)) == pytest.approx(1.9)
