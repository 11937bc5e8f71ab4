"""The PLR level buffer against closed forms on small buffers, including the pitfalls public
implementations hit (ties, the temperature, stale scores)."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from metarl.curriculum import sampler as buf
from metarl.curriculum.sampler import SamplerParams


def _buffer(scores, last_seen=None, clock=10, filled=None):
    n = len(scores)
    state = buf.init(jnp.zeros(2), n)
    return state._replace(
        levels=jnp.arange(2 * n, dtype=jnp.float32).reshape(n, 2),
        scores=jnp.asarray(scores, jnp.float32),
        last_seen=jnp.asarray(last_seen if last_seen is not None else [0] * n, jnp.int32),
        filled=jnp.asarray(filled if filled is not None else [True] * n),
        max_return=jnp.zeros(n), clock=jnp.int32(clock))


def _p(state, temperature=1.0, rho=0.0, prioritization="rank"):
    params = SamplerParams(0.5, temperature, rho)
    return np.asarray(buf.replay_weights(state, params, prioritization))


def test_rank_prioritisation_closed_form():
    p = _p(_buffer([3.0, 1.0, 2.0]))
    h = np.array([1, 1 / 3, 1 / 2])
    np.testing.assert_allclose(p, h / h.sum(), rtol=1e-6)


def test_tied_scores_share_a_rank_and_never_divide_by_zero():
    p = _p(_buffer([2.0, 2.0, 2.0, 2.0]))
    np.testing.assert_allclose(p, 0.25, rtol=1e-6)
    p = _p(_buffer([2.0, 2.0, 1.0]))
    h = np.array([1, 1, 1 / 3])
    np.testing.assert_allclose(p, h / h.sum(), rtol=1e-6)
    assert np.isfinite(_p(_buffer([0.0, 0.0]), prioritization="power")).all()


def test_temperature_is_an_exponent_not_a_divisor():
    scores = [3.0, 1.0, 2.0]
    h = np.array([1, 1 / 3, 1 / 2])
    for beta in (0.1, 0.5, 2.0):
        expected = h ** (1 / beta) / (h ** (1 / beta)).sum()
        np.testing.assert_allclose(_p(_buffer(scores), beta), expected, rtol=1e-5)
    # power prioritisation: S ** (1 / beta), not S / beta (which would normalise away)
    s = np.array(scores)
    np.testing.assert_allclose(_p(_buffer(scores), 0.5, prioritization="power"),
                               s ** 2 / (s ** 2).sum(), rtol=1e-6)
    assert not np.allclose(_p(_buffer(scores), 0.5, prioritization="power"), s / s.sum())


def test_staleness_mixing_closed_form():
    state = _buffer([3.0, 1.0, 2.0], last_seen=[0, 5, 10], clock=10)
    h = np.array([1, 1 / 3, 1 / 2])
    stale = np.array([10, 5, 0]) / 15
    np.testing.assert_allclose(_p(state, 1.0, 0.3), 0.7 * h / h.sum() + 0.3 * stale,
                               rtol=1e-6)
    # every level just played: staleness is uniform rather than 0 / 0
    fresh = _buffer([3.0, 1.0, 2.0], last_seen=[10, 10, 10], clock=10)
    np.testing.assert_allclose(_p(fresh, 1.0, 1.0), 1 / 3, rtol=1e-6)


def test_empty_slots_are_never_replayed():
    state = _buffer([5.0, 1.0, 9.0, 2.0], filled=[True, True, False, True])
    p = _p(state, 1.0, 0.5)
    assert p[2] == 0 and abs(p.sum() - 1) < 1e-6


def test_draws_follow_the_replay_distribution():
    state = _buffer([3.0, 1.0, 2.0, 0.5], last_seen=[0, 2, 4, 9], clock=10)
    params = SamplerParams(0.5, 0.5, 0.3)
    p = np.asarray(buf.replay_weights(state, params))
    _, index = buf.sample(state, params, jax.random.key(0), 20000)
    freq = np.bincount(np.asarray(index), minlength=4) / 20000
    np.testing.assert_allclose(freq, p, atol=0.015)


def test_replay_uses_scores_written_back_after_the_last_rollout():
    state = _buffer([3.0, 1.0, 2.0])
    params = SamplerParams(0.5, 1.0, 0.0)
    state, index = buf.sample(state, params, jax.random.key(1), 3)
    assert (np.asarray(state.last_seen)[np.asarray(index)] == 10).all()
    state = buf.update(state, jnp.array([0, 1]), jnp.array([0.1, 9.0]), jnp.zeros(2))
    h = np.array([1 / 3, 1, 1 / 2])  # ranks after the update: 9.0, 2.0, 0.1
    np.testing.assert_allclose(np.asarray(buf.replay_weights(state, params)), h / h.sum(),
                               rtol=1e-6)


def test_insert_fills_then_replaces_the_lowest_and_skips_duplicates():
    state = buf.init(jnp.zeros(2), 3)
    levels = jnp.array([[1.0, 1], [2, 2], [3, 3]])
    state, index = buf.insert(state, levels, jnp.array([0.5, 0.2, 0.9]), jnp.zeros(3))
    np.testing.assert_array_equal(index, [0, 1, 2])
    assert bool(state.filled.all())
    # a duplicate updates its own slot's score, it takes no second slot
    state, index = buf.insert(state, jnp.array([[2.0, 2]]), jnp.array([0.7]), jnp.zeros(1))
    assert int(index[0]) == 1 and float(state.scores[1]) == pytest.approx(0.7)
    # full: a low scorer is not kept, a high one replaces the lowest (0.5 at slot 0)
    state, index = buf.insert(state, jnp.array([[4.0, 4], [5, 5]]), jnp.array([0.1, 0.8]),
                              jnp.zeros(2))
    np.testing.assert_array_equal(index, [-1, 0])
    np.testing.assert_array_equal(state.levels[0], [5, 5])
    np.testing.assert_allclose(state.scores, [0.8, 0.7, 0.9])


def test_statistics_and_tick():
    state = buf.tick(_buffer([1.0, 3.0], last_seen=[0, 10], clock=10))
    stats = {k: float(v) for k, v in buf.statistics(state, SamplerParams()).items()}
    assert stats["fill"] == 1 and stats["score_mean"] == pytest.approx(2.0)
    assert stats["staleness_mean"] == pytest.approx(6.0) and stats["score_max"] == 3.0
