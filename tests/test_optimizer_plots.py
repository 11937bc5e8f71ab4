"""Pictures of learned optimizers (metarl.learned_optimizers.plots): the update heatmap is
Adam's at the Adam start, figures render, per-layer step sizes have the right shape."""

from __future__ import annotations

import io

import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest
from matplotlib.figure import Figure

from metarl.learned_optimizers import get_learned_optimizer, make_learned_optimizer
from metarl.learned_optimizers.plots import (
    layer_step_sizes,
    step_size_figure,
    update_grid,
    update_heatmap,
)

KEY = jax.random.PRNGKey(0)
PARAMS = {"dense": {"w": jnp.ones((3, 4)) * 0.1, "b": jnp.zeros(4)}, "out": jnp.ones(4)}
STEPS = 12


def loss(params, batch):
    hidden = jnp.tanh(batch["x"] @ params["dense"]["w"] + params["dense"]["b"])
    return jnp.mean((hidden @ params["out"] - batch["y"]) ** 2)


def batches():
    x = jax.random.normal(KEY, (STEPS, 8, 3))
    return {"x": x, "y": jnp.sin(x[..., 0])}


def png_bytes(fig: Figure) -> bytes:
    buf = io.BytesIO()
    fig.savefig(buf, format="png")
    fig.clear()
    return buf.getvalue()


@pytest.mark.parametrize("name", ["mlp", "open"])
def test_adam_start_heatmap_is_adam_everywhere(name):
    meta = get_learned_optimizer(name).adam_init_meta(KEY)
    grid = update_grid(name, meta, {"learning_rate": 0.01, "eps": 1e-6})
    assert grid.learned.shape == grid.adam.shape == (grid.momenta.size, grid.gradients.size)
    np.testing.assert_allclose(grid.learned, grid.adam, atol=1e-5, rtol=0)
    # the grid realises what it says: Adam's update / lr is -m_hat / (sqrt(v_hat)=1 + eps)
    m = np.broadcast_to(grid.momenta[:, None], grid.adam.shape)
    np.testing.assert_allclose(grid.adam, -m / (1 + 1e-6), atol=1e-5)


def test_random_weights_differ_from_adam_and_figure_renders():
    meta = get_learned_optimizer("mlp").init_meta(KEY, output_scale=1.0)
    grid = update_grid("mlp", meta)
    assert np.abs(grid.learned - grid.adam).max() > 1e-2
    fig = update_heatmap("mlp", meta, title="random mlp")
    assert isinstance(fig, Figure) and len(png_bytes(fig)) > 1000


@pytest.mark.parametrize("name", ["mlp", "sgd"])
def test_layer_step_sizes(name):
    if name == "sgd":
        tx = optax.sgd(0.05)
    else:
        meta = get_learned_optimizer(name).adam_init_meta(KEY)
        tx = make_learned_optimizer(name, meta, learning_rate=0.05)
    sizes = layer_step_sizes(tx, loss, PARAMS, batches())
    assert set(sizes) == {"dense/w", "dense/b", "out"}
    for values in sizes.values():
        assert values.shape == (STEPS,) and np.all(values > 0)
    if name == "sgd":  # plain SGD's effective step size is its learning rate
        for values in sizes.values():
            np.testing.assert_allclose(values, 0.05, rtol=1e-5)
    moves = layer_step_sizes(tx, loss, PARAMS, batches(), measure="update_rms")
    assert all(v.shape == (STEPS,) and np.all(v > 0) for v in moves.values())
    fig = step_size_figure(sizes, title=name)
    assert fig.axes[0].get_yscale() == "log" and len(fig.axes[0].lines) == 3
    assert len(png_bytes(fig)) > 1000


def test_rejects_unknown_measure():
    with pytest.raises(ValueError, match="measure"):
        layer_step_sizes(optax.sgd(0.1), loss, PARAMS, batches(), measure="norm")
