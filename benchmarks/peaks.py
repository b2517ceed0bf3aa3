"""The FLOP/s a device can reach: its datasheet's dense peak, and what a large matmul measures.

MFU is reported against both: the datasheet says how far from the hardware's limit a step is,
the measured matmul how far from what this device, driver and XLA really deliver.
"""

import time

import jax
import jax.numpy as jnp

# Dense (no 2:4 sparsity) peak per device as JAX counts devices, in FLOP/s, by compute dtype.
# fp32 on GPU tensor cores is TF32 (XLA's default precision for f32 dots on GPU); TPUs run f32
# dots as bf16 passes, so only bf16 is listed for them.
DATASHEET_PEAKS = {
    "H100 PCIe": {"bfloat16": 756e12, "float32": 378e12},
    "H100": {"bfloat16": 989e12, "float32": 494e12},  # SXM
    "H200": {"bfloat16": 989e12, "float32": 494e12},
    "A100": {"bfloat16": 312e12, "float32": 156e12},
    "L4": {"bfloat16": 121e12, "float32": 60e12},
    "A10G": {"bfloat16": 70e12, "float32": 35e12},
    "TPU v6 lite": {"bfloat16": 918e12},
    "TPU v5p": {"bfloat16": 459e12},
    "TPU v5 lite": {"bfloat16": 197e12},
    "TPU v5e": {"bfloat16": 197e12},
    "TPU v4": {"bfloat16": 275e12},
    "TPU v3": {"bfloat16": 61.5e12},  # per core: JAX counts each v3 core as a device
    "TPU v2": {"bfloat16": 23e12},
}


def datasheet_peak(device_kind: str, dtype: str) -> float | None:
    """The table's peak for a device kind (matched by substring, most specific first)."""
    for name in sorted(DATASHEET_PEAKS, key=len, reverse=True):
        if name.lower() in device_kind.lower():
            return DATASHEET_PEAKS[name].get(dtype)
    return None


def measured_matmul_peak(dtype: str, size: int | None = None, chain: int = 8,
                         repeats: int = 10) -> float:
    """FLOP/s of a chain of `chain` square matmuls of side `size` on device 0 (default 8192 on
    accelerators, 1024 on CPU): the best of `repeats` timed calls after a warm-up (on a shared
    CPU, three calls once all fell in a slow spell and read half the usual peak)."""
    size = size or (1024 if jax.default_backend() == "cpu" else 8192)
    key_a, key_b = jax.random.split(jax.random.PRNGKey(0))
    a = jax.random.normal(key_a, (size, size), dtype)
    # Scaled so repeated products keep unit-size entries (no overflow in bf16).
    b = (jax.random.normal(key_b, (size, size), jnp.float32) / size**0.5).astype(dtype)

    @jax.jit
    def run(a, b):
        return jax.lax.fori_loop(0, chain, lambda _, x: x @ b, a)

    jax.block_until_ready(run(a, b))
    best = float("inf")
    for _ in range(repeats):
        t0 = time.perf_counter()
        jax.block_until_ready(run(a, b))
        best = min(best, time.perf_counter() - t0)
    return 2.0 * size**3 * chain / best
