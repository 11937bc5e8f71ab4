"""Spreading the population axis over every device, on one host or several."""

from __future__ import annotations

import logging
import os
from collections.abc import Callable
from typing import Any

import jax
from jax.sharding import Mesh, PartitionSpec

from metarl.mulhi import use_portable_mulhi

log = logging.getLogger(__name__)

# `jax.distributed.initialize()` reads these (or a cluster's own variables) to find its peers.
_DISTRIBUTED_VARS = ("JAX_COORDINATOR_ADDRESS", "JAX_NUM_PROCESSES", "JAX_PROCESS_ID")


def maybe_initialize_distributed() -> bool:
    """Join a multi-host run when the standard environment variables say there is one."""
    if not os.environ.get("JAX_COORDINATOR_ADDRESS"):
        return False
    missing = [v for v in _DISTRIBUTED_VARS if v not in os.environ]
    if missing:
        raise RuntimeError(f"multi-host run: JAX_COORDINATOR_ADDRESS is set but "
                           f"{', '.join(missing)} is not")
    # jax 0.10 reads only JAX_COORDINATOR_ADDRESS itself; the count and id must be passed
    jax.distributed.initialize(os.environ["JAX_COORDINATOR_ADDRESS"],
                               int(os.environ["JAX_NUM_PROCESSES"]),
                               int(os.environ["JAX_PROCESS_ID"]))
    log.info("joined distributed run as process %d of %d", jax.process_index(),
             jax.process_count())
    return True


def population_mesh(population_size: int, max_devices: int | None = None) -> Mesh:
    """A 1-D mesh over as many devices as divide the population evenly."""
    devices = jax.devices()[:max_devices]
    n = max(d for d in range(1, len(devices) + 1) if population_size % d == 0)
    if n < len(devices):
        log.warning("population %d does not divide over %d devices; using %d",
                    population_size, len(devices), n)
    return Mesh(devices[:n], ("pop",))


def shard_over_population(evaluate: Callable, mesh: Mesh) -> Callable:
    """`evaluate(population, key)` run as one program per device on that device's slice of
    the population; the key is shared, so every member sees the same inner seeds.

    `shard_map` rather than sharding annotations: members never talk to each other, so there
    is nothing for the SPMD partitioner to decide, and it cannot insert communication.

    Sets up `use_portable_mulhi` first: the PPO rollout draws env-step keys from Philox, whose
    `mulhi` jax 0.10 cannot compile inside a partitioned program (see metarl/mulhi.py)."""
    if mesh.size == 1:
        return evaluate
    use_portable_mulhi()
    pop = PartitionSpec("pop")
    return jax.shard_map(evaluate, mesh=mesh, in_specs=(pop, PartitionSpec()), out_specs=pop,
                         check_vma=False)


def replicated(tree: Any, mesh: Mesh) -> Any:
    """`tree` on every device of `mesh`, so that every process can read it whole."""
    if mesh.size == 1:
        return tree
    return jax.lax.with_sharding_constraint(tree, jax.sharding.NamedSharding(mesh, PartitionSpec()))


def is_main_process() -> bool:
    return jax.process_index() == 0
