"""Meshes, shardings and multi-host start-up: the only module that knows about devices.

The mesh has two axes, `data` and `fsdp`. Batches are split along both (every device holds a
distinct slice of the batch). Train state is replicated by default; with fsdp > 1 each large
array is also split along `fsdp` on its largest divisible dimension (ZeRO-3 style), and XLA
gathers it where a layer needs it. Steps are jitted with these shardings; this is what `pmap`
compiles to in current JAX, without its restrictions.
"""

import collections
import dataclasses
import math
from typing import Any

import jax
import numpy as np
from jax.experimental import multihost_utils
from jax.sharding import AxisType, Mesh, NamedSharding
from jax.sharding import PartitionSpec as P

DATA_AXES = ("data", "fsdp")


@dataclasses.dataclass(frozen=True)
class DistributedConfig:
    """Where to reach the coordinator when a run spans several processes (hosts)."""

    coordinator_address: str | None = None  # "host:port"; None: one process, or auto-detected
    num_processes: int | None = None
    process_id: int | None = None
    cpu_collectives: str = "gloo"  # collectives between CPU processes


def initialize_distributed(config: DistributedConfig) -> None:
    """Starts multi-host JAX. Call before anything touches a device, in every process."""
    if jax.distributed.is_initialized():
        return
    if config.num_processes is not None and config.num_processes > 1:
        jax.config.update("jax_cpu_collectives_implementation", config.cpu_collectives)
    jax.distributed.initialize(
        coordinator_address=config.coordinator_address,
        num_processes=config.num_processes,
        process_id=config.process_id,
    )


def any_process(flag: bool) -> bool:
    """True if the flag is set in any process (a collective: every process must call it)."""
    if jax.process_count() == 1:
        return flag
    return bool(np.any(multihost_utils.process_allgather(np.asarray(flag))))


def all_processes(flag: bool) -> bool:
    """True if the flag is set in every process (a collective: every process must call it)."""
    return not any_process(not flag)


def make_mesh(fsdp: int = 1, devices: list | None = None) -> Mesh:
    """A (data, fsdp) mesh over `devices` (default: all of them, every host), data = n / fsdp."""
    devices = jax.devices() if devices is None else list(devices)
    if fsdp < 1 or len(devices) % fsdp:
        raise ValueError(f"fsdp={fsdp} does not divide the {len(devices)} devices.")
    # Devices stay in process order, so each process's devices own a contiguous block of the
    # batch; `shard_batch` relies on it.
    grid = np.asarray(devices).reshape(len(devices) // fsdp, fsdp)
    return Mesh(grid, DATA_AXES, axis_types=(AxisType.Auto, AxisType.Auto))


def batch_sharding(mesh: Mesh) -> NamedSharding:
    """Leading (batch) dimension split over every device of the mesh."""
    return NamedSharding(mesh, P(DATA_AXES))


def replicated(mesh: Mesh) -> NamedSharding:
    return NamedSharding(mesh, P())


def check_batch_size(global_batch_size: int, mesh: Mesh) -> None:
    if global_batch_size % mesh.size:
        lower = global_batch_size // mesh.size * mesh.size
        raise ValueError(
            f"batch size {global_batch_size} is not divisible by the {mesh.size} devices of the "
            f"mesh; use a multiple of {mesh.size}, such as {max(lower, mesh.size)} or "
            f"{lower + mesh.size} (--set batch_size=...)."
        )


def shard_batch(local_batch: Any, mesh: Mesh) -> Any:
    """Assembles each process's block of the batch into global arrays split over the mesh."""
    sharding = batch_sharding(mesh)

    def to_global(x):
        x = np.asarray(x)
        global_shape = (x.shape[0] * jax.process_count(), *x.shape[1:])
        return jax.make_array_from_process_local_data(sharding, x, global_shape)

    return jax.tree.map(to_global, local_batch)


class DispatchWindow:
    """Keeps the host at most `depth` dispatched programs ahead of the devices.

    JAX dispatches asynchronously, so a loop of jitted steps can queue many programs before the
    first one runs. On XLA:CPU that queue is unsafe for programs with collectives: each device
    admits 32 programs in flight, and the launch of a 33rd blocks the worker thread it runs on
    until the oldest finishes. The client has max(cores, devices) worker threads, so with 8
    devices on a small machine the oldest step's all-reduce, which needs 8 threads at once,
    finds 7: its rendezvous never completes, and XLA aborts ("only 7 of them arrived") or hangs.
    How deep the queue grows depends on how fast the devices drain it, so a busy machine reaches
    the limit where an idle one does not (`tests/xla_cpu_deadlock.py` reproduces it). A few
    programs ahead keep an accelerator as busy as thirty do.
    """

    def __init__(self, depth: int = 8):
        if depth < 1:
            raise ValueError(f"a dispatch window holds at least one program, not {depth}")
        self.depth = depth
        self._in_flight = collections.deque()

    def push(self, output: Any) -> None:
        """Records `output` (any result of a dispatched program); when more than `depth` are in
        flight, waits for the oldest."""
        self._in_flight.append(output)
        while len(self._in_flight) > self.depth:
            jax.block_until_ready(self._in_flight.popleft())


def fsdp_spec(shape: tuple[int, ...], fsdp_size: int, min_size: int) -> P:
    """Splits the largest dimension divisible by `fsdp_size` along `fsdp`; small arrays stay."""
    if fsdp_size == 1 or math.prod(shape) < min_size:
        return P()
    for dim in sorted(range(len(shape)), key=lambda d: -shape[d]):
        if shape[dim] % fsdp_size == 0:
            return P(*[("fsdp" if d == dim else None) for d in range(len(shape))])
    return P()


def state_shardings(abstract_state: Any, mesh: Mesh, min_fsdp_size: int = 2**14) -> Any:
    """Shardings for every array of a train-state pytree, by the rule of `fsdp_spec`.

    The same rule places parameters, their optimizer moments and EMA copies alike (they share
    shapes), so an update never moves data between devices. Integer arrays (the step, keys)
    are replicated.
    """
    fsdp_size = mesh.shape["fsdp"]

    def place(x):
        if not np.issubdtype(x.dtype, np.floating):  # step counters and PRNG keys stay whole
            return NamedSharding(mesh, P())
        return NamedSharding(mesh, fsdp_spec(x.shape, fsdp_size, min_fsdp_size))

    return jax.tree.map(place, abstract_state)
