"""The attention kernel: a config value resolved per target platform and layer.

On this CPU host every layer computes XLA's attention; the rules that pick cuDNN's fused
kernel on a CUDA GPU are checked here with the host's cuDNN limit given, and a layer set to
cuDNN is shown to reach `jax.nn.dot_product_attention` with it (tracing it here fails, since
JAX looks for cuDNN while tracing).
"""

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from flax import nnx

from jaxgen import platforms
from jaxgen.models.layers import Attention, attention_kernels, use_attention
from jaxgen.models.unet import UNet

BF16, F32 = jnp.bfloat16, jnp.float32


@pytest.mark.parametrize("name, target, dtype, head_dim, cudnn_limit, expected", [
    ("auto", "cuda", BF16, 64, 256, "cudnn"),
    ("auto", "cuda", jnp.float16, 40, 128, "cudnn"),   # SD 1.5's first level
    ("auto", "cuda", BF16, 160, 256, "cudnn"),         # SD 1.5's deepest level on Hopper
    ("auto", "cuda", BF16, 160, 128, "xla"),           # ... before Hopper
    ("auto", "cuda", BF16, 12, 256, "xla"),            # not a multiple of 8
    ("auto", "cuda", F32, 64, 256, "xla"),             # cuDNN's kernel is half precision
    ("auto", "cuda", BF16, 64, None, "xla"),           # exported for CUDA from a CPU host
    ("auto", "tpu", BF16, 64, None, "xla"),
    ("auto", "cpu", F32, 64, None, "xla"),
    ("xla", "cuda", BF16, 64, 256, "xla"),
    ("cudnn", "cuda", BF16, 64, 256, "cudnn"),
])
def test_the_kernel_is_chosen_for_the_target(name, target, dtype, head_dim, cudnn_limit,
                                             expected):
    with platforms.target(target):
        assert platforms.attention_implementation(
            name, dtype, head_dim, cudnn_head_dim=cudnn_limit) == expected


@pytest.mark.parametrize("target, dtype, head_dim, cudnn_limit, reason", [
    ("cuda", BF16, 64, None, "no CUDA GPU with cuDNN"),
    ("tpu", BF16, 64, None, "built for tpu, not cuda"),
    ("cuda", F32, 64, 256, "bfloat16 or float16, not float32"),
    ("cuda", BF16, 36, 256, "multiple of 8 and at most 256, not 36"),
])
def test_cudnn_asked_where_it_cannot_run_is_one_clear_error(target, dtype, head_dim,
                                                           cudnn_limit, reason):
    with platforms.target(target), pytest.raises(ValueError, match=reason):
        platforms.attention_implementation("cudnn", dtype, head_dim,
                                           cudnn_head_dim=cudnn_limit)
    with pytest.raises(ValueError, match="one of auto, xla, cudnn"):
        platforms.attention_implementation("flash", dtype, head_dim)


def _sd_like_unet(dtype, upcast=False):
    """A small U-Net with Stable Diffusion's transformer blocks (14 attention layers: self-
    and cross-attention in 7 blocks), heads of 8 channels at both levels."""
    return nnx.eval_shape(lambda: UNet(
        data_shape=(16, 16, 4), channels=32, channel_mults=(1, 2), num_res_blocks=1,
        attention_resolutions=(16, 8), num_heads=-1, head_channels=8, context_dim=16,
        attention="transformer", upcast_attention=upcast, dtype=dtype, rngs=nnx.Rngs(0)))


def test_use_attention_sets_every_layer(monkeypatch):
    assert attention_kernels(use_attention(_sd_like_unet(F32), "auto")) == {"xla": 14}
    with platforms.target("cuda"):  # this host cannot trace cuDNN: XLA, or a clear error
        assert attention_kernels(use_attention(_sd_like_unet(BF16), "auto")) == {"xla": 14}
        with pytest.raises(ValueError, match="no CUDA GPU"):
            use_attention(_sd_like_unet(BF16), "cudnn")
        # On a CUDA host: every bf16 layer takes cuDNN, an upcast (float32) model none
        monkeypatch.setattr(platforms, "cudnn_attention_head_dim", lambda: 256)
        assert attention_kernels(use_attention(_sd_like_unet(BF16), "auto")) == {"cudnn": 14}
        assert attention_kernels(use_attention(_sd_like_unet(BF16, upcast=True),
                                               "auto")) == {"xla": 14}
        assert attention_kernels(use_attention(_sd_like_unet(BF16), "xla")) == {"xla": 14}


def test_xla_attention_is_the_softmax_formula_and_cudnn_reaches_the_kernel():
    layer = Attention(16, 8, num_heads=2, rngs=nnx.Rngs(0))
    rng = np.random.default_rng(0)
    x = rng.normal(size=(2, 5, 16)).astype(np.float32)
    context = rng.normal(size=(2, 3, 8)).astype(np.float32)
    mask = rng.random((2, 1, 5, 3)) > 0.3
    mask[..., 0] = True  # every query sees a key

    def heads(t):
        return np.asarray(t).reshape(*t.shape[:2], 2, 8).transpose(0, 2, 1, 3)

    q, k, v = heads(layer.query(x)), heads(layer.key(context)), heads(layer.value(context))
    logits = np.where(mask, q @ k.transpose(0, 1, 3, 2) / np.sqrt(8), -np.inf)
    weights = np.exp(logits - logits.max(-1, keepdims=True))
    weights /= weights.sum(-1, keepdims=True)
    expected = layer.out(jnp.asarray((weights @ v).transpose(0, 2, 1, 3).reshape(2, 5, 16)))
    np.testing.assert_allclose(layer(x, context, mask), expected, atol=1e-5)

    half = Attention(16, 8, num_heads=2, dtype=BF16, rngs=nnx.Rngs(0))
    half.implementation = "cudnn"  # what use_attention sets on a CUDA host
    with pytest.raises(Exception, match="cuDNN"):
        jax.jit(lambda x, c: half(x, c))(x, context)
