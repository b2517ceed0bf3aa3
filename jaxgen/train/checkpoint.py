"""Orbax checkpoints of a run: train state, each process's data position, and the config.

Saves are atomic (Orbax writes to a temporary directory and renames it when complete), so a
run killed mid-save leaves the previous checkpoints intact. With `async_save` (training's
default, `checkpoint_async`), `save` returns once the state is copied off the devices and the
files are written in the background while training goes on; a step counts (is listed and
restored) only once finalised, the next save or `close` waits for the one in flight, and an
error of a save in flight surfaces there as a `CheckpointError`.

Restoring walks back from the latest step and skips, with a warning, any checkpoint that fails
to load; those are moved, not deleted, to a sibling `checkpoints_damaged/` directory so the run
can save those steps again.
"""

import contextlib
import json
import logging
import time
from pathlib import Path
from typing import Any

import grain
import jax
import orbax.checkpoint as ocp
from jax.experimental import multihost_utils

from jaxgen import parallel

log = logging.getLogger(__name__)


class CheckpointError(RuntimeError):
    pass


def with_shardings(abstract_state: Any, shardings: Any) -> Any:
    """The restore target: shapes and dtypes of `abstract_state`, placed as `shardings`."""
    return jax.tree.map(
        lambda a, s: jax.ShapeDtypeStruct(a.shape, a.dtype, sharding=s), abstract_state, shardings
    )


def state_handler() -> ocp.PyTreeCheckpointHandler:
    """Orbax's handler of the train state (the one `StandardSave` uses, same files), whose arrays
    are written replica-parallel only across processes.

    Replica-parallel saving splits each replicated array so that every replica writes a slice.
    Across hosts that shares the writing; within one process the same process writes every
    slice, and cutting them costs an op-by-op slice per array on the devices, compiled anew for
    each shape (about 3 s of an 8-device CPU save of a small model, most of it compiling)."""
    types = ocp.type_handlers
    default = types.get_type_handler(jax.Array)
    arrays = types.ArrayHandler(
        use_replica_parallel=jax.process_count() > 1,
        array_metadata_store=getattr(default, "_array_metadata_store", None))
    registry = types.create_type_handler_registry(
        *[(t, arrays if t is jax.Array else types.get_type_handler(t))
          for t in types.supported_types()])
    return ocp.PyTreeCheckpointHandler(type_handler_registry=registry)


class Checkpointer:
    def __init__(self, directory: str | Path, max_to_keep: int = 3, async_save: bool = False):
        self.directory = Path(directory).absolute()
        self.async_save = async_save
        options = ocp.CheckpointManagerOptions(
            max_to_keep=max_to_keep, create=True, enable_async_checkpointing=async_save
        )
        self._manager = ocp.CheckpointManager(self.directory, options=options,
                                              item_handlers={
                                                  "state": state_handler(),
                                                  "data": grain.checkpoint.CheckpointHandler(),
                                                  "config": ocp.JsonCheckpointHandler()})

    def steps(self) -> list[int]:
        return sorted(self._manager.all_steps())

    def latest_step(self) -> int | None:
        return self._manager.latest_step()

    def save(self, step: int, state: Any, data_iterator=None, config=None) -> None:
        items = {"state": ocp.args.PyTreeSave(state)}
        if data_iterator is not None:
            items["data"] = grain.checkpoint.CheckpointSave(data_iterator)
        if config is not None:
            items["config"] = ocp.args.JsonSave(json.loads(config.to_json()))
        with self._failures(f"saving the checkpoint of step {step}"):
            self._manager.save(step, args=ocp.args.Composite(**items), force=True)
            if not self.async_save:
                self._manager.wait_until_finished()

    @contextlib.contextmanager
    def _failures(self, what: str):
        """A failed write (disk full, permission lost), here or of a save in flight, as one
        CheckpointError; the finalised checkpoints before it stay restorable."""
        try:
            yield
        except Exception as e:
            latest = self._manager.latest_step()
            raise CheckpointError(
                f"{what} in {self.directory} failed ({type(e).__name__}: {e}); training "
                f"stopped. The newest finished checkpoint (step {latest}) is intact: free space "
                "or fix the permission, then train again to resume from it.") from e

    def wait(self) -> None:
        """Returns once the save in flight (if any) is finalised."""
        with self._failures("finishing the last checkpoint"):
            self._manager.wait_until_finished()

    def restore(self, target: Any, data_iterator=None, step: int | None = None,
                set_aside_damaged: bool = True) -> Any:
        """Restores the state (and the iterator's position, in place) from the newest good step.

        Every process tries the same step, and a step counts as good only if it loaded in all
        of them, so all processes resume from the same step. Steps newer than the one restored
        are moved to `checkpoints_damaged/` when `set_aside_damaged` (a training run does this;
        read-only users of a run do not). Returns None when there is no checkpoint; raises
        CheckpointError when there are checkpoints but none loads.
        """
        steps = [step] if step is not None else self.steps()[::-1]
        failures = []
        for candidate in steps:
            items = {"state": ocp.args.PyTreeRestore(
                target, restore_args=ocp.checkpoint_utils.construct_restore_args(target))}
            if data_iterator is not None:
                items["data"] = grain.checkpoint.CheckpointRestore(data_iterator)
            try:
                restored = self._manager.restore(candidate, args=ocp.args.Composite(**items))
                error = None
            except Exception as e:  # noqa: BLE001 - any failure to read means a damaged step
                restored, error = None, f"{type(e).__name__}: {e}"
            if not parallel.all_processes(error is None):
                error = error or "it failed to load in another process"
                failures.append(f"step {candidate}: {error}")
                log.warning("Checkpoint at step %d in %s could not be restored (%s); falling "
                            "back to the previous one.", candidate, self.directory, error)
                continue
            if failures:
                if set_aside_damaged:
                    self._set_aside([s for s in steps if s > candidate])
                log.warning("Resumed from step %d, the newest checkpoint that loads.", candidate)
            return restored["state"]
        if failures:
            raise CheckpointError(
                f"No checkpoint in {self.directory} could be restored:\n" + "\n".join(failures)
            )
        return None

    def _set_aside(self, damaged: list[int]) -> None:
        """Moves damaged steps out of the manager's way (to checkpoints_damaged/), keeping them."""
        aside = self.directory.parent / f"{self.directory.name}_damaged"
        if jax.process_index() == 0:
            aside.mkdir(exist_ok=True)
            for step in damaged:
                target = aside / f"{step}.{int(time.time())}"
                (self.directory / str(step)).rename(target)
                log.warning("Moved the damaged checkpoint of step %d to %s.", step, target)
        multihost_utils.sync_global_devices("jaxgen_checkpoint_set_aside")
        self._manager.reload()

    def close(self) -> None:
        """Waits for the save in flight (Ctrl-C, SIGTERM and errors included), then closes."""
        try:
            self.wait()
        finally:
            self._manager.close()
