"""Reading what a finished (or running) search found: its spec, and the best and mean
meta-parameters at the last or a given checkpoint."""

from __future__ import annotations

import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import jax

from metarl.outer.checkpoint import CheckpointError, load_checkpoint
from metarl.programs.runner import Search, checkpoint_dir, load_run_spec

PyTree = Any


@dataclass
class Candidates:
    run_id: str
    search: Search
    generation: int
    best_fitness: float
    best: PyTree
    mean: PyTree


def load_candidates(run_id: str, tracking_uri: str,
                    generation: int | None = None) -> Candidates:
    """The search `run_id` rebuilt from its stored spec, with the meta-parameters of its latest
    checkpoint, or of the checkpoint taken after `generation` generations."""
    spec = load_run_spec(run_id, tracking_uri)
    search = Search(spec)
    name = "latest.npz" if generation is None else f"gen_{generation:05d}.npz"
    local = checkpoint_dir(run_id) / name
    with tempfile.TemporaryDirectory(prefix="metarl-checkpoint-") as tmp:  # reads write nothing
        if generation is not None or not local.is_file():
            local = _download(tracking_uri, run_id, name, tmp, generation is not None)
        state, _ = load_checkpoint(local, search.state_template())
    return Candidates(run_id, search, int(state.generation), float(state.best_fitness),
                      jax.device_get(state.best_params),
                      jax.device_get(search.mean(state)))


def _download(tracking_uri: str, run_id: str, name: str, folder: str, numbered: bool) -> Path:
    from metarl.tracking import download_artifact

    try:
        return Path(download_artifact(tracking_uri, run_id, f"checkpoints/{name}", folder))
    except Exception as err:  # noqa: BLE001 - missing artifact or store error alike
        hint = (" (checkpoints exist every tracking.checkpoint_every generations)"
                if numbered else "")
        raise CheckpointError(f"run {run_id} has no checkpoint {name}{hint}: {err}") from None
