"""The training loop, written once for every model family.

It builds the mesh, the data iterator and the state (sharded, or restored from the run's latest
good checkpoint), compiles the objective's step once with its shardings, and then steps: with a
progress bar, metrics as JSON lines, sample grids, checkpoints, a NaN guard and SIGTERM handling.
"""

import dataclasses
import json
import logging
import math
import signal
import time
from pathlib import Path
from typing import Any

import jax
import numpy as np
from jax.experimental import multihost_utils
from tqdm.auto import tqdm

from jaxgen import data, parallel, viz
from jaxgen.train import objectives
from jaxgen.train.checkpoint import Checkpointer, with_shardings
from jaxgen.train.state import TrainState

log = logging.getLogger(__name__)


class NonFiniteLossError(FloatingPointError):
    pass


@dataclasses.dataclass
class TrainResult:
    state: TrainState
    objective: Any
    mesh: Any
    workdir: Path
    compile_seconds: float
    steps_per_second: float
    stopped_early: bool

    @property
    def is_main(self) -> bool:
        """True in the process that writes files and prints (process 0)."""
        return jax.process_index() == 0


class _StopRequest:
    """Turns SIGTERM into a flag the loop reads between steps, so it can save and exit."""

    def __init__(self):
        self.requested = False
        self._previous = None

    def __enter__(self):
        try:
            self._previous = signal.signal(signal.SIGTERM, self._handle)
        except ValueError:  # not the main thread: leave signals alone
            self._previous = None
        return self

    def _handle(self, signum, frame):
        self.requested = True

    def __exit__(self, *exc):
        if self._previous is not None:
            signal.signal(signal.SIGTERM, self._previous)


def _agree(flag: bool) -> bool:
    """True if any process says so: every process must stop at the same step to save together."""
    if jax.process_count() == 1:
        return flag
    return bool(np.any(multihost_utils.process_allgather(np.asarray(flag))))


def train(config, workdir: str | Path, stop_at: int | None = None) -> TrainResult:
    """Trains `config` in `workdir`, resuming from its checkpoints when `config.resume` is set.

    `stop_at` ends this call at that step with a checkpoint, without changing the schedule
    (which runs to `config.steps`); calling again continues the same run.
    """
    workdir = Path(workdir)
    is_main = jax.process_index() == 0
    if is_main:
        workdir.mkdir(parents=True, exist_ok=True)
        (workdir / "config.json").write_text(config.to_json(indent=2))

    mesh = parallel.make_mesh(config.mesh.fsdp)
    parallel.check_batch_size(config.batch_size, mesh)
    info, data_iter = data.train_iterator(
        config.data.name,
        config.batch_size,
        seed=config.seed,
        data_dir=config.data.data_dir,
        download=config.data.download,
        num_threads=config.data.num_threads,
    )
    objective = objectives.make(config, info)

    key = jax.random.PRNGKey(config.seed)
    abstract = jax.eval_shape(objective.init_state, key)
    shardings = parallel.state_shardings(abstract, mesh, config.mesh.min_fsdp_size)
    checkpointer = Checkpointer(workdir / "checkpoints", config.keep_checkpoints)
    state = None
    if config.resume:
        state = checkpointer.restore(with_shardings(abstract, shardings), data_iter)
    if state is None:
        state = jax.jit(objective.init_state, out_shardings=shardings)(key)
    start = int(state.step)
    metrics_path = workdir / "metrics.jsonl"
    if is_main:
        _drop_records_after(metrics_path, start)

    def train_step(state, batch):
        return objective.step(state, batch, jax.random.fold_in(state.rng, state.step))

    step_fn = jax.jit(
        train_step,
        in_shardings=(shardings, parallel.batch_sharding(mesh)),
        out_shardings=(shardings, parallel.replicated(mesh)),
        donate_argnums=0,
    )
    total = config.steps if stop_at is None else min(stop_at, config.steps)
    compile_seconds, steps_per_second, stopped = 0.0, float("nan"), False
    with _StopRequest() as stop, tqdm(
        total=total, initial=start, disable=not is_main, desc="train", dynamic_ncols=True
    ) as bar:
        batch = parallel.shard_batch(next(data_iter), mesh) if start < total else None
        if batch is not None:
            t0 = time.perf_counter()
            step_fn = step_fn.lower(state, batch).compile()
            compile_seconds = time.perf_counter() - t0
            log.info("Compiled the train step in %.1f s.", compile_seconds)
        pending, window_start, timed_steps, timed_seconds = [], time.perf_counter(), 0, 0.0
        for step in range(start, total):
            if step > start:
                batch = parallel.shard_batch(next(data_iter), mesh)
            state, metrics = step_fn(state, batch)
            pending.append(metrics)
            done = step + 1
            checkpoint_now = done % config.checkpoint_every == 0 or done == total
            if done % config.log_every == 0 or checkpoint_now or done == total:
                stopped = _agree(stop.requested)
                window = _check_finite(jax.device_get(pending), first_step=done - len(pending),
                                       checkpointer=checkpointer)
                elapsed = time.perf_counter() - window_start
                timed_steps, timed_seconds = timed_steps + len(pending), timed_seconds + elapsed
                steps_per_second = timed_steps / timed_seconds
                record = {k: float(np.mean([m[k] for m in window])) for k in window[0]}
                record.update(step=done, steps_per_second=len(pending) / elapsed)
                if is_main:
                    with metrics_path.open("a") as f:
                        f.write(json.dumps(record) + "\n")
                    bar.set_postfix(loss=f"{record['loss']:.4g}",
                                    steps_per_s=f"{record['steps_per_second']:.1f}")
                    bar.update(len(pending))
                pending, window_start = [], time.perf_counter()
                if checkpoint_now or stopped:
                    checkpointer.save(done, state, data_iter, config)
                if stopped:
                    log.warning("SIGTERM: saved a checkpoint at step %d and stopped.", done)
                    break
            if config.sample_every and done % config.sample_every == 0 and is_main:
                _save_samples(objective, state, workdir / "samples" / f"step_{done:07d}.png")
    checkpointer.close()
    if is_main and metrics_path.exists():
        viz.plot_metrics(metrics_path, workdir / "loss_curve.png")
        summary = {"step": int(state.step), "compile_seconds": compile_seconds,
                   "steps_per_second": steps_per_second, "devices": mesh.size,
                   "processes": jax.process_count(), "backend": jax.default_backend()}
        (workdir / "train_summary.json").write_text(json.dumps(summary, indent=2))
    return TrainResult(state, objective, mesh, workdir, compile_seconds, steps_per_second,
                       stopped)


def _drop_records_after(metrics_path: Path, step: int) -> None:
    """A run resumed from `step` logs the steps after it again: forget the first telling."""
    if metrics_path.exists():
        lines = metrics_path.read_text().splitlines()
        kept = [line for line in lines if line and json.loads(line)["step"] <= step]
        metrics_path.write_text("".join(line + "\n" for line in kept))


def _check_finite(window: list[dict], first_step: int, checkpointer: Checkpointer) -> list[dict]:
    for offset, metrics in enumerate(window):
        if not math.isfinite(float(metrics["loss"])):
            step = first_step + offset + 1
            kept = checkpointer.latest_step()
            where = (f"the last good checkpoint (step {kept}) is kept in {checkpointer.directory}"
                     if kept is not None else "no checkpoint had been saved yet")
            raise NonFiniteLossError(
                f"loss became {float(metrics['loss'])} at step {step}; training stopped and "
                f"nothing after it was saved: {where}. Lower the learning rate or set "
                "optim.grad_clip_norm, then rerun the same command to resume from it."
            )
    return window


def _save_samples(objective, state: TrainState, path: Path, num: int = 64) -> None:
    params = state.eval_params
    key = jax.random.fold_in(state.rng, 2**31 - 1)  # one fixed key: grids across steps compare
    images = np.asarray(jax.jit(objective.sample, static_argnums=2)(params, key, num))
    if images.ndim == 4:
        viz.save_png(viz.image_grid(images), path)
