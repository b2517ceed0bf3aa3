"""What a checkpoint save costs a training run, synchronous against asynchronous (Orbax's
async checkpointing, the engine's default `checkpoint_async`), on a model's real train state.

    python -m benchmarks.checkpoint_save --model unet-cifar10 --batch 4 --out FILE.json

For each mode, the engine's jitted train step runs `--steps` plain steps (their median is the
step time), then `--saves` times: a save of the whole state (params, Adam moments, EMA, step,
key) through `jaxgen.train.checkpoint.Checkpointer`, then `--after` steps, then a wait for
the save to be finalised. A save's cost is that stretch's wall time less `--after` plain
steps: what the run loses to it. `blocking_seconds` is the time the save call itself held the
loop (the devices idle): all of the write when synchronous, the copy off the devices when
asynchronous, whose write then overlaps the following steps.
"""

import argparse
import json
import statistics
import tempfile
import time
from pathlib import Path

import jax

from benchmarks.jaxgen_bench import load_config, parameter_count, train_setup
from jaxgen.train.checkpoint import Checkpointer


def _state_bytes(state) -> int:
    return int(sum(x.size * x.dtype.itemsize for x in jax.tree.leaves(state)))


def measure(config, batch: int, *, async_save: bool, steps: int = 3, saves: int = 2,
            after: int = 2, devices: int | None = None) -> dict:
    _, _, abstract, state, _, train_batch, step = train_setup(config, batch, devices)
    parameters = parameter_count(abstract.params)

    def run_step(state):
        state, metrics = step(state, train_batch)
        jax.block_until_ready(metrics)
        return state

    state = run_step(state)  # compile
    plain = []
    for _ in range(steps):
        start = time.perf_counter()
        state = run_step(state)
        plain.append(time.perf_counter() - start)
    step_seconds = statistics.median(plain)
    costs, blocking = [], []
    with tempfile.TemporaryDirectory() as directory:
        checkpointer = Checkpointer(Path(directory) / "checkpoints", max_to_keep=2,
                                    async_save=async_save)
        for index in range(saves):
            start = time.perf_counter()
            checkpointer.save(index + 1, state)
            blocking.append(time.perf_counter() - start)
            for _ in range(after):
                state = run_step(state)
            checkpointer.wait()
            costs.append(time.perf_counter() - start - after * step_seconds)
        checkpointer.close()
    return {"task": "checkpoint", "mode": "async" if async_save else "sync", "batch": batch,
            "devices": jax.device_count() if devices is None else devices,
            "parameters": parameters, "state_bytes": _state_bytes(state),
            "step_seconds": step_seconds, "save_cost_seconds": statistics.median(costs),
            "save_costs": costs, "blocking_seconds": statistics.median(blocking),
            "steps_after_save": after}


def main(argv=None) -> list[dict]:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.checkpoint_save",
                                     description=__doc__.split("\n\n")[0])
    parser.add_argument("--model", default="unet-cifar10",
                        help="a registered benchmark model (its experiment config)")
    parser.add_argument("--batch", type=int, default=4)
    parser.add_argument("--devices", type=int, help="the first N devices (default: all)")
    parser.add_argument("--steps", type=int, default=3, help="plain steps timed")
    parser.add_argument("--saves", type=int, default=2, help="saves timed per mode")
    parser.add_argument("--after", type=int, default=2, help="steps after each save")
    parser.add_argument("--out", help="write the rows to this JSON file")
    args = parser.parse_args(argv)
    rows = []
    for async_save in (False, True):
        config = load_config(args.model, None, [], "fp32", None)
        row = measure(config, args.batch, async_save=async_save, steps=args.steps,
                      saves=args.saves, after=args.after, devices=args.devices)
        rows.append({"model": args.model, "backend": jax.default_backend(), **row})
        print(f"{row['mode']:>5}: step {row['step_seconds']:.2f} s, save blocks the loop "
              f"{row['blocking_seconds']:.2f} s and costs the run {row['save_cost_seconds']:.2f} "
              f"s ({row['state_bytes'] / 2**20:.0f} MiB of state)", flush=True)
    if args.out:
        Path(args.out).write_text(json.dumps(rows, indent=2))
    return rows


if __name__ == "__main__":
    main()
