"""A level buffer for Prioritized Level Replay, as a state pytree and pure functions (in the
style of optax and evosax: the sampler holds no data, every function returns a new state).

Prioritized Level Replay (Jiang et al. 2021, "Prioritized Level Replay") keeps the levels
with the highest learning-potential scores and replays them with probability

    P(i) = (1 - rho) * P_S(i) + rho * P_C(i)

where `P_S` prioritises by score (rank: h_i = 1 / rank_i, or power: h_i = S_i) sharpened by a
temperature beta as `h_i ** (1 / beta)`, and `P_C(i) = (c - C_i) / sum_j (c - C_j)` favours
levels not seen for a while (c: the sampler's clock, C_i: when level i was last played).

Choices that public implementations got wrong, each tested (tests/test_curriculum_sampler.py):
* ranks of tied scores are shared (1 + the number of strictly higher scores), so a rank is
  never 0 and `1 / rank` never divides by zero;
* the temperature is an exponent (`h ** (1 / beta)`), not a divisor of the scores;
* the replay distribution is computed from the scores as they stand when sampling: scores are
  written back (`update`) after every rollout, and weights are never cached in the state.

Every hyperparameter is a traced value (`SamplerParams`), so an outer loop can search them.
"""

from __future__ import annotations

from typing import Any, NamedTuple

import jax
import jax.numpy as jnp

PyTree = Any


class SamplerParams(NamedTuple):
    """The traced settings of the replay distribution."""

    replay_prob: jax.Array | float = 0.5  # chance an update replays buffer levels
    temperature: jax.Array | float = 0.3  # beta: lower is greedier
    staleness_coef: jax.Array | float = 0.3  # rho: weight of the staleness distribution


class SamplerState(NamedTuple):
    levels: PyTree  # leaves with a leading (capacity,) axis
    scores: jax.Array  # (capacity,) float32
    last_seen: jax.Array  # (capacity,) int32: the clock when the level was last played
    filled: jax.Array  # (capacity,) bool
    max_return: jax.Array  # (capacity,) float32: the best episode return seen on the level
    clock: jax.Array  # () int32: updates so far


def init(template: PyTree, capacity: int) -> SamplerState:
    """An empty buffer of `capacity` levels shaped like `template` (one level)."""
    levels = jax.tree.map(lambda x: jnp.zeros((capacity, *jnp.shape(x)), jnp.asarray(x).dtype),
                          template)
    return SamplerState(levels, jnp.zeros(capacity, jnp.float32),
                        jnp.zeros(capacity, jnp.int32), jnp.zeros(capacity, bool),
                        jnp.full(capacity, -jnp.inf, jnp.float32), jnp.zeros((), jnp.int32))


def fill_fraction(state: SamplerState) -> jax.Array:
    return state.filled.mean()


def _normalised(weights: jax.Array, mask: jax.Array) -> jax.Array:
    """`weights` over `mask` summing to 1; uniform over `mask` where they sum to 0."""
    weights = jnp.where(mask, weights, 0.0)
    total = weights.sum()
    uniform = mask / jnp.maximum(mask.sum(), 1)
    return jnp.where(total > 0, weights / jnp.where(total > 0, total, 1.0), uniform)


def shared_ranks(scores: jax.Array, mask: jax.Array) -> jax.Array:
    """1 + how many filled levels score strictly higher: tied scores share a rank, and no
    rank is 0."""
    valid = jnp.where(mask, scores, -jnp.inf)
    higher = (valid[None, :] > valid[:, None]) & mask[None, :]
    return 1 + higher.sum(1)


def score_weights(state: SamplerState, temperature: jax.Array | float,
                  prioritization: str = "rank") -> jax.Array:
    """P_S: `h ** (1 / temperature)` over filled levels, h = 1 / rank or the score itself."""
    if prioritization == "rank":
        h = 1.0 / shared_ranks(state.scores, state.filled)
    elif prioritization == "power":
        h = jnp.maximum(state.scores, 0.0)
    else:
        raise ValueError(f"unknown prioritization {prioritization!r}; allowed: rank, power")
    return _normalised(h ** (1.0 / temperature), state.filled)


def staleness_weights(state: SamplerState) -> jax.Array:
    """P_C: proportional to the updates since each filled level was last played."""
    return _normalised((state.clock - state.last_seen).astype(jnp.float32), state.filled)


def replay_weights(state: SamplerState, params: SamplerParams,
                   prioritization: str = "rank") -> jax.Array:
    """The replay distribution `(1 - rho) P_S + rho P_C` over the buffer (0 where empty)."""
    rho = params.staleness_coef
    return ((1 - rho) * score_weights(state, params.temperature, prioritization)
            + rho * staleness_weights(state))


def sample(state: SamplerState, params: SamplerParams, key: jax.Array, num: int,
           prioritization: str = "rank") -> tuple[SamplerState, jax.Array]:
    """`num` buffer indices drawn from the replay distribution (with replacement); they count
    as played now (their staleness restarts)."""
    p = replay_weights(state, params, prioritization)
    index = jax.random.choice(key, p.shape[0], (num,), p=p)
    return state._replace(last_seen=state.last_seen.at[index].set(state.clock)), index


def update(state: SamplerState, index: jax.Array, scores: jax.Array,
           max_return: jax.Array) -> SamplerState:
    """Write the scores of replayed levels back (the next draw must see them). A level
    replayed twice in one batch keeps the last of its scores."""
    best = jnp.maximum(state.max_return.at[index].get(), max_return)
    return state._replace(scores=state.scores.at[index].set(scores),
                          max_return=state.max_return.at[index].set(best))


def find(state: SamplerState, level: PyTree) -> jax.Array:
    """The buffer index holding `level`, or -1."""
    same = jax.tree.leaves(jax.tree.map(
        lambda buf, x: (buf == x).reshape(buf.shape[0], -1).all(1), state.levels, level))
    match = jnp.all(jnp.stack(same), 0) & state.filled
    return jnp.where(match.any(), jnp.argmax(match), -1)


def insert_one(state: SamplerState, level: PyTree, score: jax.Array,
               max_return: jax.Array) -> tuple[SamplerState, jax.Array]:
    """Add one level: a level already held only has its score updated (no duplicates); else
    it takes an empty slot or, once full, replaces the lowest-scoring level if it scores
    higher. Returns the index it went to, or -1 when it was not kept."""
    found = find(state, level)
    empty = ~state.filled
    lowest = jnp.argmin(jnp.where(state.filled, state.scores, jnp.inf))
    slot = jnp.where(empty.any(), jnp.argmax(empty), lowest)
    keep_new = empty.any() | (score > state.scores[slot])
    index = jnp.where(found >= 0, found, jnp.where(keep_new, slot, -1))
    write = index >= 0
    at = jnp.maximum(index, 0)
    new_level = found < 0

    def put(buf: jax.Array, x: jax.Array) -> jax.Array:
        return jnp.where(write & new_level, buf.at[at].set(x), buf)

    prior_best = jnp.where(new_level, -jnp.inf, state.max_return[at])
    state = state._replace(
        levels=jax.tree.map(put, state.levels, level),
        scores=jnp.where(write, state.scores.at[at].set(score), state.scores),
        last_seen=jnp.where(write, state.last_seen.at[at].set(state.clock), state.last_seen),
        filled=state.filled | (write & (jnp.arange(state.filled.shape[0]) == at)),
        max_return=jnp.where(write, state.max_return.at[at].set(
            jnp.maximum(prior_best, max_return)), state.max_return))
    return state, index


def insert(state: SamplerState, levels: PyTree, scores: jax.Array,
           max_return: jax.Array) -> tuple[SamplerState, jax.Array]:
    """`insert_one` for a batch of levels in order (a later level sees the earlier ones)."""

    def one(s: SamplerState, x: tuple) -> tuple[SamplerState, jax.Array]:
        return insert_one(s, *x)

    return jax.lax.scan(one, state, (levels, scores, max_return))


def tick(state: SamplerState) -> SamplerState:
    """One update has passed (staleness grows)."""
    return state._replace(clock=state.clock + 1)


def statistics(state: SamplerState, params: SamplerParams,
               prioritization: str = "rank") -> dict[str, jax.Array]:
    """Figures of the buffer for tracking: fill, score and staleness over filled levels, and
    the entropy of the replay distribution."""
    n = jnp.maximum(state.filled.sum(), 1)

    def mean(x: jax.Array) -> jax.Array:
        return jnp.where(state.filled, x, 0.0).sum() / n

    score_mean = mean(state.scores)
    p = replay_weights(state, params, prioritization)
    return {"fill": state.filled.mean(), "score_mean": score_mean,
            "score_std": jnp.sqrt(mean((state.scores - score_mean) ** 2)),
            "score_max": jnp.where(state.filled, state.scores, -jnp.inf).max(),
            "staleness_mean": mean((state.clock - state.last_seen).astype(jnp.float32)),
            "replay_entropy": -jnp.sum(jnp.where(p > 0, p * jnp.log(jnp.where(p > 0, p, 1)),
                                                 0.0))}
