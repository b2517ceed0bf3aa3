"""Timing and cost of one compiled program, the same way for every benchmark.

Compile time is measured apart (lower + compile). Then one warm-up call, and `repeats` timed
calls of `calls` each, every one ended by `block_until_ready`; the median time per call is the
figure, min and max its spread. Model FLOPs come from XLA's cost analysis of the lowered
program, which counts a multiply-add as 2 FLOPs (a test checks it on a matmul).
"""

import datetime
import platform
import statistics
import sys
import time
from collections.abc import Callable

import jax


def timed(call: Callable[[], object], repeats: int, calls: int = 1,
          wait: Callable[[object], object] = jax.block_until_ready) -> dict:
    """Times `call()`: one warm-up, then `repeats` x `calls` calls, each repeat ended by
    `wait(last output)` (JAX's `block_until_ready`; PyTorch passes its device sync)."""
    if repeats < 1 or calls < 1:
        raise ValueError(f"repeats and calls must be >= 1, got {repeats} and {calls}")
    wait(call())  # warm-up: first-call allocations, autotuning
    per_call = []
    for _ in range(repeats):
        t0 = time.perf_counter()
        for _ in range(calls):
            out = call()
        wait(out)
        per_call.append((time.perf_counter() - t0) / calls)
    return {"seconds_median": statistics.median(per_call), "seconds_min": min(per_call),
            "seconds_max": max(per_call), "repeats": repeats, "calls_per_repeat": calls}


def compile_timed(jitted, *args, **kwargs):
    """(compiled executable, seconds to lower and compile it)."""
    t0 = time.perf_counter()
    compiled = jitted.lower(*args, **kwargs).compile()
    return compiled, time.perf_counter() - t0


def _cost(analysis) -> dict:
    # One dict in current JAX; a list of one dict per program in older releases.
    if isinstance(analysis, list | tuple):
        analysis = analysis[0] if analysis else {}
    return analysis or {}


def flops(fn: Callable, *args, **kwargs) -> float:
    """FLOPs of one call of `fn` on `args` (arrays or ShapeDtypeStructs), from XLA's cost
    analysis of the lowered, unsharded program. No compile and no device memory needed."""
    lowered = jax.jit(fn).lower(*args, **kwargs)
    return float(_cost(lowered.cost_analysis()).get("flops", 0.0))


def compiled_bytes(compiled) -> int | None:
    """The device memory a compiled program needs per device: arguments + outputs + temporaries,
    less what outputs alias (donated inputs), from XLA's memory analysis."""
    stats = compiled.memory_analysis()
    if stats is None:
        return None
    return int(stats.argument_size_in_bytes + stats.output_size_in_bytes
               + stats.temp_size_in_bytes - stats.alias_size_in_bytes)


def device_peak_bytes() -> int | None:
    """The allocator's peak bytes in use on device 0 since the process started (GPU/TPU; the
    CPU backend keeps no such count)."""
    stats = jax.devices()[0].memory_stats()
    return None if not stats else int(stats.get("peak_bytes_in_use", 0)) or None


def environment(argv: list[str]) -> dict:
    device = jax.devices()[0]
    env = {"date": datetime.datetime.now().isoformat(timespec="seconds"),
           "command": " ".join(["python -m benchmarks", *argv]),
           "backend": jax.default_backend(), "device": device.device_kind,
           "device_count": jax.device_count(), "process_count": jax.process_count(),
           "python": platform.python_version(), "platform": platform.platform(),
           "jax": jax.__version__, "jaxlib": _version("jaxlib"), "flax": _version("flax")}
    if env["backend"] == "cpu":
        import os

        env["cpu_cores"] = os.cpu_count()
    for name in ("torch", "diffusers"):
        if name in sys.modules:
            env[name] = _version(name)
    return env


def _version(module: str) -> str | None:
    from importlib import metadata

    try:
        return metadata.version(module)
    except metadata.PackageNotFoundError:
        return None
