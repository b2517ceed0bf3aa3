"""The XLA:CPU collectives deadlock behind a deep dispatch queue, and jaxgen's guard against it.

    python -m tests.xla_cpu_deadlock                 # every check; the guarded ones 5 times
    python -m tests.xla_cpu_deadlock --only ring --repeat 1 --busy 3

Each check runs in a fresh process with 8 CPU devices and short collective timeouts (a
rendezvous that waits 2 s is reported as stuck, and 5 s later XLA aborts the process; its
defaults are 20 s and 40 s):

- `queue`: a data-parallel step with one all-reduce, dispatched 100 times behind an input that a
  slow program is still computing, with nothing waited for in between. Each device admits 32
  programs in flight; the 33rd launch blocks one of the client's 8 worker threads until the
  oldest finishes, and the oldest needs all 8 for its all-reduce. Expected: deadlock (the hazard
  itself, deterministic, no load needed).
- `window`: the same loop through `parallel.DispatchWindow(8)`, as the training loop runs.
  Expected: finishes.
- `ring-unguarded`: `tests/test_gan.py::test_gan_learns_the_ring`'s training (800 steps) with
  the training loop's window opened to 10**9 steps, beside `--busy` CPU-bound processes. On a
  2-core machine the devices can fall behind the host until the queue passes 32: reported,
  not asserted (whether it happens depends on the load).
- `ring`: the same training as jaxgen runs it (8 steps ahead at most), beside the same load.
  Expected: finishes.
"""

import argparse
import multiprocessing
import os
import subprocess
import sys
import time

DEVICES = 8
WARN_SECONDS, TERMINATE_SECONDS = 2, 5  # XLA's defaults: 20 s, then 40 s more
# What each check must show; the unguarded ring's outcome depends on the load and is reported.
EXPECTED = {"queue": "deadlock", "window": "finishes", "ring-unguarded": None, "ring": "finishes"}
GUARDED = ("window", "ring")
STEPS = 100  # queued all-reduce steps: past the 32 in flight that each device admits


def _queue(window_depth: int | None, slow_iterations: int = 5_000_000) -> None:
    """`STEPS` all-reduce steps dispatched behind an input that a single-device loop of
    `slow_iterations` is still computing (long enough for all of them to be queued)."""
    import jax
    import jax.numpy as jnp
    from jax import lax
    from jax.sharding import AxisType, NamedSharding
    from jax.sharding import PartitionSpec as P

    from jaxgen import parallel

    mesh = jax.make_mesh((DEVICES,), ("d",), axis_types=(AxisType.Auto,))
    replicated, split = NamedSharding(mesh, P()), NamedSharding(mesh, P("d"))

    @jax.jit
    def step(p, d, s):
        grad = jax.shard_map(lambda x: lax.psum(x.sum(0), "d"), mesh=mesh, in_specs=P("d"),
                             out_specs=P())(d)
        return p - 1e-3 * grad * s

    params = jax.device_put(jnp.zeros((4,)), replicated)
    data = jax.device_put(jnp.ones((DEVICES, 4)), split)
    step(params, data, jax.device_put(jnp.float32(1), replicated)).block_until_ready()  # compiled
    slow = jax.jit(lambda x: lax.fori_loop(0, slow_iterations,
                                           lambda i, c: c * 1.0000001 + 1e-9, x))
    slow(jnp.ones((1024,))).block_until_ready()
    scale = jax.device_put(slow(jnp.ones((1024,)))[0], replicated)  # not ready for a while

    window = parallel.DispatchWindow(window_depth) if window_depth else None
    for _ in range(STEPS):
        params = step(params, data, scale)
        if window:
            window.push(params)
    params.block_until_ready()


def _ring(steps_ahead: int) -> None:
    import jax

    from jaxgen.train import loop
    from tests import helpers

    loop.MAX_STEPS_AHEAD = steps_ahead
    config = helpers.tiny_gan_config("steps=800", "checkpoint_every=800", "log_every=100",
                                     "model.g_hidden=(64, 64)", "model.d_hidden=(64, 64)")
    import tempfile

    with tempfile.TemporaryDirectory() as workdir:
        result = loop.train(config, workdir)
    assert int(jax.device_get(result.state.step)) == 800


CHILDREN = {
    "queue": lambda: _queue(None),
    "window": lambda: _queue(8),
    "ring-unguarded": lambda: _ring(10**9),
    "ring": lambda: _ring(8),
}


def _busy() -> None:
    while True:
        pass


def run_check(name: str, timeout: float) -> tuple[str, float, str]:
    """('finishes' | 'deadlock' | 'error', seconds, last line of output) of one check."""
    env = dict(os.environ)
    env["XLA_FLAGS"] = (
        f"--xla_force_host_platform_device_count={DEVICES} "
        f"--xla_cpu_collective_call_warn_stuck_timeout_seconds={WARN_SECONDS} "
        f"--xla_cpu_collective_call_terminate_timeout_seconds={TERMINATE_SECONDS}")
    env["JAXGEN_COMPILATION_CACHE"] = ""
    start = time.perf_counter()
    try:
        proc = subprocess.run([sys.executable, "-m", "tests.xla_cpu_deadlock", "--child", name],
                              env=env, capture_output=True, text=True, timeout=timeout)
    except subprocess.TimeoutExpired:
        return "deadlock", time.perf_counter() - start, f"still running after {timeout:.0f} s"
    seconds = time.perf_counter() - start
    output = (proc.stdout + proc.stderr).strip().splitlines()
    stuck = [line for line in output if "Termination timeout" in line]
    if proc.returncode == 0:
        return "finishes", seconds, ""
    if stuck:  # "... Expected 8 threads to join the rendezvous, but only 7 of them arrived ..."
        return "deadlock", seconds, "XLA: " + stuck[-1][stuck[-1].find("Expected"):].strip()
    return "error", seconds, (output[-1] if output else f"exit code {proc.returncode}")[:160]


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--child", choices=sorted(CHILDREN), help=argparse.SUPPRESS)
    parser.add_argument("--only", choices=sorted(CHILDREN), action="append",
                        help="run only these checks (repeatable)")
    parser.add_argument("--repeat", type=int, default=5, help="runs of each guarded check")
    parser.add_argument("--busy", type=int, default=3,
                        help="CPU-bound processes beside the ring checks")
    parser.add_argument("--timeout", type=float, default=600, help="seconds a check may take")
    args = parser.parse_args()
    if args.child:
        CHILDREN[args.child]()
        return 0

    failures = 0
    for name in args.only or list(CHILDREN):
        busy = []
        if name.startswith("ring"):
            busy = [multiprocessing.Process(target=_busy, daemon=True) for _ in range(args.busy)]
            for process in busy:
                process.start()
        try:
            for attempt in range(args.repeat if name in GUARDED else 1):
                outcome, seconds, detail = run_check(name, args.timeout)
                expected = EXPECTED[name]
                ok = expected is None or outcome == expected
                failures += not ok
                load = f", {len(busy)} busy" if busy else ""
                print(f"{name:15s} run {attempt + 1}{load}: {outcome:8s} in {seconds:5.1f} s "
                      f"(expected {expected or 'either'}){'' if ok else '  <-- UNEXPECTED'}"
                      + (f"\n    {detail}" if detail else ""), flush=True)
        finally:
            for process in busy:
                process.terminate()
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
