"""Recurrent PPO learns, remembers, carries and resets its GRU state, minibatches whole
sequences, vectorises over seeds and has a meta-gradient."""

from typing import NamedTuple

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from metarl.envs import make
from metarl.envs.env import StepResult
from metarl.envs.spaces import Box, Discrete
from metarl.ppo import HParams, ppo_clip
from metarl.rppo import METRIC_NAMES, RecurrentPPO, RecurrentPPOConfig
from metarl.rppo.minibatches import Sequences, sequence_minibatches


class CueState(NamedTuple):
    time: jax.Array
    cue: jax.Array


class CueMemory:
    """A memory task: the first step shows a cue (+1 or -1), every later step shows 0, and
    the action of the last of `length` steps earns +1 if it names the cue (action 1 for +1),
    -1 if not. A memoryless policy sees the same 0 whatever the cue, so it expects 0."""

    name = "test/CueMemory"
    default_params = None

    def __init__(self, length: int = 3):
        self.length = length

    def reset(self, key, params):
        cue = jax.random.bernoulli(key).astype(jnp.int32)
        obs = (2.0 * cue - 1.0).astype(jnp.float32)[None]  # not weak-typed, as steps return
        return obs, CueState(jnp.zeros((), jnp.int32), cue)

    def step(self, key, state, action, params):
        time = state.time + 1
        done = time >= self.length
        reward = jnp.where(done, jnp.where(action == state.cue, 1.0, -1.0), 0.0)
        blank = jnp.zeros((1,), jnp.float32)
        obs0, fresh = self.reset(key, params)
        new = jax.tree.map(lambda a, b: jnp.where(done, a, b), fresh, CueState(time, state.cue))
        return StepResult(jnp.where(done, obs0, blank), new, reward, done, jnp.zeros((), bool),
                          blank)

    def observation_space(self, params):
        return Box(-1.0, 1.0, (1,))

    def action_space(self, params):
        return Discrete(2)


# 100 updates of 8 envs x 64 steps (~51k steps) with a 16-unit GRU
CARTPOLE = RecurrentPPOConfig(total_timesteps=100 * 512, num_envs=8, num_steps=64,
                              num_minibatches=2, hidden_size=16, embed_sizes=(32,),
                              head_sizes=(32,))
# episodes of 3 steps, rollouts of 12: every rollout ends exactly at an episode end
MEMORY = RecurrentPPOConfig(total_timesteps=60 * 96, num_envs=8, num_steps=12,
                            num_minibatches=2, hidden_size=8, embed_sizes=(8,), head_sizes=(8,))
FAST = HParams(lr=3e-3)
TINY = RecurrentPPOConfig(total_timesteps=2 * 2 * 6, num_envs=2, num_steps=6, update_epochs=1,
                          num_minibatches=1, hidden_size=4, embed_sizes=(4,), head_sizes=())


@pytest.fixture(scope="module")
def memory_loop():
    """RL²'s setting: the GRU state survives episode ends (the cue of a new episode must
    overwrite the old one)."""
    return RecurrentPPO(MEMORY, CueMemory(3), reset_hidden_on_done=False)


@pytest.fixture(scope="module")
def memory_runs(memory_loop):
    """Two seeds of a whole run, vmapped."""
    keys = jax.random.split(jax.random.PRNGKey(0), 2)
    return keys, jax.jit(jax.vmap(memory_loop.train, in_axes=(0, None, None)))(keys, None, FAST)


@pytest.fixture(scope="module")
def memory_update(memory_loop):
    return jax.jit(memory_loop.update), jax.jit(memory_loop.init)


@pytest.fixture(scope="module")
def cartpole_run():
    return jax.jit(RecurrentPPO(CARTPOLE, make("gymnax/CartPole-v1")).train)(
        jax.random.PRNGKey(0), None, HParams(lr=1e-3))


def test_returns_rise_on_cartpole(cartpole_run):
    state, metrics = cartpole_run
    ret = np.asarray(metrics["episode_return"])
    assert ret.shape == (CARTPOLE.num_updates,)
    assert set(METRIC_NAMES) <= set(metrics)
    assert all(np.isfinite(np.asarray(v)).all() for v in metrics.values())
    assert ret[:5].mean() < 40  # random policy: ~22
    assert ret[-10:].mean() > max(60, 2 * ret[:5].mean())
    assert state.hidden.shape == (CARTPOLE.num_envs, CARTPOLE.hidden_size)


def test_memory_task_is_solved_beyond_any_memoryless_policy(memory_runs):
    _, (_, metrics) = memory_runs
    ret = np.asarray(metrics["episode_return"])  # (seeds, updates)
    assert abs(ret[:, :2].mean()) < 0.5  # starts at chance (0)
    # a memoryless policy cannot beat 0 here; remembering the cue earns up to 1
    assert ret[:, -10:].mean() > 0.8


def test_vmapped_seeds_equal_separate_runs(memory_runs, memory_update):
    keys, (_, batched) = memory_runs
    update, init = memory_update
    state = init(keys[1], None, FAST)
    single = []
    for _ in range(MEMORY.num_updates):
        state, metrics = update(state)
        single.append(metrics)
    single = jax.tree.map(lambda *m: np.stack(m), *single)
    np.testing.assert_allclose(single["episode_return"], batched["episode_return"][1],
                               rtol=1e-4, atol=1e-4)
    np.testing.assert_allclose(single["loss"], batched["loss"][1], rtol=1e-3, atol=1e-4)
    assert not np.allclose(batched["loss"][0], batched["loss"][1])  # the seeds differ


def test_hidden_state_is_carried_across_updates_and_episodes(memory_update):
    update, init = memory_update
    state = init(jax.random.PRNGKey(3))
    assert np.all(np.asarray(state.hidden) == 0.0)
    state, _ = update(state)
    # every rollout ends with an episode (12 steps = 4 episodes of 3), but the state
    # survives it (reset_hidden_on_done=False)
    assert bool(state.done.all())
    assert np.all(np.asarray(state.hidden) != 0.0)
    # the next update starts from that state: zeroing it changes what the update computes
    carried, m_carried = update(state)
    zeroed, m_zeroed = update(state._replace(hidden=jnp.zeros_like(state.hidden)))
    assert not np.allclose(carried.hidden, zeroed.hidden)
    assert not np.allclose(m_carried["loss"], m_zeroed["loss"])


def _collect(ppo):
    """One rollout with its values from a fresh state, as `update` collects it."""

    def run(key):
        state = ppo.init(key)
        c = ppo._collect(state.params, state, *ppo.bits.draw(state.key)[:2])
        # what training computes: the network re-run over the sequences from the stored state
        _, dist, value = ppo.net.unroll(state.params, state.hidden, c.traj.obs, c.traj.reset)
        return c, ppo.net.log_prob(dist, c.traj.action), value

    return jax.jit(run)(jax.random.PRNGKey(0))


def test_hidden_state_is_zero_after_a_done_and_the_hook_decides(cartpole_run):
    c, log_prob, value = _collect(RecurrentPPO(TINY, CueMemory(3)))
    np.testing.assert_allclose(log_prob, c.traj.log_prob, atol=1e-5)  # the replay is exact
    np.testing.assert_allclose(value, c.value, atol=1e-5)
    done = np.asarray(c.done) > 0
    assert done[2].all() and done[5].all() and not done[[0, 1, 3, 4]].any()
    np.testing.assert_array_equal(np.asarray(c.traj.reset[1:]), done[:-1])
    assert np.all(np.asarray(c.traj.hidden[2]) != 0.0)  # zeroed before the next step
    assert np.all(np.asarray(c.hidden) == 0.0)  # the state carried to the next update
    cartpole, _ = cartpole_run
    hidden, done = np.asarray(cartpole.hidden), np.asarray(cartpole.done)
    assert np.all(hidden[done] == 0.0) and np.all(hidden[~done] != 0.0)

    class Memoryless(RecurrentPPO):  # what an RL² subclass does, with another rule
        def hidden_resets(self, done, env_state):
            return jnp.ones_like(done)

    c, _, _ = _collect(Memoryless(TINY, CueMemory(3)))
    assert bool(c.traj.reset[1:].all()) and bool(c.carry.reset.all())


def test_minibatches_are_whole_env_sequences():
    t, b, epochs, n_mb = 5, 8, 3, 4
    env_id = jnp.broadcast_to(jnp.arange(b, dtype=jnp.float32), (t, b))
    step = jnp.broadcast_to(jnp.arange(t, dtype=jnp.float32)[:, None], (t, b))
    data = Sequences(obs=jnp.stack([env_id, step], -1), reset=jnp.zeros((t, b), bool),
                     action=env_id.astype(jnp.int32), log_prob=env_id, value=step,
                     advantage=env_id + step, target=env_id)
    hidden = jnp.arange(b, dtype=jnp.float32)[:, None] * jnp.ones((1, 3))
    perms = jnp.stack([jax.random.permutation(k, b)
                       for k in jax.random.split(jax.random.PRNGKey(0), epochs)])
    mbs, h0 = jax.jit(sequence_minibatches, static_argnums=3)(data, hidden, perms, n_mb)
    assert mbs.obs.shape == (epochs * n_mb, t, b // n_mb, 2)
    assert h0.shape == (epochs * n_mb, b // n_mb, 3)
    obs = np.asarray(mbs.obs)
    # each column of a minibatch is one env's whole sequence, in time order
    np.testing.assert_array_equal(obs[..., 1], np.broadcast_to(np.arange(t)[None, :, None],
                                                               obs.shape[:-1]))
    assert (obs[..., 0] == obs[:, :1, :, 0]).all()
    # its initial state is that env's, and every epoch uses each env exactly once
    np.testing.assert_array_equal(np.asarray(h0[..., 0]), obs[:, 0, :, 0])
    for e in range(epochs):
        envs = obs[e * n_mb:(e + 1) * n_mb, 0, :, 0].ravel()
        assert sorted(envs.tolist()) == list(range(b))
    adv = np.asarray(mbs.advantage)  # normalised per minibatch
    np.testing.assert_allclose(adv.mean((1, 2)), 0.0, atol=1e-5)


def test_meta_objective_has_a_finite_meta_gradient():
    def scaled_clip(inputs, meta_params):
        return meta_params["scale"] * ppo_clip(inputs)

    ppo = RecurrentPPO(TINY, make("gymnax/CartPole-v1"), objective=scaled_clip)
    key = jax.random.PRNGKey(0)

    def after_one_update(meta):
        state, _ = ppo.update(ppo.init(key, meta), meta)
        return ppo.meta_objective(state)

    grad = jax.jit(jax.grad(after_one_update))({"scale": jnp.float32(1.0)})
    assert np.isfinite(grad["scale"]) and grad["scale"] != 0.0


def test_config_refuses_minibatches_that_split_sequences():
    with pytest.raises(ValueError, match="num_envs = 6 is not divisible"):
        RecurrentPPOConfig(num_envs=6, num_minibatches=4)
    with pytest.raises(ValueError, match="activation"):
        RecurrentPPOConfig(activation="gelu")
    assert MEMORY.minibatch_size == 4 * 12 and MEMORY.envs_per_minibatch == 4


def test_spec_section_builds_the_loop_of_a_task():
    from types import SimpleNamespace

    from pydantic import ValidationError

    from metarl.rppo.spec import RecurrentPPOInner

    inner = RecurrentPPOInner(num_envs=8, num_steps=32, num_minibatches=2, hidden_size=16,
                              embed_sizes=[16], lr=1e-3)
    assert inner.algorithm == "rppo" and inner.steps_per_update == 256
    assert inner.hparams().lr == 1e-3
    config = inner.config(2560)
    assert config == RecurrentPPOConfig(total_timesteps=2560, num_envs=8, num_steps=32,
                                        num_minibatches=2, hidden_size=16, embed_sizes=(16,))
    task = SimpleNamespace(env="gymnax/CartPole-v1", env_kwargs={}, env_params={},
                           timesteps=2560)
    assert inner.task_mismatch(task) is None
    assert "supervised" in inner.task_mismatch(SimpleNamespace(env="supervised/digits_mlp"))
    inner.check_task(task, "tasks.train[0]")
    loop = inner.build_task(task)
    assert isinstance(loop, RecurrentPPO) and loop.objective is ppo_clip
    assert loop.config == config and inner.optimizer_steps(task) == 10 * 4 * 2
    with pytest.raises(ValidationError, match="divisible"):
        RecurrentPPOInner(num_envs=6, num_minibatches=4)
    with pytest.raises(ValidationError):
        RecurrentPPOInner(algorithm="ppo")
