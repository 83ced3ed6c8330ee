"""Data-parallel fitting with JAX's own sharding: a one-axis device mesh over the stores.

Layout (see step.run_chunk): the flat cells of the packed data (store minibatches: sorted by
store; full batch) are split over the mesh axis ``stores``; each device holds its share of the
local guide parameters (z, w) and their Adam moments; the global parameters, the priors and the
random key are replicated. XLA's SPMD partitioner (GSPMD) partitions the one compiled step: a batch
gathers its rows' cells from the devices that own them, the likelihood of the batch is computed with the
batch split over the devices, and the gradients of the globals are summed across them.

Several machines: call ``jax.distributed.initialize()`` in every process before the first JAX call,
then fit with ``devices=jax.devices()`` (every device of every process): the same mesh spans them,
arrays are built with ``jax.make_array_from_callback`` so each process materialises only its own
shards, and results come back to every process with ``process_allgather``. No cluster code of ours.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import jax
import numpy as np
from jax.sharding import AxisType, Mesh, NamedSharding
from jax.sharding import PartitionSpec as P

from bhm_core.errors import ConfigError

STORE_AXIS = "stores"
ALIGN = 8  # store and cell padding are multiples of this, so 1, 2, 4 and 8 devices share shapes


def store_mesh(devices=None) -> Mesh | None:
    """None: no mesh (one default device). An int D: the first D devices. A sequence of devices,
    or a Mesh with a ``stores`` axis, is used as given."""
    if devices is None:
        return None
    if isinstance(devices, Mesh):
        if devices.axis_names != (STORE_AXIS,):
            raise ConfigError(f"the device mesh must have the one axis {STORE_AXIS!r}, got {devices.axis_names}")
        return devices
    if isinstance(devices, (int, np.integer)) and not isinstance(devices, bool):
        available = jax.devices()
        if not 1 <= devices <= len(available):
            raise ConfigError(
                f"devices must be in [1, {len(available)}] (the {available[0].platform} devices this "
                f"process sees), got {devices}; on a CPU, set XLA_FLAGS="
                f"--xla_force_host_platform_device_count={devices} before JAX starts to split it"
            )
        chosen: Sequence = available[:devices]
    else:
        chosen = list(devices)
        if not chosen:
            raise ConfigError("devices is an empty list")
    return Mesh(np.asarray(chosen), (STORE_AXIS,), axis_types=(AxisType.Auto,))


def n_devices(mesh: Mesh | None) -> int:
    return 1 if mesh is None else mesh.devices.size


def alignment(mesh: Mesh | None) -> int:
    """Padding multiple for sharded axes: ALIGN, widened so that every device gets equal shares."""
    d = n_devices(mesh)
    return ALIGN * d // math.gcd(ALIGN, d)


def sharding(mesh: Mesh, split: bool) -> NamedSharding:
    """Split along the leading axis over the stores axis, or replicate."""
    return NamedSharding(mesh, P(STORE_AXIS) if split else P())


def constrain(x, mesh: Mesh | None):
    """Inside a jitted function: ask for x split along its leading axis (when it divides evenly)."""
    if mesh is None or np.shape(x)[0] % n_devices(mesh):
        return x
    return jax.lax.with_sharding_constraint(x, sharding(mesh, True))


def place(tree, mesh: Mesh | None, split_tree):
    """Put a pytree of host arrays on the device(s); split_tree says, per leaf, whether to split it.

    Without a mesh: one copy on the default device. With one: every process builds only the
    shards of its own devices, so the same call works across machines.
    """
    if mesh is None:
        return jax.tree.map(lambda a: jax.device_put(np.asarray(a)), tree)

    def put(a, split):
        a = np.asarray(a)
        target = sharding(mesh, bool(split) and a.ndim > 0)
        return jax.make_array_from_callback(a.shape, target, lambda index: a[index])

    return jax.tree.map(put, tree, split_tree)


def local_rows(mesh: Mesh | None, n_rows: int) -> slice:
    """The rows of a split (n_rows, ...) array that this process's devices hold: all of them
    without a mesh or on one process; a contiguous share on a mesh over several processes."""
    if mesh is None or not mesh.is_multi_process:
        return slice(0, n_rows)
    index_map = sharding(mesh, True).addressable_devices_indices_map((n_rows,))
    spans = [index[0].indices(n_rows)[:2] for index in index_map.values()]
    low, high = min(a for a, _ in spans), max(b for _, b in spans)
    if high - low != sum(b - a for a, b in spans):
        raise ConfigError("this process's devices hold no one contiguous range of stores; order the mesh by process")
    return slice(low, high)


def place_rows(block, mesh: Mesh | None, n_rows: int, rows: slice):
    """A split array of n_rows rows from this process's block of them (rows: local_rows)."""
    block = np.asarray(block)
    if mesh is None:
        return jax.device_put(block)
    shape = (n_rows, *block.shape[1:])

    def shard(index):
        span = index[0].indices(n_rows)
        return block[(slice(span[0] - rows.start, span[1] - rows.start), *index[1:])]

    return jax.make_array_from_callback(shape, sharding(mesh, True), shard)


def shardings_of(split_tree, mesh: Mesh):
    return jax.tree.map(lambda split: sharding(mesh, bool(split)), split_tree)


def to_host(x) -> np.ndarray:
    """A device array as numpy, gathering shards held by other processes where needed."""
    if isinstance(x, jax.Array) and not x.is_fully_addressable:
        from jax.experimental import multihost_utils

        return np.asarray(multihost_utils.process_allgather(x, tiled=True))
    return np.asarray(x)
