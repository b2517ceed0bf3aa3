"""`python -m benchmarks train --config experiments/vae_mnist.py --steps 50 --out r.json`

Times one model's train step on random inputs of the config's shapes (no dataset needed):
compile time apart, then the median and spread of repeated steady-state timings, each ended by
`block_until_ready`. Sampling throughput, MFU and PyTorch comparisons build on this harness.
"""

import argparse
import datetime
import json
import platform
import statistics
import sys
import time
from pathlib import Path


def time_train_step(config, steps: int, repeats: int) -> dict:
    import jax
    import jax.numpy as jnp

    from jaxgen import parallel
    from jaxgen.train import make_objective
    from jaxgen.train.loop import jit_train_step
    from jaxgen.train.state import state_layout

    mesh = parallel.make_mesh(config.mesh.fsdp)
    parallel.check_batch_size(config.batch_size, mesh)
    objective = make_objective(config)
    key = jax.random.PRNGKey(0)
    _, shardings = state_layout(objective, mesh, config.mesh.min_fsdp_size)
    state = jax.jit(objective.init_state, out_shardings=shardings)(key)
    images = jax.random.uniform(key, (config.batch_size, *config.model.data_shape), minval=-1.0)
    batch = parallel.shard_batch({"image": images, "label": jnp.zeros(len(images), jnp.int32)},
                                 mesh)
    step = jit_train_step(objective, mesh, shardings)
    t0 = time.perf_counter()
    compiled = step.lower(state, batch).compile()
    compile_seconds = time.perf_counter() - t0
    state, _ = compiled(state, batch)  # warm-up
    jax.block_until_ready(state)
    per_step = []
    for _ in range(repeats):
        t0 = time.perf_counter()
        for _ in range(steps):
            state, metrics = compiled(state, batch)
        jax.block_until_ready((state, metrics))
        per_step.append((time.perf_counter() - t0) / steps)
    median = statistics.median(per_step)
    return {
        "compile_seconds": compile_seconds,
        "step_seconds_median": median,
        "step_seconds_min": min(per_step),
        "step_seconds_max": max(per_step),
        "steps_per_second": 1.0 / median,
        "examples_per_second": config.batch_size / median,
        "batch_size": config.batch_size,
        "devices": mesh.size,
    }


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(prog="python -m benchmarks", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = parser.add_subparsers(dest="command", required=True)
    train = sub.add_parser("train", help="time a train step (compile apart, then steady state)")
    train.add_argument("--config", required=True, help="experiment config file")
    train.add_argument("--set", action="append", default=[], metavar="KEY=VALUE",
                       help="config override, as for `python -m jaxgen train`")
    train.add_argument("--steps", type=int, default=20, help="steps per timed repeat")
    train.add_argument("--repeats", type=int, default=5, help="timed repeats (median reported)")
    train.add_argument("--out", help="write the result as JSON here")
    args = parser.parse_args(argv)

    import jax

    from jaxgen import config as config_lib

    config = config_lib.override(config_lib.load(args.config), args.set)
    result = time_train_step(config, args.steps, args.repeats)
    result.update(
        command=" ".join(["python -m benchmarks", *(argv or sys.argv[1:])]),
        config=str(args.config), overrides=args.set, date=datetime.datetime.now().isoformat(),
        backend=jax.default_backend(), device=jax.devices()[0].device_kind,
        jax=jax.__version__, python=platform.python_version(),
    )
    text = json.dumps(result, indent=2)
    print(text)
    if args.out:
        Path(args.out).write_text(text + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
