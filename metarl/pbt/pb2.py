"""PB2's explore step: hyperparameters chosen by a time-varying GP bandit (Parker-Holder,
Nguyen and Roberts 2020, "Provably Efficient Online Hyperparameter Optimization with
Population-Based Bandits").

After every interval each member contributes a point `x = (t, u)` (the interval and the
quantiles it trained with) with target `y` = its score minus the score of the state it started
the interval from. A GP with the time-varying kernel of Bogunovic et al. 2016,

    k((t, u), (t', u')) = exp(-|u - u'|^2 / (2 l^2)) * (1 - eps)^(|t - t'| / 2),

is fitted to the last `window` intervals (targets standardised, the length scale `l` picked
from a small grid by marginal likelihood), and each member that copied another gets the
candidate maximising UCB = mean + `kappa` * std at the next interval. Members choose one after
another; each choice enters the data as a pending point at its posterior mean (GP-BUCB,
Desautels et al. 2014), which shrinks the std there so the batch spreads out, as PB2 does.
Candidates are random points of the box (the paper optimises the acquisition with a local
optimiser; a dense random set does the same job inside `jit` for a handful of dimensions)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import NamedTuple

import jax
import jax.numpy as jnp

from metarl.pbt.explore import copied
from metarl.pbt.space import HyperSpace

LENGTH_SCALES = (0.1, 0.2, 0.4, 0.8)


class PB2State(NamedTuple):
    x: jax.Array  # (window, pop, 1 + D): interval index, then quantiles
    y: jax.Array  # (window, pop): score change over the interval
    valid: jax.Array  # (window, pop) bool
    start_score: jax.Array  # (pop,): score of the state each member starts the interval with


def _kernel(a: jax.Array, b: jax.Array, length: jax.Array, eps: float) -> jax.Array:
    du = jnp.sum((a[:, None, 1:] - b[None, :, 1:]) ** 2, -1)
    dt = jnp.abs(a[:, None, 0] - b[None, :, 0])
    return jnp.exp(-du / (2 * length ** 2)) * (1 - eps) ** (dt / 2)


class _GP(NamedTuple):
    x: jax.Array
    mask: jax.Array
    chol: jax.Array
    alpha: jax.Array
    length: jax.Array


def _fit(x: jax.Array, y: jax.Array, mask: jax.Array, length: jax.Array, eps: float,
         noise: float) -> tuple[_GP, jax.Array]:
    """The GP on the points where `mask` holds (the others are decoupled unit-noise rows with
    target 0, so shapes stay static), and its log marginal likelihood."""
    m = mask.astype(jnp.float32)
    k = _kernel(x, x, length, eps) * m[:, None] * m[None, :]
    k = k + jnp.diag(jnp.where(mask, noise, 1.0))
    chol = jnp.linalg.cholesky(k)
    y = jnp.where(mask, y, 0.0)
    alpha = jax.scipy.linalg.cho_solve((chol, True), y)
    ll = -0.5 * y @ alpha - jnp.sum(jnp.log(jnp.diag(chol)))
    return _GP(x, mask, chol, alpha, length), ll


def _posterior(gp: _GP, c: jax.Array, eps: float) -> tuple[jax.Array, jax.Array]:
    ks = _kernel(gp.x, c, gp.length, eps) * gp.mask[:, None]
    mean = ks.T @ gp.alpha
    v = jax.scipy.linalg.solve_triangular(gp.chol, ks, lower=True)
    return mean, jnp.sqrt(jnp.maximum(1.0 - jnp.sum(v * v, 0), 1e-9))


@dataclass(frozen=True)
class PB2Explorer:
    """PB2 over `space`: `window` intervals of data, `candidates` random points per choice."""

    space: HyperSpace
    window: int = 4
    candidates: int = 256
    kappa: float = 2.0
    eps: float = 0.1  # forgetting rate of the time kernel
    noise: float = 0.1  # observation noise on standardised targets

    def init(self, population: int) -> PB2State:
        d = self.space.dims
        return PB2State(jnp.zeros((self.window, population, 1 + d), jnp.float32),
                        jnp.zeros((self.window, population), jnp.float32),
                        jnp.zeros((self.window, population), bool),
                        jnp.full((population,), jnp.nan, jnp.float32))

    def explore(self, key: jax.Array, u: jax.Array, scores: jax.Array, source: jax.Array,
                state: PB2State, step: jax.Array) -> tuple[jax.Array, PB2State]:
        state = self._record(u, scores, state, step)
        pop, d = u.shape
        x = state.x.reshape(-1, 1 + d)
        y = state.y.reshape(-1)
        mask = state.valid.reshape(-1)
        y = (y - _masked_mean(y, mask)) / (_masked_std(y, mask) + 1e-6)
        length = self._length_scale(x, y, mask)
        t_next = jnp.asarray(step + 1, jnp.float32)
        # one pending slot per member, switched on once that member has chosen
        x = jnp.concatenate([x, jnp.zeros((pop, 1 + d), jnp.float32)])
        y = jnp.concatenate([y, jnp.zeros((pop,), jnp.float32)])
        mask = jnp.concatenate([mask, jnp.zeros((pop,), bool)])
        moved = copied(source)
        keys = jax.random.split(key, pop)

        def choose(carry: tuple, i: jax.Array) -> tuple[tuple, jax.Array]:
            x, y, mask = carry
            gp, _ = _fit(x, y, mask, length, self.eps, self.noise)
            c = jax.random.uniform(keys[i], (self.candidates, d), jnp.float32)
            cx = jnp.concatenate([jnp.full((self.candidates, 1), t_next), c], 1)
            mean, std = _posterior(gp, cx, self.eps)
            best = jnp.argmax(mean + self.kappa * std)
            slot = y.shape[0] - pop + i
            x = x.at[slot].set(cx[best])
            y = y.at[slot].set(mean[best])
            mask = mask.at[slot].set(moved[i])
            return (x, y, mask), c[best]

        _, chosen = jax.lax.scan(choose, (x, y, mask), jnp.arange(pop))
        new_u = jnp.where(moved[:, None], chosen, u[source])
        return new_u, state._replace(start_score=scores[source])

    def _record(self, u: jax.Array, scores: jax.Array, state: PB2State,
                step: jax.Array) -> PB2State:
        """This interval's points into the ring buffer of `window` intervals."""
        row = step % self.window
        t = jnp.full((u.shape[0], 1), step, jnp.float32)
        delta = scores - state.start_score
        return state._replace(x=state.x.at[row].set(jnp.concatenate([t, u], 1)),
                              y=state.y.at[row].set(jnp.where(jnp.isfinite(delta), delta, 0.0)),
                              valid=state.valid.at[row].set(jnp.isfinite(delta)))

    def _length_scale(self, x: jax.Array, y: jax.Array, mask: jax.Array) -> jax.Array:
        lengths = jnp.asarray(LENGTH_SCALES, jnp.float32)
        ll = jax.vmap(lambda ln: _fit(x, y, mask, ln, self.eps, self.noise)[1])(lengths)
        return lengths[jnp.argmax(ll)]


def _masked_mean(y: jax.Array, mask: jax.Array) -> jax.Array:
    return jnp.where(mask, y, 0.0).sum() / jnp.maximum(mask.sum(), 1)


def _masked_std(y: jax.Array, mask: jax.Array) -> jax.Array:
    mean = _masked_mean(y, mask)
    return jnp.sqrt(jnp.where(mask, (y - mean) ** 2, 0.0).sum() / jnp.maximum(mask.sum(), 1))
