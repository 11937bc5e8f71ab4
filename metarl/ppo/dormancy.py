"""Per-parameter dormancy of the actor-critic MLPs: the input OPEN's optimizer reads (Goldie
et al. 2024), from the dormant-neuron score of Sokar et al. 2023 ("The Dormant Neuron
Phenomenon in Deep Reinforcement Learning"): a hidden neuron's mean absolute activation over a
batch divided by the mean of its layer's. A weight or bias gets the score of the neuron it
feeds; output layers and other parameters get 0."""

from __future__ import annotations

from typing import Any

import jax
import jax.numpy as jnp

from metarl.ppo.networks import ACTIVATIONS

PyTree = Any


def neuron_scores(layers: list[dict], x: jax.Array, activation: str) -> list[jax.Array]:
    """Each hidden layer's `(n_out,)` scores on the batch `x`; 1 is an average neuron, 0 a
    dead one."""
    act, scores = ACTIVATIONS[activation], []
    for layer in layers[:-1]:
        x = act(x @ layer["w"] + layer["b"])
        level = jnp.abs(x).reshape(-1, x.shape[-1]).mean(0)
        scores.append(level / (level.mean() + 1e-8))
    return scores


def mlp_dormancy(layers: list[dict], x: jax.Array, activation: str) -> list[dict]:
    """`layers`-shaped dormancy: each hidden layer's scores on its weights' columns and
    biases, zeros on the output layer."""
    scores = neuron_scores(layers, x, activation)
    out = [{"w": jnp.broadcast_to(s, layer["w"].shape), "b": s}
           for layer, s in zip(layers, scores, strict=False)]
    return out + [jax.tree.map(jnp.zeros_like, layers[-1])]


def dormancy(params: dict, x: jax.Array, activation: str) -> dict:
    """Dormancy of every parameter of an actor-critic (`{"actor", "critic", ...}`) on the
    flat observations `x`; not differentiated (it is an optimizer input)."""
    x = jax.lax.stop_gradient(x)
    params = jax.lax.stop_gradient(params)
    return {k: mlp_dormancy(v, x, activation) if k in ("actor", "critic")
            else jax.tree.map(jnp.zeros_like, v) for k, v in params.items()}
