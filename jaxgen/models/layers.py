"""Layers shared by the models.

`ConvTranspose` is `nnx.ConvTranspose` (same parameters, same results) with a second way to
compute a strided "SAME" transposed convolution: as one stride-1 convolution to `s * s * C_out`
channels followed by a depth-to-space shuffle (the sub-pixel form, Shi et al. 2016). XLA's CPU
backend is slow at the kernel gradient of `lax.conv_transpose`: for the DCGAN generator's
64 -> 32 channel layer at batch 64, both gradients took 1.25 s natively against 0.47 s in
sub-pixel form on one core. So on CPU the sub-pixel form is the default; on GPU and TPU the
native op is used.

`timestep_embedding`, `condition_embedding` and `Attention` are the pieces every denoiser
shares (U-Net, DiT).
"""

import collections

import jax
import jax.numpy as jnp
import numpy as np
from flax import nnx

from jaxgen import platforms


def timestep_embedding(time: jax.Array, dim: int, max_period: float = 10000.0, *,
                       freq_shift: float = 1.0, flip_sin_to_cos: bool = False) -> jax.Array:
    """[B] float times -> [B, dim] sinusoidal features (Vaswani et al. 2017). The default is
    DDPM's code: sines then cosines, frequencies max_period^(-i / (half - 1)), from 1 down to
    1 / max_period. diffusers names the two choices: `freq_shift` s divides by half - s
    (Stable Diffusion's U-Net: 0), `flip_sin_to_cos` puts the cosines first (SD: True)."""
    half = dim // 2
    freqs = jnp.exp(-np.log(max_period) * jnp.arange(half, dtype=jnp.float32)
                    / (half - freq_shift))
    args = jnp.asarray(time, jnp.float32)[:, None] * freqs[None]
    waves = [jnp.cos(args), jnp.sin(args)] if flip_sin_to_cos else [jnp.sin(args), jnp.cos(args)]
    return jnp.pad(jnp.concatenate(waves, axis=-1), ((0, 0), (0, dim % 2)))


def condition_embedding(time_mlp, class_embed, time: jax.Array, labels: jax.Array | None, *,
                        num_features: int, null_class: int, dtype,
                        freq_shift: float = 1.0, flip_sin_to_cos: bool = False) -> jax.Array:
    """A denoiser's conditioning vector [B, D]: the two-layer SiLU MLP `time_mlp` of the
    `num_features` sinusoidal features of `time` [B] (DDPM's, DiT's), plus the embedding
    `class_embed` of `labels` [B] in a class-conditional model (None: the null class, index
    `null_class`, the unconditional half of classifier-free guidance). `freq_shift` and
    `flip_sin_to_cos`: see `timestep_embedding`."""
    emb = timestep_embedding(time, num_features, freq_shift=freq_shift,
                             flip_sin_to_cos=flip_sin_to_cos).astype(dtype)
    emb = time_mlp[1](nnx.silu(time_mlp[0](emb)))
    if class_embed is not None:
        if labels is None:
            labels = jnp.full(time.shape, null_class)
        emb = emb + class_embed(labels)
    return emb


class Attention(nnx.Module):
    """Multi-head attention of `x` [B, T, C] to `context` [B, S, D] (self-attention when
    context is x): query, key, value and output projections (the first three without a bias
    when `qkv_bias` is False, as Stable Diffusion's), and `jax.nn.dot_product_attention` with
    the kernel named by `implementation`: "xla" (the default) or "cudnn" (the fused kernel;
    `use_attention` sets it on a whole model from the config). `upcast`: logits and softmax
    in float32 whatever the compute dtype (diffusers' `upcast_attention`, SD 2.1's)."""

    def __init__(self, channels: int, context_dim: int, num_heads: int = 1, *,
                 qkv_bias: bool = True, upcast: bool = False, dtype=jnp.float32,
                 rngs: nnx.Rngs):
        if channels % num_heads:
            raise ValueError(f"{channels} channels do not split into {num_heads} heads")
        self.num_heads, self.upcast = num_heads, upcast
        self.head_dim, self.dtype, self.implementation = channels // num_heads, dtype, "xla"
        self.query = nnx.Linear(channels, channels, use_bias=qkv_bias, dtype=dtype, rngs=rngs)
        self.key = nnx.Linear(context_dim, channels, use_bias=qkv_bias, dtype=dtype, rngs=rngs)
        self.value = nnx.Linear(context_dim, channels, use_bias=qkv_bias, dtype=dtype,
                                rngs=rngs)
        self.out = nnx.Linear(channels, channels, dtype=dtype, rngs=rngs)

    def __call__(self, x: jax.Array, context: jax.Array, mask: jax.Array | None = None
                 ) -> jax.Array:
        """`mask`: bool, broadcastable to [B, heads, T, S], True where x may attend."""
        def heads(t):
            return t.reshape(*t.shape[:2], self.num_heads, -1)

        q, k, v = heads(self.query(x)), heads(self.key(context)), heads(self.value(context))
        k, v = k.astype(q.dtype), v.astype(q.dtype)
        if self.upcast and q.dtype != jnp.float32:
            up = (q.astype(jnp.float32), k.astype(jnp.float32), v.astype(jnp.float32))
            out = jax.nn.dot_product_attention(*up, mask=mask,
                                               implementation="xla").astype(v.dtype)
        else:
            out = jax.nn.dot_product_attention(q, k, v, mask=mask,
                                               implementation=self.implementation)
        return self.out(out.reshape(x.shape[0], x.shape[1], -1))


def use_attention(model: nnx.Module, name: str) -> nnx.Module:
    """Sets the kernel of every `Attention` in `model` from the config value `name` ("auto",
    "xla" or "cudnn"; `platforms.attention_implementation` resolves it per layer for the
    target platform) and returns the model. Call it where the model is built, before its
    graphdef is taken."""
    for _, module in nnx.iter_graph(model):
        if isinstance(module, Attention):
            dtype = jnp.float32 if module.upcast else module.dtype
            module.implementation = platforms.attention_implementation(name, dtype,
                                                                       module.head_dim)
    return model


def attention_kernels(model: nnx.Module) -> dict[str, int]:
    """How many attention layers of `model` use each kernel, e.g. {"cudnn": 16}."""
    return dict(collections.Counter(module.implementation for _, module in nnx.iter_graph(model)
                                    if isinstance(module, Attention)))


def _subpixel_taps(kernel: int, stride: int) -> tuple[np.ndarray, int, int]:
    """For each output phase r (output index s*m + r) and each input offset d in
    [lo, hi], the kernel tap that multiplies input m + d, or `kernel` (a zero tap) if none.

    `lax.conv_transpose(padding="SAME")` dilates the input by `stride` and pads it by
    (pad_a, pad_b) before a stride-1 correlation; output s*m + r reads dilated index
    s*m + r + j - pad_a, which is input m + (r + j - pad_a) / s when divisible.
    """
    pad_len = kernel + stride - 2
    pad_a = kernel - 1 if stride > kernel - 1 else -(-pad_len // 2)
    pairs = [(r, (r + j - pad_a) // stride, j) for r in range(stride) for j in range(kernel)
             if (r + j - pad_a) % stride == 0]
    lo, hi = min(d for _, d, _ in pairs), max(d for _, d, _ in pairs)
    taps = np.full((stride, hi - lo + 1), kernel)
    for r, d, j in pairs:
        taps[r, d - lo] = j
    return taps, lo, hi


def subpixel_conv_transpose(x: jax.Array, kernel: jax.Array, strides: tuple[int, int],
                            precision=None) -> jax.Array:
    """`lax.conv_transpose(x, kernel, strides, "SAME")` for NHWC `x` and HWIO `kernel`,
    computed as a stride-1 convolution and a depth-to-space shuffle."""
    (kh, kw, c_in, c_out), (sh, sw) = kernel.shape, strides
    taps_h, lo_h, hi_h = _subpixel_taps(kh, sh)
    taps_w, lo_w, hi_w = _subpixel_taps(kw, sw)
    padded = jnp.pad(kernel, ((0, 1), (0, 1), (0, 0), (0, 0)))  # index kh / kw is a zero tap
    # [taps_h, taps_w, sh, sw, c_in, c_out] -> [taps_h, taps_w, c_in, sh * sw * c_out]
    sub = padded[taps_h.T[:, None, :, None], taps_w.T[None, :, None, :]]
    sub = sub.transpose(0, 1, 4, 2, 3, 5).reshape(*sub.shape[:2], c_in, sh * sw * c_out)
    y = jax.lax.conv_general_dilated(
        x, sub, (1, 1), ((-lo_h, hi_h), (-lo_w, hi_w)),
        dimension_numbers=("NHWC", "HWIO", "NHWC"), precision=precision)
    n, h, w, _ = y.shape
    y = y.reshape(n, h, w, sh, sw, c_out).transpose(0, 1, 3, 2, 4, 5)
    return y.reshape(n, h * sh, w * sw, c_out)


class ConvTranspose(nnx.ConvTranspose):
    """`nnx.ConvTranspose` that computes strided 2-D "SAME" transposes in sub-pixel form where
    that is faster. `impl`: "auto" (sub-pixel in programs lowered for the CPU, native in those
    for an accelerator: `jax.lax.platform_dependent`), "subpixel" or "native". Parameters,
    initialisers and results are those of `nnx.ConvTranspose`."""

    def __init__(self, *args, impl: str = "auto", **kwargs):
        if impl not in ("auto", "subpixel", "native"):
            raise ValueError(f"impl must be 'auto', 'subpixel' or 'native', got {impl!r}")
        super().__init__(*args, **kwargs)
        self.impl = impl

    def _subpixel_applies(self, inputs: jax.Array) -> bool:
        dilation = self.kernel_dilation
        return (self.impl != "native" and inputs.ndim == 4 and len(self.kernel_size) == 2
                and self.padding == "SAME" and not self.transpose_kernel and self.mask is None
                and dilation in (None, 1, (1, 1)))

    def __call__(self, inputs: jax.Array) -> jax.Array:
        if not self._subpixel_applies(inputs):
            return super().__call__(inputs)
        if self.impl == "auto":  # chosen per lowering platform, not by the host's backend
            return jax.lax.platform_dependent(inputs, cpu=self._subpixel,
                                              default=super().__call__)
        return self._subpixel(inputs)

    def _subpixel(self, inputs: jax.Array) -> jax.Array:
        strides = self.strides if isinstance(self.strides, tuple | list) else (self.strides,) * 2
        bias = self.bias[...] if self.bias is not None else None
        inputs, kernel, bias = self.promote_dtype(
            (inputs, self.kernel[...], bias), dtype=self.dtype)
        y = subpixel_conv_transpose(inputs, kernel, tuple(strides), self.precision)
        if bias is not None:
            y = y + bias
        return y
