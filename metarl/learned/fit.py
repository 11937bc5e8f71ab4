"""Regressing a learned drift onto a known one: warm starts for search.

The fit regresses the drift *before* its relu (`drift_gap`): where the target is positive the
gap is pulled onto it, where the target is 0 only a positive gap is penalised. Regressing the
relu'd drift instead would stall wherever the gap starts negative (the relu has no gradient
there). The whole fit is one jitted `lax.scan`, compiled once per objective and step count.
"""

from __future__ import annotations

from collections.abc import Callable
from functools import partial

import jax
import jax.numpy as jnp
import optax

from metarl.learned.lpo import LPO

Target = Callable[[jax.Array, jax.Array, jax.Array], jax.Array]


def sample_drift_inputs(key: jax.Array, n: int, max_log_ratio: float = 0.7
                        ) -> tuple[jax.Array, jax.Array, jax.Array]:
    """`(ratio, advantage, progress)` where PPO updates live: log r ~ U(-m, m) (default r in
    [0.5, 2]), A ~ N(0, 1) (advantages are normalised per minibatch), progress ~ U(0, 1)."""
    k_r, k_a, k_p = jax.random.split(key, 3)
    ratio = jnp.exp(jax.random.uniform(k_r, (n,), minval=-max_log_ratio, maxval=max_log_ratio))
    return ratio, jax.random.normal(k_a, (n,)), jax.random.uniform(k_p, (n,))


def fit_drift(objective: LPO, meta_params: dict, key: jax.Array, target: Target,
              steps: int = 1000, batch_size: int = 512, learning_rate: float = 3e-3,
              num_points: int = 16384, max_log_ratio: float = 0.7) -> dict[str, jax.Array]:
    """Adam-regress `objective`'s drift onto `target(ratio, advantage, progress)`, starting
    from `meta_params`; returns the fitted meta-parameters.

    `target` runs once, eagerly, on `num_points` sampled inputs (so it can be any function);
    each of the `steps` Adam steps uses a random `batch_size` subset of them.
    """
    k_data, k_fit = jax.random.split(key)
    ratio, advantage, progress = sample_drift_inputs(k_data, num_points, max_log_ratio)
    data = (ratio, advantage, progress, jnp.asarray(target(ratio, advantage, progress),
                                                    jnp.float32))
    return _fit(objective, steps, batch_size, meta_params, data, k_fit,
                jnp.asarray(learning_rate, jnp.float32))


@partial(jax.jit, static_argnums=(0, 1, 2))
def _fit(objective: LPO, steps: int, batch_size: int, params: dict,
         data: tuple[jax.Array, ...], key: jax.Array, learning_rate: jax.Array) -> dict:
    tx = optax.adam(learning_rate)
    n = data[0].shape[0]

    def loss_fn(p: dict, batch: tuple[jax.Array, ...]) -> jax.Array:
        r, a, prog, t = batch
        gap = objective.drift_gap(p, r, a, prog)
        err = jnp.where(t > 0.0, gap - t, jnp.maximum(gap, 0.0))
        return jnp.mean(err * err)

    def step(carry: tuple, k: jax.Array) -> tuple[tuple, jax.Array]:
        p, opt_state = carry
        idx = jax.random.randint(k, (batch_size,), 0, n)
        loss, grads = jax.value_and_grad(loss_fn)(p, tuple(x[idx] for x in data))
        updates, opt_state = tx.update(grads, opt_state, p)
        return (optax.apply_updates(p, updates), opt_state), loss

    (params, _), _ = jax.lax.scan(step, (params, tx.init(params)), jax.random.split(key, steps))
    return params
