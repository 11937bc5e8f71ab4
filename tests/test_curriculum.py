"""The curriculum inner loop (`inner.algorithm = "plr"`): robust PLR learns only from
replays, the buffer fills and is replayed from, replayed levels stay put through automatic
resets, ACCEL's edits keep maze levels valid, and a tiny maze run learns."""

import jax
import numpy as np
import pytest

from metarl.curriculum.spec import PLRInner
from metarl.spec.schema import Task

SMALL = dict(num_envs=8, num_steps=16, num_minibatches=2, update_epochs=1, hidden_size=16,
             embed_sizes=[16], head_sizes=[16], capacity=16, min_fill=0.25, replay_prob=0.6)


@pytest.fixture(scope="module")
def cartpole_robust():
    """Robust PLR on CartPole levels drawn from a pole-length range, stepped update by
    update: `(loop, states, metrics)` over 12 updates."""
    task = Task(env="gymnax/CartPole-v1", timesteps=8 * 16 * 12,
                env_params={"length": {"low": 0.2, "high": 1.5}})
    loop = PLRInner(method="robust_plr", **SMALL).build_task(task)
    update = jax.jit(loop.update)
    state = loop.init(jax.random.key(0))
    states, metrics = [state], []
    for _ in range(12):
        state, m = update(state)
        states.append(state)
        metrics.append(jax.tree.map(np.asarray, m))
    return loop, states, metrics


def _changed(a, b) -> bool:
    return any(not np.array_equal(x, y) for x, y in zip(jax.tree.leaves(a), jax.tree.leaves(b),
                                                        strict=True))


def test_robust_plr_learns_from_replays_only(cartpole_robust):
    _, states, metrics = cartpole_robust
    replayed = [bool(m["replayed"]) for m in metrics]
    assert any(replayed) and not all(replayed)
    for before, after, m, r in zip(states, states[1:], metrics, replayed, strict=False):
        assert _changed(before.agent.params, after.agent.params) == r
        assert float(m["learned"]) == float(r)
        assert int(after.agent.update) == int(before.agent.update) + r
        assert int(after.update) == int(before.update) + 1


def test_buffer_fills_then_replays(cartpole_robust):
    loop, states, metrics = cartpole_robust
    fill = [float(s.sampler.filled.mean()) for s in states]
    assert fill[0] == 0 and fill[1] == 0.5 and fill[-1] == 1.0
    # no replay before min_fill; the sampler's clock counts updates
    assert not metrics[0]["replayed"]
    assert int(states[-1].sampler.clock) == 12
    lengths = np.asarray(states[-1].sampler.levels.length)
    assert ((lengths >= 0.2) & (lengths <= 1.5)).all() and len(np.unique(lengths)) == 16


def test_every_env_plays_its_level_after_a_replay(cartpole_robust):
    _, states, metrics = cartpole_robust
    i = next(i for i, m in enumerate(metrics) if m["replayed"])
    after = states[i + 1]
    played = np.asarray(after.agent.env_params.length)
    # the rollout had many CartPole episodes end; every env kept a buffer level
    assert np.isin(played, np.asarray(after.sampler.levels.length)).all()


BASE = """name = "c"
kind = "curriculum"
[inner]
algorithm = "plr"
num_envs = 8
num_minibatches = 2
[[tasks.train]]
timesteps = 4096
"""


@pytest.mark.parametrize(("change", "message"), [
    ('env = "gymnax/CartPole-v1"', "tasks.train[0]: env 'gymnax/CartPole-v1' has no levels "
     "for a curriculum to choose"),
    ('env = "gymnax/CartPole-v1"\nenv_params = { length = { low = 0.2, high = 1.5 } }\n'
     '[outer]\nalgorithm = "meta_gradient"', "kind 'curriculum' has no differentiable fitness"),
    ('env = "metarl/Maze"\neval_levels = ["NoSuchMaze"]', "tasks.train[0].eval_levels[0]"),
    ('env = "metarl/Maze"\nenv_kwargs = { level = """\n>#G\n.#.\n..."""}\n[inner]\nmethod = "dr"',
     "inner.method = 'dr' has no curriculum to search"),
    ('env = "metarl/Maze"\nenv_kwargs = { size = 5, n_walls = 3, level = """\n>#G\n.#.\n.#."""}',
     "tasks.train[0]: metarl/Maze env_kwargs.level"),
])
def test_curriculum_specs_that_do_not_fit_get_one_line(change, message, tmp_path):
    """Through `--dry-run`: one line naming the field, exit 2, nothing computed."""
    from click.testing import CliRunner

    from metarl.cli import main

    text = BASE + change + "\n"
    if "[inner]\nmethod" in change:  # a second [inner] table is not TOML: merge it
        text = text.replace('algorithm = "plr"', 'algorithm = "plr"\nmethod = "dr"')
        text = text.replace('\n[inner]\nmethod = "dr"', "")
    path = tmp_path / "c.toml"
    path.write_text(text)
    result = CliRunner().invoke(main, ["search", "run", str(path), "--dry-run"])
    assert result.exit_code == 2, result.output
    assert "Traceback" not in result.output and len(result.output.strip().splitlines()) == 1
    assert message in result.output, result.output


def test_eval_levels_outside_a_curriculum_are_refused(tmp_path):
    from click.testing import CliRunner

    from metarl.cli import main

    path = tmp_path / "h.toml"
    path.write_text("""name = "h"
kind = "hparams"
[search_space]
lr = { low = 1e-4, high = 1e-2 }
[[tasks.train]]
env = "gymnax/CartPole-v1"
timesteps = 4096
eval_levels = ["SixteenRooms"]
""")
    result = CliRunner().invoke(main, ["search", "run", str(path), "--dry-run"])
    assert result.exit_code == 2 and "only a curriculum inner loop scores on" in result.output


@pytest.fixture(scope="module")
def maze_accel():
    """ACCEL on tiny generated mazes, 4 seeds, with learning curves on a 3x3 eval level."""
    from metarl.envs.maze_levels import is_well_formed

    task = Task(env="metarl/Maze", timesteps=16 * 16 * 120, eval_levels=[">.#\n..#\n..G"],
                env_kwargs={"size": 6, "n_walls": 4, "max_steps": 24})
    loop = PLRInner(method="accel", num_envs=16, num_steps=16, num_minibatches=2,
                    update_epochs=2, hidden_size=32, embed_sizes=[32], head_sizes=[32],
                    capacity=32, min_fill=0.25, replay_prob=0.6, lr=1e-3,
                    eval_every=30).build_task(task)
    states, metrics = jax.jit(jax.vmap(loop.train))(jax.random.split(jax.random.key(0), 4))
    return states, jax.tree.map(np.asarray, metrics), is_well_formed


def test_a_tiny_accel_run_learns_and_fills_its_buffer(maze_accel):
    states, metrics, _ = maze_accel
    ret, score = metrics["episode_return"], metrics["eval_score"]
    assert ret[:, -30:].mean() > ret[:, :30].mean() + 0.05  # 0.75 -> 0.83 when written
    # four evaluations, each held over the 30 updates before it; solve rate 0.09 -> 0.3
    assert (score[:, :30] == score[:, :1]).all()
    assert score[:, -1].mean() > score[:, 0].mean() + 0.1
    assert float(states.sampler.filled.mean()) == 1.0
    assert 0.3 < metrics["replayed"].mean() < 0.9
    # ACCEL edits in the update after a replay, and learns from replays only
    replayed, edited = metrics["replayed"] > 0, metrics["edited"] > 0
    assert edited.any() and not (edited & replayed).any()
    assert (replayed[:, :-1] | ~edited[:, 1:]).all()
    np.testing.assert_array_equal(metrics["learned"] > 0, replayed)


def test_accel_edits_keep_levels_valid(maze_accel):
    states, _, is_well_formed = maze_accel
    levels = jax.tree.map(lambda x: x.reshape(-1, *x.shape[2:]), states.sampler.levels)
    assert bool(jax.vmap(is_well_formed)(levels).all())
    # the generator draws at most 4 walls: more came from edits
    assert np.asarray(levels.wall_map).sum((1, 2)).max() > 4
