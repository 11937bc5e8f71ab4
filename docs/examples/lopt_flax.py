"""Train a small flax (linen) network with an exported learned optimizer, in a plain optax
loop that knows nothing of metarl: only the exported file is needed.

    python docs/examples/lopt_flax.py path/to/lopt.py
    LOPT_MODULE=path/to/lopt.py python docs/examples/lopt_flax.py

It fits sin(x) with a one-hidden-layer MLP and prints the loss before and after training.
See docs/optimizer-export.md; tests/test_export_optimizer.py runs this file.
"""

from __future__ import annotations

import importlib.util
import os
import sys
from pathlib import Path
from types import ModuleType

import flax.linen as nn
import jax
import jax.numpy as jnp
import optax


def load_optimizer_module(path: str | Path) -> ModuleType:
    """The exported module at `path`. Importing it checks its weights against their declared
    shapes and checksum (ValueError if the file was edited)."""
    spec = importlib.util.spec_from_file_location("lopt", path)
    if spec is None or spec.loader is None:
        raise SystemExit(f"{path}: not a Python file")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


class MLP(nn.Module):
    hidden: int = 32

    @nn.compact
    def __call__(self, x: jax.Array) -> jax.Array:
        x = nn.tanh(nn.Dense(self.hidden)(x))
        return nn.Dense(1)(x)


def main(path: str | Path, steps: int = 200, learning_rate: float = 1e-2
         ) -> tuple[float, float]:
    """Train for `steps` steps with the optimizer exported at `path`; the first and the last
    loss."""
    lopt = load_optimizer_module(path)
    data_key, init_key = jax.random.split(jax.random.PRNGKey(0))
    x = jax.random.uniform(data_key, (256, 1), minval=-3.0, maxval=3.0)
    y = jnp.sin(x)
    model = MLP()
    params = model.init(init_key, x)

    # the exported settings are the defaults; override any of them here. total_steps gives
    # the optimizer its training-progress input.
    tx = lopt.optimizer(learning_rate=learning_rate, total_steps=steps)
    opt_state = tx.init(params)

    def loss_fn(params: dict) -> jax.Array:
        return jnp.mean((model.apply(params, x) - y) ** 2)

    @jax.jit
    def train_step(params: dict, opt_state: optax.OptState) -> tuple[dict, optax.OptState]:
        grads = jax.grad(loss_fn)(params)
        # a learned optimizer reads the parameters' values, so pass them to update()
        updates, opt_state = tx.update(grads, opt_state, params)
        return optax.apply_updates(params, updates), opt_state

    first = float(loss_fn(params))
    for _ in range(steps):
        params, opt_state = train_step(params, opt_state)
    last = float(loss_fn(params))
    print(f"{lopt.OPTIMIZER} optimizer from {path}: loss {first:.4f} -> {last:.4f} "
          f"after {steps} steps")
    return first, last


if __name__ == "__main__":
    module_path = sys.argv[1] if len(sys.argv) > 1 else os.environ.get("LOPT_MODULE")
    if not module_path:
        raise SystemExit("usage: lopt_flax.py PATH_TO_EXPORTED_OPTIMIZER.py "
                         "(or set LOPT_MODULE)")
    main(module_path)
