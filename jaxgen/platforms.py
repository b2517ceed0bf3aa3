"""The platform a program is built for, which need not be the one it is built on.

Choices that depend on the hardware are made for the *target* platform: the host's backend by
default, or the one named by `target(...)` while a program is exported for another platform
(`jax.export`, as the tests do for CUDA and TPU on a CPU machine).

- Choices fixed when a model is built (the compute dtype "auto": bfloat16 on an accelerator,
  float32 on a CPU) read `current()`.
- Choices inside a traced function use `jax.lax.platform_dependent`, which XLA resolves for each
  platform a program is lowered for (`models.layers.ConvTranspose`).
"""

import contextlib
import contextvars

import jax

PLATFORMS = ("cpu", "cuda", "rocm", "tpu")

_TARGET: contextvars.ContextVar[str | None] = contextvars.ContextVar("jaxgen_target_platform",
                                                                     default=None)


def current() -> str:
    """"cpu", "cuda", "rocm" or "tpu": the platform programs are being built for."""
    target = _TARGET.get()
    if target is not None:
        return target
    device = jax.devices()[0]
    if device.platform == "gpu":  # JAX names CUDA and ROCm devices alike
        return "rocm" if "rocm" in device.client.platform_version.lower() else "cuda"
    return device.platform


def is_accelerator() -> bool:
    return current() != "cpu"


@contextlib.contextmanager
def target(platform: str):
    """Builds models for `platform` inside the block, whatever the host's devices."""
    if platform not in PLATFORMS:
        raise ValueError(f"platform must be one of {', '.join(PLATFORMS)}, got {platform!r}")
    token = _TARGET.set(platform)
    try:
        yield platform
    finally:
        _TARGET.reset(token)
