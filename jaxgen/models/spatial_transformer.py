"""Stable Diffusion's attention block for U-Nets (Rombach et al. 2022; diffusers'
`Transformer2DModel` over continuous inputs): GroupNorm, a projection in (1x1 conv, or a
linear layer in SD 2.x), `depth` transformer layers over the H*W positions, a projection out,
and the residual.

Each layer is pre-norm (LayerNorm, eps 1e-5): self-attention, cross-attention to the context
(text tokens), and a GEGLU feed-forward (Shazeer 2020: a linear layer to 2 x 4C, one half
times the exact GELU of the other, a linear layer back), each added to its input. Query, key
and value have no bias.
"""

import jax
import jax.numpy as jnp
from flax import nnx

from jaxgen.models.layers import Attention


class GEGLU(nnx.Module):
    def __init__(self, channels: int, mult: int = 4, *, dtype, rngs: nnx.Rngs):
        self.proj = nnx.Linear(channels, 2 * mult * channels, dtype=dtype, rngs=rngs)
        self.out = nnx.Linear(mult * channels, channels, dtype=dtype, rngs=rngs)

    def __call__(self, x):
        hidden, gate = jnp.split(self.proj(x), 2, axis=-1)
        return self.out(hidden * jax.nn.gelu(gate, approximate=False))


class TransformerLayer(nnx.Module):
    def __init__(self, channels: int, context_dim: int, num_heads: int, *, upcast: bool,
                 dtype, rngs: nnx.Rngs):
        def norm():
            return nnx.LayerNorm(channels, epsilon=1e-5, dtype=dtype, rngs=rngs)

        self.norm1, self.norm2, self.norm3 = norm(), norm(), norm()
        self.attn1 = Attention(channels, channels, num_heads, qkv_bias=False, upcast=upcast,
                               dtype=dtype, rngs=rngs)
        self.attn2 = Attention(channels, context_dim, num_heads, qkv_bias=False, upcast=upcast,
                               dtype=dtype, rngs=rngs)
        self.ff = GEGLU(channels, dtype=dtype, rngs=rngs)

    def __call__(self, tokens, context):
        normed = self.norm1(tokens)
        tokens = tokens + self.attn1(normed, normed)
        tokens = tokens + self.attn2(self.norm2(tokens), context)
        return tokens + self.ff(self.norm3(tokens))


class SpatialTransformer(nnx.Module):
    """x [B, H, W, C], context [B, L, D] -> [B, H, W, C]."""

    def __init__(self, channels: int, context_dim: int, num_heads: int, *, depth: int = 1,
                 linear_projection: bool = False, upcast: bool = False, norm_groups: int = 32,
                 dtype=jnp.float32, rngs: nnx.Rngs):
        if not context_dim:
            raise ValueError("a spatial transformer cross-attends: give context_dim")
        self.norm = nnx.GroupNorm(channels, num_groups=norm_groups, epsilon=1e-6, dtype=dtype,
                                  rngs=rngs)

        def projection():
            if linear_projection:
                return nnx.Linear(channels, channels, dtype=dtype, rngs=rngs)
            return nnx.Conv(channels, channels, (1, 1), dtype=dtype, rngs=rngs)

        self.proj_in, self.proj_out = projection(), projection()
        self.layers = nnx.List([TransformerLayer(channels, context_dim, num_heads,
                                                 upcast=upcast, dtype=dtype, rngs=rngs)
                                for _ in range(depth)])

    def __call__(self, x, context=None):
        if context is None:
            raise ValueError("this U-Net cross-attends to a context: pass `context`")
        b, h, w, c = x.shape
        # A 1x1 conv and a linear layer are the same map on NHWC tokens; only their
        # parameters' shapes differ (SD 1.x stores convs, SD 2.x linear layers).
        tokens = self.proj_in(self.norm(x)).reshape(b, h * w, c)
        for layer in self.layers:
            tokens = layer(tokens, context.astype(tokens.dtype))
        return self.proj_out(tokens.reshape(b, h, w, c)) + x
