"""Philox keys (the PPO rollout's env-step keys) inside a sharded program: they compile, and
draw the same numbers as unsharded.

Runs in a child process with 4 host devices, so the rest of the suite keeps one device, and
so that the process-wide `mulhi` lowering is registered only where this test does it."""

import functools
import os
import subprocess
import sys

SCRIPT = """
import jax, jax.numpy as jnp, numpy as np
from jax.sharding import PartitionSpec
assert len(jax.devices()) == 4

from metarl.outer.sharding import population_mesh, shard_over_population
from metarl.ppo.rollout import STEP_KEY_IMPL

assert STEP_KEY_IMPL == "philox2x32", STEP_KEY_IMPL

def evaluate(pop, key):
    # one Philox key per member, mixed with the shared key, as the rollout's step keys are
    def member(seed):
        k = jax.random.key(seed, impl=STEP_KEY_IMPL)
        k = jax.random.fold_in(k, jax.random.bits(key, (), jnp.uint32))
        k1, k2 = jax.random.split(k)
        return jax.random.uniform(k1, (16,)) + jax.random.normal(k2, (16,))
    return jax.vmap(member)(pop)

pop = jnp.arange(8, dtype=jnp.uint32)
key = jax.random.key(7)
mesh = population_mesh(8)
assert mesh.size == 4

# first as jax alone lowers it: before metarl's sharding code has run
bare = jax.jit(jax.shard_map(evaluate, mesh=mesh, in_specs=(PartitionSpec("pop"),
                                                           PartitionSpec()),
                             out_specs=PartitionSpec("pop"), check_vma=False))
try:
    bare(pop, key).block_until_ready()
    print("bare: compiles")
except Exception as e:
    print("bare: fails:", str(e).strip().splitlines()[0][:200])

sharded = jax.jit(shard_over_population(evaluate, mesh))(pop, key)
single = jax.jit(evaluate)(pop, key)
assert len(sharded.sharding.device_set) == 4, sharded.sharding
np.testing.assert_array_equal(np.asarray(sharded), np.asarray(single))
print("sharded == single")
"""


@functools.cache
def _run() -> subprocess.CompletedProcess:
    env = {**os.environ, "XLA_FLAGS": "--xla_force_host_platform_device_count=4"}
    return subprocess.run([sys.executable, "-c", SCRIPT], env=env, capture_output=True,
                          text=True, timeout=600)


def test_sharded_philox_draw_compiles_and_equals_the_unsharded_one():
    out = _run()
    assert out.returncode == 0, out.stdout + out.stderr
    assert "sharded == single" in out.stdout


def test_jax_still_needs_the_portable_mulhi_lowering():
    # a canary: when jax lowers Philox's mulhi inside shard_map by itself, this fails, and
    # metarl/mulhi.py with its process-wide lowering rule can be deleted
    out = _run()
    assert out.returncode == 0, out.stdout + out.stderr
    assert "bare: fails:" in out.stdout, (
            "jax now compiles mulhi inside shard_map: drop use_portable_mulhi "
            "(metarl/mulhi.py) and its call in metarl/outer/sharding.py\n" + out.stdout)
