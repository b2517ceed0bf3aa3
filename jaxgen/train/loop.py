"""The training loop, written once for every model family.

It builds the mesh, the data iterator and the state (sharded, or restored from the run's latest
good checkpoint), compiles the objective's step once with its shardings, and then steps: with a
progress bar, metrics as JSON lines, sample grids, checkpoints, a NaN guard, and a checkpoint
on SIGTERM or Ctrl-C.
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
from tqdm.auto import tqdm

from jaxgen import data, parallel, viz
from jaxgen.train import families, lock, run
from jaxgen.train.checkpoint import Checkpointer, with_shardings
from jaxgen.train.objectives import Sampler, UsesFrozenRuns, supports
from jaxgen.train.state import TrainState, state_layout

log = logging.getLogger(__name__)

# Metrics that must stay finite (every loss and gradient norm, e.g. "loss", "d_loss",
# "g_grad_norm"): a non-finite gradient leaves the loss of its own step finite (it was computed
# before the update) but poisons the parameters it produces.
GUARDED_SUFFIXES = ("loss", "grad_norm")

# Steps dispatched ahead of the devices: enough to hide dispatch, and far below the depth at
# which XLA:CPU's collectives can deadlock (`parallel.DispatchWindow`).
MAX_STEPS_AHEAD = 8


class NonFiniteLossError(FloatingPointError):
    pass


@dataclasses.dataclass
class TrainResult:
    state: TrainState
    objective: Any
    mesh: Any
    workdir: Path
    compile_seconds: float  # 0 when no step ran in this call
    steps_per_second: float  # nan when no step ran in this call
    stopped_early: bool

    @property
    def is_main(self) -> bool:
        """True in the process that writes files and prints (process 0)."""
        return jax.process_index() == 0


class _StopRequest:
    """Turns SIGTERM and Ctrl-C into a flag the loop reads between steps, to save and exit."""

    SIGNALS = (signal.SIGTERM, signal.SIGINT)

    def __init__(self):
        self.requested = False
        self._previous = {}

    def __enter__(self):
        for sig in self.SIGNALS:
            try:
                self._previous[sig] = signal.signal(sig, self._handle)
            except ValueError:  # not the main thread: leave signals alone
                pass
        return self

    def _handle(self, signum, frame):
        if self.requested and signum == signal.SIGINT:
            raise KeyboardInterrupt  # a second Ctrl-C: stop now, without saving
        self.requested = True

    def __exit__(self, *exc):
        for sig, previous in self._previous.items():
            signal.signal(sig, previous)


def jit_train_step(objective, mesh, shardings):
    """The engine's step, `(state, batch) -> (state, metrics)`, jitted with its shardings.

    The key of step s is `fold_in(state.rng, s)`, so it depends only on the seed and the step.
    """

    def train_step(state, batch):
        return objective.step(state, batch, jax.random.fold_in(state.rng, state.step))

    return jax.jit(
        train_step,
        in_shardings=(shardings, parallel.batch_sharding(mesh)),
        out_shardings=(shardings, parallel.replicated(mesh)),
        donate_argnums=0,
    )


def train(config, workdir: str | Path, stop_at: int | None = None) -> TrainResult:
    """Trains `config` in `workdir`, resuming from its checkpoints when `config.resume` is set.

    `stop_at` ends this call at that step with a checkpoint, without changing the schedule
    (which runs to `config.steps`); calling again continues the same run.
    """
    workdir = Path(workdir)
    mesh = parallel.make_mesh(config.mesh.fsdp)
    parallel.check_batch_size(config.batch_size, mesh)
    run_lock = lock.take(workdir)  # one writer per run directory, before anything is written
    try:
        return _train(config, workdir, stop_at, mesh)
    finally:
        if run_lock is not None:
            run_lock.release()


def _train(config, workdir: Path, stop_at: int | None, mesh) -> TrainResult:
    is_main = jax.process_index() == 0
    checkpointer = Checkpointer(workdir / "checkpoints", config.keep_checkpoints,
                                async_save=config.get("checkpoint_async", True))
    try:
        run.check_can_start(config, workdir, has_checkpoints=bool(checkpointer.steps()))
        info, data_iter = data.train_iterator(
            config.data.name, config.batch_size, seed=config.seed,
            data_dir=config.data.data_dir, download=config.data.download,
            num_threads=config.data.num_threads, text_length=config.data.get("text_length", 0),
            train_examples=config.data.get("train_examples", 0),
        )
        objective = families.make(config, info)
        key = jax.random.PRNGKey(config.seed)
        abstract, shardings = state_layout(objective, mesh, config.mesh.min_fsdp_size)
        state = None
        if config.resume:
            state = checkpointer.restore(with_shardings(abstract, shardings), data_iter)
        if state is None:
            state = jax.jit(objective.init_state, out_shardings=shardings)(key)
            if supports(objective, UsesFrozenRuns):  # parts trained in other runs
                parts = {name: run.load_frozen(part)
                         for name, part in objective.frozen_runs().items()}
                state = objective.with_frozen(state, parts, shardings)
        if is_main:
            workdir.mkdir(parents=True, exist_ok=True)
            (workdir / "config.json").write_text(config.to_json(indent=2))
        total = config.steps if stop_at is None else min(stop_at, config.steps)
        return _loop(config, workdir, objective, mesh, shardings, state, data_iter, checkpointer,
                     total)
    finally:
        checkpointer.close()


def _loop(config, workdir, objective, mesh, shardings, state, data_iter, checkpointer, total):
    is_main = jax.process_index() == 0
    start = int(state.step)
    metrics_log = run.MetricsLog(workdir / "metrics.jsonl", enabled=is_main)
    metrics_log.drop_after(start)  # a resumed run logs the steps after `start` again
    step_fn = jit_train_step(objective, mesh, shardings)
    sample_fn = None  # a family that draws nothing (CLIP) has no sample grids
    if config.sample_every and supports(objective, Sampler):
        sample_fn = jax.jit(objective.sample, static_argnums=2,
                            out_shardings=parallel.replicated(mesh))
    single_process = jax.process_count() == 1
    shown = objective.progress_metrics
    compile_seconds, steps_per_second, stopped = 0.0, float("nan"), False
    with _StopRequest() as stop, tqdm(total=total, initial=start, disable=not is_main,
                                      desc="train", dynamic_ncols=True) as bar:
        if start < total:
            batch = parallel.shard_batch(next(data_iter), mesh)
            t0 = time.perf_counter()
            step_fn = step_fn.lower(state, batch).compile()
            compile_seconds = time.perf_counter() - t0
            log.info("Compiled the train step in %.1f s.", compile_seconds)
        pending, window_start, timed_steps, timed_seconds = [], time.perf_counter(), 0, 0.0
        in_flight = parallel.DispatchWindow(MAX_STEPS_AHEAD)
        for step in range(start, total):
            if step > start:
                batch = parallel.shard_batch(next(data_iter), mesh)
            state, metrics = step_fn(state, batch)
            pending.append(metrics)
            in_flight.push(metrics)
            done = step + 1
            checkpoint_now = done % config.checkpoint_every == 0 or done == total
            log_now = done % config.log_every == 0 or checkpoint_now
            # One process may stop at any step; many must agree, which they do at log points.
            if log_now or (single_process and stop.requested):
                stopped = parallel.any_process(stop.requested)
                window = jax.device_get(pending)
                _check_finite(window, first_step=done - len(pending), checkpointer=checkpointer)
                elapsed = time.perf_counter() - window_start
                timed_steps, timed_seconds = timed_steps + len(pending), timed_seconds + elapsed
                steps_per_second = timed_steps / timed_seconds
                record = {k: float(np.mean([m[k] for m in window])) for k in window[0]}
                record.update(step=done, steps_per_second=len(pending) / elapsed)
                metrics_log.append(record)
                bar.set_postfix({**{k: f"{record[k]:.4g}" for k in shown},
                                 "steps_per_s": f"{record['steps_per_second']:.1f}"})
                bar.update(len(pending))
                pending = []
                if checkpoint_now or stopped:
                    checkpointer.save(done, state, data_iter, config)
                if stopped:
                    log.warning("Stop requested: saved a checkpoint at step %d and stopped.", done)
                    break
                window_start = time.perf_counter()
            if sample_fn is not None and done % config.sample_every == 0:
                _save_samples(sample_fn, state, workdir / "samples" / f"step_{done:07d}.png")
    if is_main and start < int(state.step):
        metrics_log.plot(workdir / "loss_curve.png")
        summary = {"step": int(state.step), "compile_seconds": compile_seconds,
                   "steps_per_second": steps_per_second, "devices": mesh.size,
                   "processes": jax.process_count(), "backend": jax.default_backend()}
        (workdir / "train_summary.json").write_text(json.dumps(summary, indent=2))
    return TrainResult(state, objective, mesh, workdir, compile_seconds, steps_per_second,
                       stopped)


def _check_finite(window: list[dict], first_step: int, checkpointer: Checkpointer) -> None:
    for offset, metrics in enumerate(window):
        bad = {k: float(v) for k, v in metrics.items()
               if k.endswith(GUARDED_SUFFIXES) and not math.isfinite(float(v))}
        if bad:
            step = first_step + offset + 1
            checkpointer.wait()  # a save in flight holds a finite state: let it finish
            kept = checkpointer.latest_step()
            where = (f"the last good checkpoint (step {kept}) is kept in {checkpointer.directory}"
                     if kept is not None else "no checkpoint had been saved yet")
            raise NonFiniteLossError(
                f"{', '.join(f'{k} became {v}' for k, v in bad.items())} at step {step}; training "
                f"stopped and nothing after it was saved: {where}. Lower the learning rate or "
                "set optim.grad_clip_norm, then train again in a new --workdir (or rerun this "
                "one to resume from that checkpoint)."
            )


def _save_samples(sample_fn, state: TrainState, path: Path, num: int = 64) -> None:
    """Every process draws (the parameters may be sharded across hosts); process 0 writes."""
    key = jax.random.fold_in(state.rng, 2**31 - 1)  # one fixed key: grids across steps compare
    images = np.asarray(jax.device_get(sample_fn(state.eval_params, key, num)))
    if jax.process_index() == 0 and images.ndim == 4:
        viz.save_png(viz.image_grid(images), path)
