"""Where arrays live: one `data` mesh axis over every device (of every host, after jax.distributed.initialize()),
batches split along it, parameters and optimizer state replicated or sharded."""

import jax
import numpy as np
from jax.sharding import AxisType, Mesh, NamedSharding
from jax.sharding import PartitionSpec as P


def data_mesh(devices: list | None = None) -> Mesh:
    """Every device on one `data` axis. Auto axis type: the train step states a few shardings and GSPMD
    propagates the rest (jax 0.10 defaults to Explicit)."""
    devices = devices or jax.devices()
    return jax.make_mesh((len(devices),), ("data",), axis_types=(AxisType.Auto,), devices=devices)


def state_shardings(tree, mesh: Mesh, shard_params: bool):
    """Where each array of a parameter or optimizer-state tree lives: replicated on every device, or with
    shard_params split along its largest dimension divisible by the device count (arrays with none stay
    replicated). Depends on shapes only, so parameters and their Adam moments get the same layout; GSPMD
    inserts the gathers a sharded parameter needs."""

    def sharding(x) -> NamedSharding:
        spec = [None] * x.ndim
        divisible = [d for d in range(x.ndim) if x.shape[d] % mesh.size == 0]
        if shard_params and divisible:
            spec[max(divisible, key=lambda d: x.shape[d])] = "data"
        return NamedSharding(mesh, P(*spec))

    return jax.tree.map(sharding, tree)


def place(tree, shard_params: bool, mesh: Mesh | None = None):
    """Puts a parameter or optimizer-state tree where a train step of the same mesh expects it. With several
    processes, an array held whole by this process (every process holds the same: the same seed or
    checkpoint) becomes a global one from each process's own copy: no transfer between hosts."""
    mesh = mesh or data_mesh()
    return jax.tree.map(_put, tree, state_shardings(tree, mesh, shard_params))


def _put(x, sharding: NamedSharding):
    if jax.process_count() > 1 and x.is_fully_addressable:
        whole = np.asarray(x)
        return jax.make_array_from_callback(whole.shape, sharding, lambda index: whole[index])
    return jax.device_put(x, sharding)
