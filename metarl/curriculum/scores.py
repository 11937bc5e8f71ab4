"""How much an agent can still learn on a level, estimated from one rollout on it.

Score functions of Prioritized Level Replay (Jiang et al. 2021) and robust PLR (Jiang et al.
2021, "Replay-Guided Adversarial Environment Design"):
* positive value loss (PVL): the mean over the rollout of max(GAE advantage, 0);
* MaxMC: the mean of (best return ever seen on the level - V(s_t)), a regret estimate that
  does not shrink just because the value function learned to expect failure.

A curriculum search may interpolate the two (`score_mix`) or replace them with a learned
level scorer: a small MLP over the per-level statistics `FEATURES` (symlog-scaled, so a scorer
trained on mazes' [0, 1] returns also reads CartPole's hundreds), in the spirit of learned
curricula such as Dennis et al. 2020's adversary, but scoring instead of generating.
"""

from __future__ import annotations

from typing import Any, NamedTuple

import jax
import jax.numpy as jnp

PyTree = Any

FEATURES = ("pvl", "maxmc", "mean_return", "finished", "value_mean")


class LevelFigures(NamedTuple):
    """Per-env figures of one rollout, `(num_envs,)` each."""

    pvl: jax.Array
    maxmc: jax.Array
    mean_return: jax.Array  # of the episodes finished in the rollout (0 if none)
    finished: jax.Array  # episodes finished in the rollout
    value_mean: jax.Array
    max_return: jax.Array  # best finished episode's return (-inf if none)


def finished_returns(reward: jax.Array, done: jax.Array, start: jax.Array
                     ) -> tuple[jax.Array, jax.Array, jax.Array]:
    """Per env: sum and max of the returns of episodes that ended in the rollout, and how
    many ended. `reward`, `done`: `(T, B)`; `start`: the running returns at the rollout's
    start."""

    def step(carry: tuple, x: tuple) -> tuple[tuple, None]:
        running, total, best, count = carry
        r, d = x
        running = running + r
        total = total + jnp.where(d, running, 0.0)
        best = jnp.where(d, jnp.maximum(best, running), best)
        return (jnp.where(d, 0.0, running), total, best, count + d), None

    n = start.shape[0]
    init = (start, jnp.zeros(n), jnp.full(n, -jnp.inf), jnp.zeros(n))
    (_, total, best, count), _ = jax.lax.scan(step, init, (reward, done > 0))
    return total, best, count


def level_figures(batch: Any, prior_best: jax.Array) -> LevelFigures:
    """The figures of each env's level from a collected batch (`RecurrentPPO.collect`);
    `prior_best` is the best return seen on each level before (-inf for new levels)."""
    total, best, count = finished_returns(batch.traj.reward, batch.done, batch.start_return)
    value = batch.value
    best_ever = jnp.maximum(prior_best, best)
    # nothing finished yet: the value function's own highest hope stands in
    best_ever = jnp.where(jnp.isfinite(best_ever), best_ever, value.max(0))
    return LevelFigures(
        pvl=jnp.maximum(batch.adv, 0.0).mean(0),
        maxmc=(best_ever[None] - value).mean(0),
        mean_return=total / jnp.maximum(count, 1),
        finished=count, value_mean=value.mean(0), max_return=best)


def symlog(x: jax.Array) -> jax.Array:
    return jnp.sign(x) * jnp.log1p(jnp.abs(x))


def feature_matrix(figures: LevelFigures) -> jax.Array:
    """`(num_envs, len(FEATURES))` scorer inputs."""
    return symlog(jnp.stack([getattr(figures, name) for name in FEATURES], -1))


def init_scorer(key: jax.Array, hidden: int = 16) -> dict[str, jax.Array]:
    """A level scorer's weights; the output layer starts at zero so every level first scores
    `softplus(0)` alike and the search moves away from uniform replay."""
    k1, _ = jax.random.split(key)
    n = len(FEATURES)
    return {"w1": jax.random.normal(k1, (n, hidden)) / jnp.sqrt(n),
            "b1": jnp.zeros(hidden), "w2": jnp.zeros((hidden, 1)), "b2": jnp.zeros(1)}


def learned_score(weights: PyTree, figures: LevelFigures) -> jax.Array:
    """The scorer's non-negative score of each level."""
    h = jnp.tanh(feature_matrix(figures) @ weights["w1"] + weights["b1"])
    return jax.nn.softplus(h @ weights["w2"] + weights["b2"])[:, 0]


def level_scores(figures: LevelFigures, score_mix: jax.Array | float,
                 scorer: PyTree | None = None) -> jax.Array:
    """`(1 - score_mix) * PVL + score_mix * MaxMC`, or the learned scorer's when given."""
    if scorer is not None:
        return learned_score(scorer, figures)
    return (1 - score_mix) * figures.pvl + score_mix * figures.maxmc
