"""Reading what a finished (or running) search found: its spec, and the best and mean
meta-parameters at the last or a given checkpoint."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import jax

from metarl.outer.checkpoint import CheckpointError, load_checkpoint
from metarl.programs.runner import Search, checkpoint_dir, load_run_spec

PyTree = Any


@dataclass
class Candidates:
    search: Search
    generation: int
    best_fitness: float
    best: PyTree
    mean: PyTree


def load_candidates(run_id: str, tracking_uri: str,
                    generation: int | None = None) -> Candidates:
    """The search `run_id` rebuilt from its stored spec, with the meta-parameters of its latest
    checkpoint, or of the checkpoint taken after `generation` generations."""
    from metarl.tracking import download_artifact

    spec = load_run_spec(run_id, tracking_uri)
    search = Search(spec)
    name = "latest.npz" if generation is None else f"gen_{generation:05d}.npz"
    local = checkpoint_dir(run_id) / name
    if generation is not None or not local.is_file():
        try:
            local = Path(download_artifact(tracking_uri, run_id, f"checkpoints/{name}",
                                           str(checkpoint_dir(run_id) / "downloaded")))
        except Exception as err:  # noqa: BLE001 - missing artifact or store error alike
            hint = (" (checkpoints exist every tracking.checkpoint_every generations)"
                    if generation is not None else "")
            raise CheckpointError(f"run {run_id} has no checkpoint {name}{hint}: {err}") \
                from None
    state, _ = load_checkpoint(local, search.initial_state())
    return Candidates(search, int(state.generation), float(state.best_fitness),
                      jax.device_get(state.best_params),
                      jax.device_get(search.strategy.mean(state.strategy)))
