"""The platform a program is built for, which need not be the one it is built on.

Choices that depend on the hardware are made for the *target* platform: the host's backend by
default, or the one named by `target(...)` while a program is exported for another platform
(`jax.export`, as the tests do for CUDA and TPU on a CPU machine).

- Choices fixed when a model is built (the compute dtype "auto": bfloat16 on an accelerator,
  float32 on a CPU) read `current()`.
- Choices inside a traced function use `jax.lax.platform_dependent`, which XLA resolves for each
  platform a program is lowered for (`models.layers.ConvTranspose`).
- A kernel that only its device can trace is a config value resolved once per target
  (`attention_implementation`: cuDNN's fused attention checks for cuDNN while tracing, so it
  cannot sit in a `platform_dependent` branch of a program traced on a CPU host).
"""

import contextlib
import contextvars

import jax
import jax.numpy as jnp

PLATFORMS = ("cpu", "cuda", "rocm", "tpu")
ATTENTION = ("auto", "xla", "cudnn")

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


def cudnn_attention_head_dim() -> int | None:
    """The largest head dim cuDNN's fused attention takes on this host (256 from Hopper on,
    128 before: JAX's `check_is_flash_attention`), or None where the host has no CUDA GPU with
    cuDNN, so nothing traced here can call it."""
    device = jax.devices()[0]
    if device.platform != "gpu" or "cuda" not in device.client.platform_version.lower():
        return None
    try:
        from jax._src.lib import cuda_versions
    except ImportError:
        return None
    if cuda_versions is None:
        return None
    major = int(str(getattr(device, "compute_capability", "0")).split(".")[0])
    return 256 if major >= 9 else 128


def attention_implementation(name: str, dtype, head_dim: int, *,
                             cudnn_head_dim: int | None | str = "host") -> str:
    """"xla" or "cudnn": the kernel of one attention layer computing in `dtype` with heads of
    `head_dim`, for the config value `name`:

    - "xla": XLA's attention (softmax of the scaled logits, fused by XLA), on every platform.
    - "cudnn": cuDNN's fused (flash) attention; an error unless the target is CUDA, this host
      can trace it, and the layer computes in bfloat16/float16 with a head dim that is a
      multiple of 8 and at most the device's limit.
    - "auto": cuDNN where "cudnn" would be accepted, XLA elsewhere (CPU and TPU, float32
      compute, a layer upcast to float32, and programs exported for CUDA from a host without
      a GPU).

    `cudnn_head_dim`: the host's limit (`cudnn_attention_head_dim()` by default; None where it
    cannot trace cuDNN)."""
    if name not in ATTENTION:
        raise ValueError(f"attention_implementation must be one of {', '.join(ATTENTION)}, "
                         f"got {name!r}")
    if name == "xla":
        return "xla"
    if cudnn_head_dim == "host":
        cudnn_head_dim = cudnn_attention_head_dim()
    reasons = []
    if current() != "cuda":
        reasons.append(f"programs are being built for {current()}, not cuda")
    elif cudnn_head_dim is None:
        reasons.append("this host has no CUDA GPU with cuDNN to trace it")
    if jnp.dtype(dtype) not in (jnp.dtype(jnp.bfloat16), jnp.dtype(jnp.float16)):
        reasons.append(f"it computes in bfloat16 or float16, not {jnp.dtype(dtype).name}")
    limit = cudnn_head_dim if isinstance(cudnn_head_dim, int) else 256
    if head_dim % 8 or head_dim > limit:
        reasons.append(f"its head dim must be a multiple of 8 and at most {limit}, "
                       f"not {head_dim}")
    if not reasons:
        return "cudnn"
    if name == "cudnn":
        raise ValueError("attention_implementation='cudnn' cannot be used: "
                         + "; ".join(reasons) + " (use 'auto' or 'xla')")
    return "xla"
