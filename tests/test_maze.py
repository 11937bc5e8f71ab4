"""metarl/Maze: dynamics and auto-reset on per-env levels, jaxued's generator and ACCEL
mutator, shortest paths, named mazes, maze text errors, the registry and pictures."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from matplotlib.figure import Figure

from metarl.envs import Box, Discrete, EnvParamError, make
from metarl.envs.env import Env, ResetAheadEnv
from metarl.envs.maze import MAX_EDITS, Maze, solved
from metarl.envs.maze_levels import (
    NAMED_MAZES,
    check_level,
    host_level,
    is_well_formed,
    level_from_name_or_text,
    level_to_text,
    make_level,
    parse_level,
    path_length_np,
)
from metarl.envs.maze_paths import distance_map, shortest_path
from metarl.envs.maze_render import level_image, render_levels
from metarl.errors import UserError

LEFT, RIGHT, FORWARD = 0, 1, 2
WHERE = "tasks.held_out[0].env_kwargs.level"

# agent at (1, 1) facing right into a wall; the goal at (3, 3)
SMALL = """
.....
.>#..
.....
...G.
.....
"""
# F (blocked), R, F -> (1, 2), L, F, F -> (3, 2), R, F bumps into the goal: 8 steps
SMALL_SOLVE = [FORWARD, RIGHT, FORWARD, LEFT, FORWARD, FORWARD, RIGHT, FORWARD]


@pytest.fixture(scope="module")
def small():
    """The 5x5 env, its batched reset and step (compiled once; single envs run as a batch)."""
    env = Maze(size=5, n_walls=5, max_steps=20, level=SMALL)
    return env, jax.jit(jax.vmap(env.reset)), jax.jit(jax.vmap(env.step))


@pytest.fixture(scope="module")
def env13():
    """The default 13x13 env, 256 generated levels and their stats, and its batched mutator."""
    env = Maze()
    levels = jax.jit(jax.vmap(env.sample_params))(jax.random.split(jax.random.key(0), 256))
    stats = jax.jit(jax.vmap(env.level_stats))
    return env, levels, stats, stats(levels), jax.jit(jax.vmap(env.mutate_params))


_well_formed = jax.jit(jax.vmap(is_well_formed))


def _all_well_formed(levels, batch_dims: int = 1) -> bool:
    flat = jax.tree.map(lambda x: x.reshape((-1,) + x.shape[batch_dims:]), levels)
    return bool(_well_formed(flat).all())


def _batch(tree):
    return jax.tree.map(lambda x: jnp.asarray(x)[None], tree)


def _first(tree):
    return jax.tree.map(lambda x: x[0], tree)


def _reset(reset, level):
    obs, state = reset(jax.random.split(jax.random.key(0), 1), _batch(level))
    return obs[0], _first(state)


def _ahead(obs, view=5):
    """The observed cell right ahead of the agent (jaxued's [side, depth] layout)."""
    return float(obs[(view // 2) * view + view - 2])


def _run(step, state, level, actions):
    results = []
    for action in actions:
        res = _first(step(jax.random.split(jax.random.key(0), 1), _batch(state),
                          jnp.array([action], jnp.int32), _batch(level)))
        state = res.state
        results.append(res)
    return results


# ---- dynamics ------------------------------------------------------------------------------

def test_walls_block_turns_turn_and_forward_moves(small):
    env, reset, step = small
    level = env.default_params
    obs, state = _reset(reset, level)
    assert obs.shape == (29,) and obs.dtype == jnp.float32
    assert _ahead(obs) == pytest.approx(0.2)  # the wall at (2, 1)
    np.testing.assert_array_equal(obs[25:], [1, 0, 0, 0])  # facing right
    blocked, turned, moved = _run(step, state, level, [FORWARD, RIGHT, FORWARD])
    assert blocked.state.agent_pos.tolist() == [1, 1]
    assert int(turned.state.agent_dir) == 1 and turned.state.agent_pos.tolist() == [1, 1]
    np.testing.assert_array_equal(turned.obs[25:], [0, 1, 0, 0])
    assert _ahead(turned.obs) == pytest.approx(0.1)
    assert moved.state.agent_pos.tolist() == [1, 2]
    assert int(_run(step, moved.state, level, [LEFT])[0].state.agent_dir) == 0
    assert not any(bool(r.done) for r in (blocked, turned, moved))


def test_goal_pays_the_time_discounted_reward_and_terminates(small):
    env, reset, step = small
    level = env.default_params
    obs0, state = _reset(reset, level)
    results = _run(step, state, level, SMALL_SOLVE)
    assert all(float(r.reward) == 0 and not bool(r.done) for r in results[:-1])
    last = results[-1]
    assert float(last.reward) == pytest.approx(1 - 0.9 * 8 / 20)
    assert bool(last.terminated) and not bool(last.truncated) and bool(solved(last.reward))
    # the agent stopped in front of the goal: the true last obs sees it right ahead
    assert _ahead(last.final_obs) == pytest.approx(0.8)
    # automatic reset: the same level's start
    np.testing.assert_array_equal(last.obs, obs0)
    assert last.state.agent_pos.tolist() == [1, 1] and int(last.state.time) == 0


def test_truncation_at_max_steps(small):
    env, reset, step = small
    level = env.default_params
    obs0, state = _reset(reset, level)
    results = _run(step, state, level, [RIGHT] * 20)
    assert not any(bool(r.done) for r in results[:-1])
    last = results[-1]
    assert bool(last.truncated) and not bool(last.terminated) and float(last.reward) == 0
    np.testing.assert_array_equal(last.obs, obs0)
    np.testing.assert_array_equal(last.final_obs[25:], [1, 0, 0, 0])  # 20 right turns
    assert int(last.state.time) == 0
    assert not bool(solved(last.reward)) and bool(solved(jnp.float32(0.1)))


def test_auto_reset_returns_to_each_envs_own_level_under_vmap(small):
    env, reset, step = small
    texts = [SMALL, "G....\n.....\n..v..\n.....\n.....", "....<\n.....\n.....\n.....\n...G."]
    levels = jax.tree.map(lambda *x: jnp.stack(x), *[parse_level(t, 5, "t") for t in texts])
    obs0, state0 = reset(jax.random.split(jax.random.key(0), 3), levels)
    state, ended = state0, np.zeros(3, bool)
    for t in range(env.max_steps):  # every env's episode ends by its time limit at the latest
        keys = jax.random.split(jax.random.key(t), 3)
        res = step(keys, state, jax.random.randint(keys[0], (3,), 0, 3), levels)
        done = np.asarray(res.done)
        for i in np.flatnonzero(done):
            assert res.state.agent_pos[i].tolist() == levels.agent_pos[i].tolist()
            assert int(res.state.agent_dir[i]) == int(levels.agent_dir[i])
            assert int(res.state.time[i]) == 0
            np.testing.assert_array_equal(res.obs[i], obs0[i])
        ended |= done
        state = res.state
    assert ended.all()
    # the carry keeps its dtypes through steps (a lax.scan requirement)
    assert jax.tree.map(lambda x: x.dtype, state) == jax.tree.map(lambda x: x.dtype, state0)


def test_spaces_and_protocols(small):
    env, _, _ = small
    level = env.default_params
    assert env.action_space(level) == Discrete(3)
    assert env.observation_space(level) == Box(0.0, 1.0, (29,))
    assert env.episode_steps == 20
    assert isinstance(env, Env) and isinstance(env, ResetAheadEnv)


# ---- levels: generator, mutator, comparisons -----------------------------------------------

def test_generator_gives_well_formed_levels(env13):
    env, levels, _, stats, _ = env13
    assert levels.wall_map.shape == (256, 13, 13) and levels.wall_map.dtype == jnp.bool_
    assert levels.agent_pos.dtype == levels.goal_pos.dtype == levels.agent_dir.dtype == jnp.int32
    assert _all_well_formed(levels)
    assert int(stats["wall_count"].max()) <= 25 and int(stats["wall_count"].min()) > 0
    assert 0 < int(stats["solvable"].sum()) <= 256
    assert check_level(env.default_params) is None


def test_host_default_level_is_fixed_and_solvable():
    for size, n_walls in ((3, 7), (5, 23), (13, 25), (13, 100)):
        level = host_level(size, n_walls)
        assert check_level(level) is None and level.wall_map.shape == (size, size)
        assert int(level.wall_map.sum()) <= n_walls
    assert level_to_text(host_level(9, 20)) == level_to_text(host_level(9, 20))
    assert level_to_text(Maze(size=9, n_walls=20).default_params) == level_to_text(
        host_level(9, 20))


def _mutate_grid(mutate, levels, counts, key):
    """Every level edited with every count: a (len(counts), n) batch of levels."""
    n = levels.wall_map.shape[0]
    tiled = jax.tree.map(lambda x: jnp.concatenate([x] * len(counts)), levels)
    edits = jnp.repeat(jnp.asarray(counts, jnp.int32), n)
    out = mutate(jax.random.split(key, n * len(counts)), tiled, edits)
    return jax.tree.map(lambda x: x.reshape((len(counts), n) + x.shape[1:]), out)


def test_mutator_keeps_levels_well_formed_and_zero_edits_is_identity(env13):
    _, levels, _, _, mutate = env13
    levels = jax.tree.map(lambda x: x[:64], levels)
    for seed in range(2):
        mutated = _mutate_grid(mutate, levels, [0, 1, 5, MAX_EDITS], jax.random.key(seed))
        assert _all_well_formed(mutated, batch_dims=2)
        zero = _first(mutated)
        assert all(bool((a == b).all()) for a, b in zip(jax.tree.leaves(zero),
                                                        jax.tree.leaves(levels), strict=True))
        changed = jnp.any(mutated.wall_map[3] != levels.wall_map, axis=(1, 2))
        assert int(changed.sum()) > 32  # 20 edits change most levels
        one = jnp.sum(mutated.wall_map[1] != levels.wall_map, axis=(1, 2))
        assert int(one.max()) <= 1  # one edit flips at most one cell


def test_mutation_chains_stay_well_formed(env13):
    _, levels, _, _, mutate = env13
    levels = jax.tree.map(lambda x: x[:256], levels)
    for step in range(10):  # 200 edits per level
        levels = mutate(jax.random.split(jax.random.key(step), 256), levels,
                        jnp.full(256, MAX_EDITS, jnp.int32))
        assert _all_well_formed(levels)
    assert all(check_level(jax.tree.map(lambda x, i=i: x[i], levels)) in
               (None, "the goal cannot be reached from the agent's cell") for i in range(16))


def test_levels_select_and_compare_as_plain_pytrees(env13):
    _, levels, _, _, _ = env13
    a = jax.tree.map(lambda x: x[:4], levels)
    b = jax.tree.map(lambda x: x[4:8], levels)
    pick = jnp.array([True, False, True, False])
    mixed = jax.tree.map(lambda x, y: jnp.where(pick.reshape((-1,) + (1,) * (x.ndim - 1)),
                                                x, y), a, b)
    np.testing.assert_array_equal(mixed.wall_map[1], b.wall_map[1])
    np.testing.assert_array_equal(mixed.goal_pos[2], a.goal_pos[2])

    def same(x, y):
        return jnp.all(jnp.array([jnp.all(p == q) for p, q in
                                  zip(jax.tree.leaves(x), jax.tree.leaves(y), strict=True)]))
    equal = jax.vmap(same)(mixed, a)
    assert equal.tolist() == [True, False, True, False]


def test_is_well_formed_and_check_level_reject_bad_levels():
    walls = np.zeros((5, 5), bool)
    walls[0, 0] = True
    good = make_level(walls, (4, 4), (1, 1), 0)
    assert bool(is_well_formed(good)) and check_level(good) is None
    bad = {
        "inside a wall": good.replace(goal_pos=jnp.array([0, 0], jnp.int32)),
        "outside the grid": good.replace(agent_pos=jnp.array([5, 1], jnp.int32)),
        "starts on the goal": good.replace(agent_pos=jnp.array([4, 4], jnp.int32)),
        "agent_dir must be 0..3": good.replace(agent_dir=jnp.int32(4)),
    }
    for why, level in bad.items():
        assert not bool(is_well_formed(level)), why
        assert why in check_level(level)
    walled = good.replace(wall_map=jnp.asarray(walls).at[3, :].set(True))
    assert bool(is_well_formed(walled))
    assert check_level(walled) == "the goal cannot be reached from the agent's cell"


# ---- shortest paths --------------------------------------------------------------------------

def test_shortest_path_hand_computed():
    walls = np.array([[0, 0, 0, 0],
                      [1, 1, 1, 0],
                      [0, 0, 0, 0],
                      [0, 1, 1, 1]], bool)
    path = jax.jit(shortest_path)
    assert int(path(walls, jnp.array([0, 0]), jnp.array([0, 2]))) == 8  # around the wall
    assert int(path(walls, jnp.array([0, 0]), jnp.array([0, 3]))) == 9
    assert int(path(walls, jnp.array([2, 2]), jnp.array([2, 2]))) == 0
    assert int(path(walls, jnp.array([0, 0]), jnp.array([1, 1]))) == -1  # a wall
    closed = walls.copy()
    closed[1, 3] = True
    assert int(path(closed, jnp.array([0, 0]), jnp.array([0, 2]))) == -1
    dist = np.asarray(distance_map(jnp.asarray(walls), jnp.array([3, 0])))
    np.testing.assert_array_equal(dist, [[3, 2, 1, 0], [-1, -1, -1, 1],
                                         [5, 4, 3, 2], [6, -1, -1, -1]])


def test_jax_and_host_paths_agree(env13):
    _, levels, _, stats, _ = env13
    jax_paths = stats["shortest_path"]
    for i in range(256):
        host = path_length_np(np.asarray(levels.wall_map[i]), tuple(levels.agent_pos[i].tolist()),
                              tuple(levels.goal_pos[i].tolist()))
        assert int(jax_paths[i]) == host


# ---- named mazes and text --------------------------------------------------------------------

KNOWN_PATHS = {"SixteenRooms": 20, "TwoRooms9": 12, "Spiral9": 24}


def test_named_mazes_parse_and_are_solvable(env13):
    _, _, stats, _, _ = env13
    names = list(NAMED_MAZES)
    assert len(names) == 14 and sum(n.endswith("9") for n in names) == 6
    levels = [level_from_name_or_text(name, 13, WHERE) for name in names]
    batch = jax.tree.map(lambda *x: jnp.stack(x), *levels)
    s = stats(batch)
    assert bool(s["solvable"].all())
    paths = dict(zip(names, s["shortest_path"].tolist(), strict=True))
    for name, length in KNOWN_PATHS.items():
        assert paths[name] == length
    assert all(paths[n] >= 8 for n in names)
    for name, level in zip(names, levels, strict=True):
        assert check_level(level) is None
        if name.endswith("9"):  # 9x9, padded with walls to the 13x13 grid
            assert bool(level.wall_map[9:].all() and level.wall_map[:, 9:].all())


def test_named_mazes_match_jaxueds_own_parser():
    from jaxued.environments.maze import Level

    for name in ("SixteenRooms", "Labyrinth", "StandardMaze3"):
        ours = level_from_name_or_text(name, 13, WHERE)
        theirs = Level.from_str(NAMED_MAZES[name])
        np.testing.assert_array_equal(ours.wall_map, theirs.wall_map)
        np.testing.assert_array_equal(ours.agent_pos, theirs.agent_pos)
        np.testing.assert_array_equal(ours.goal_pos, theirs.goal_pos)
        assert int(ours.agent_dir) == int(theirs.agent_dir)


def test_text_round_trips_and_small_levels_are_padded():
    level = parse_level("  \n  >.#\n  .#G\n  ...\n", 5, WHERE)  # indented, as in TOML
    assert level_to_text(level).splitlines()[:3] == [">.###", ".#G##", "...##"]
    assert level_to_text(level).splitlines()[3:] == ["#####"] * 2
    again = parse_level(level_to_text(level), 5, WHERE)
    assert all(bool((a == b).all()) for a, b in zip(jax.tree.leaves(level),
                                                    jax.tree.leaves(again), strict=True))
    assert level.agent_pos.tolist() == [0, 0] and level.goal_pos.tolist() == [2, 1]


@pytest.mark.parametrize("value,message", [
    ("SixteenRoom", "unknown named maze 'SixteenRoom'. Did you mean SixteenRooms"),
    ("Nope", "Allowed: maze text"),
    (">.x\n..G", "row 1 has the character(s) 'x'; allowed: '#' wall"),
    (">..\n.G", "rows have different lengths (3, 2)"),
    (">..\n...", "exactly one goal 'G', found 0"),
    (">.G\n..G", "exactly one goal 'G', found 2"),
    ("...\n..G", "exactly one agent"),
    (">.<\n..G", "exactly one agent ('>', 'v', '<' or '^': the agent facing right, down, left, "
                 "up), found 2"),
    (">#.\n##G", "the goal cannot be reached from the agent's cell"),
    ("\n \n", "the maze text is empty"),
    ("......\n>....G", "the maze is 6 wide and 2 high, larger than the env's size 5"),
])
def test_bad_maze_text_is_one_clear_message(value, message):
    with pytest.raises(UserError) as err:
        level_from_name_or_text(value, 5, WHERE)
    text = str(err.value)
    assert text.startswith(WHERE + ": ") and message in text and "\n" not in text
    if "unknown" in message:
        assert "Labyrinth9" in text  # the list of names


# ---- constructor, registry, pictures --------------------------------------------------------

@pytest.mark.parametrize("kwargs,message", [
    ({"size": 2}, "env_kwargs.size must be an integer at least 3, got 2"),
    ({"view": 4}, "env_kwargs.view must be an odd integer at least 3, got 4"),
    ({"view": 1}, "env_kwargs.view must be an odd integer"),
    ({"size": 5, "n_walls": 24}, "env_kwargs.n_walls must be an integer in [0, 23] (a 5x5 "
                                 "grid keeps 2 cells free"),
    ({"max_steps": 0}, "env_kwargs.max_steps must be an integer at least 1, got 0"),
    ({"size": 9, "level": "SixteenRooms"}, "metarl/Maze env_kwargs.level: the maze is 13 wide"),
    ({"level": "Sixteen"}, "metarl/Maze env_kwargs.level: unknown named maze 'Sixteen'"),
])
def test_constructor_checks_its_kwargs(kwargs, message):
    with pytest.raises(EnvParamError) as err:
        make("metarl/Maze", **kwargs)
    assert message in str(err.value) and isinstance(err.value, UserError)


def test_registry_builds_the_maze_with_a_named_level():
    env = make("metarl/Maze", level="SixteenRooms", max_steps=100)
    assert env.name == "metarl/Maze" and env.episode_steps == 100
    level = env.default_params
    assert level.agent_pos.tolist() == [1, 1] and level.goal_pos.tolist() == [11, 11]
    small = make("metarl/Maze", size=9, n_walls=10, level="Spiral9")
    assert small.default_params.wall_map.shape == (9, 9)
    assert "size=9" in repr(small)


def test_curriculum_hooks_on_the_env():
    """What a curriculum loop reads off the env: solves, named levels, pictures."""
    env = Maze(size=9, n_walls=10)
    assert env.solved(jnp.array([0.0, 0.55])).tolist() == [False, True]
    level = env.named_level("Spiral9", "tasks.train[0].eval_levels[0]")
    assert level.wall_map.shape == (9, 9)
    with pytest.raises(UserError, match=r"^tasks.train\[0\].eval_levels\[1\]: unknown named"):
        env.named_level("Spiral", "tasks.train[0].eval_levels[1]")
    batch = jax.tree.map(lambda *x: jnp.stack(x), level, level)
    assert len(env.render_levels(batch, ["a", "b"]).axes) == 2


def test_pictures():
    levels = [level_from_name_or_text(n, 13, WHERE) for n in ("SixteenRooms", "Spiral9")]
    image = level_image(levels[0], tile=8)
    assert image.shape == (104, 104, 3) and image.dtype == np.uint8
    agent = image[8:16, 8:16].reshape(-1, 3)  # the agent's cell (1, 1)
    assert (agent == [210, 40, 40]).all(axis=1).any()
    goal = image[11 * 8 + 4, 11 * 8 + 4]
    assert goal.tolist() == [60, 175, 75]
    assert image[0, 3 * 8 + 4].tolist() == [45, 45, 60]  # the wall at (3, 0)
    batch = jax.tree.map(lambda *x: jnp.stack(x), *levels)
    fig = render_levels(batch, titles=["a", "b"], columns=4)
    assert isinstance(fig, Figure) and len(fig.axes) == 2
    assert [ax.get_title() for ax in fig.axes] == ["a", "b"]
    assert len(render_levels(levels[1]).axes) == 1
    with pytest.raises(ValueError, match="1 titles for 2 levels"):
        render_levels(levels, titles=["a"])
