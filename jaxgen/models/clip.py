"""CLIP-style encoders (Radford et al. 2021): a small transformer text encoder over the byte
tokens of `jaxgen.data.text` (re-exported here), a convolutional image encoder, and the pair
with its learnable logit scale.

The text encoder returns both the pooled, projected embedding (for the contrastive loss and
zero-shot classification) and the per-token features (the context a denoiser cross-attends to
in latent diffusion, as Stable Diffusion uses CLIP's last hidden states).
"""

import jax
import jax.numpy as jnp
from flax import nnx

from jaxgen.data.text import BOS, EOS, PAD, VOCAB_SIZE, detokenize, tokenize
from jaxgen.models.layers import Attention

__all__ = ["BOS", "CLIP", "EOS", "PAD", "VOCAB_SIZE", "ImageEncoder", "TextEncoder",
           "detokenize", "tokenize"]

class _Block(nnx.Module):
    """Pre-LayerNorm transformer block: self-attention, then a GELU MLP, each residual."""

    def __init__(self, width: int, num_heads: int, mlp_ratio: float, dtype, rngs: nnx.Rngs):
        self.norm1 = nnx.LayerNorm(width, dtype=dtype, rngs=rngs)
        self.attn = Attention(width, width, num_heads, dtype=dtype, rngs=rngs)
        self.norm2 = nnx.LayerNorm(width, dtype=dtype, rngs=rngs)
        hidden = int(width * mlp_ratio)
        self.fc1 = nnx.Linear(width, hidden, dtype=dtype, rngs=rngs)
        self.fc2 = nnx.Linear(hidden, width, dtype=dtype, rngs=rngs)

    def __call__(self, x, mask):
        h = self.norm1(x)
        x = x + self.attn(h, h, mask=mask)
        return x + self.fc2(nnx.gelu(self.fc1(self.norm2(x))))


class TextEncoder(nnx.Module):
    """Tokens [B, T] -> (embedding [B, embed_dim], token features [B, T, width]).

    Bidirectional attention over the non-padding tokens; the embedding is the projection of
    the EOS token's final feature (CLIP pools at EOS), so padding never changes it.
    """

    def __init__(self, width: int = 128, depth: int = 4, num_heads: int = 4,
                 max_length: int = 64, embed_dim: int = 64, mlp_ratio: float = 4.0, *,
                 dtype=jnp.float32, rngs: nnx.Rngs):
        self.max_length = max_length
        self.token_embed = nnx.Embed(VOCAB_SIZE, width, dtype=dtype, rngs=rngs)
        self.position_embed = nnx.Param(0.01 * jax.random.normal(rngs.params(),
                                                                 (max_length, width)))
        self.blocks = nnx.List([_Block(width, num_heads, mlp_ratio, dtype, rngs)
                                for _ in range(depth)])
        self.norm = nnx.LayerNorm(width, dtype=dtype, rngs=rngs)
        self.project = nnx.Linear(width, embed_dim, use_bias=False, dtype=dtype, rngs=rngs)

    def __call__(self, tokens: jax.Array) -> tuple[jax.Array, jax.Array]:
        if tokens.ndim != 2 or tokens.shape[1] > self.max_length:
            raise ValueError(f"tokens must be [B, T <= {self.max_length}], got {tokens.shape}")
        valid = tokens != PAD
        x = self.token_embed(tokens) + self.position_embed[: tokens.shape[1]].astype(
            self.token_embed.dtype or jnp.float32)
        mask = valid[:, None, None, :]  # [B, heads, T, S]: attend to real tokens only
        for block in self.blocks:
            x = block(x, mask)
        features = self.norm(x)
        eos = jnp.argmax(tokens == EOS, axis=1)
        pooled = jnp.take_along_axis(features, eos[:, None, None], axis=1)[:, 0]
        return self.project(pooled).astype(jnp.float32), features


class ImageEncoder(nnx.Module):
    """Images [B, H, W, C] in [-1, 1] -> embedding [B, embed_dim]: strided 3x3 convolutions
    with GroupNorm and SiLU, global average pooling, a linear projection. `features` is the
    pooled vector before the projection (what a linear probe reads)."""

    def __init__(self, in_channels: int = 1, channels=(32, 64, 128), embed_dim: int = 64, *,
                 dtype=jnp.float32, rngs: nnx.Rngs):
        convs, norms, cin = [], [], in_channels
        for i, cout in enumerate(channels):
            convs.append(nnx.Conv(cin, cout, (3, 3), strides=1 if i == 0 else 2, dtype=dtype,
                                  rngs=rngs))
            norms.append(nnx.GroupNorm(cout, num_groups=min(8, cout), dtype=dtype, rngs=rngs))
            cin = cout
        self.convs, self.norms = nnx.List(convs), nnx.List(norms)
        self.project = nnx.Linear(cin, embed_dim, use_bias=False, dtype=dtype, rngs=rngs)

    def features(self, images: jax.Array) -> jax.Array:
        h = images.astype(self.convs[0].dtype or jnp.float32)
        for conv, norm in zip(self.convs, self.norms, strict=True):
            h = nnx.silu(norm(conv(h)))
        return jnp.mean(h, axis=(1, 2)).astype(jnp.float32)

    def __call__(self, images: jax.Array) -> jax.Array:
        return self.project(self.features(images)).astype(jnp.float32)


class CLIP(nnx.Module):
    """The two towers, a learnable log logit scale and a bias (used by the sigmoid loss only),
    started as their papers do: scale 1 / 0.07 for CLIP's softmax loss, scale 10 and bias -10
    for SigLIP's sigmoid loss."""

    def __init__(self, text: TextEncoder, image: ImageEncoder, loss: str = "clip"):
        if loss not in ("clip", "siglip"):
            raise ValueError(f"loss must be 'clip' or 'siglip', got {loss!r}")
        self.text = text
        self.image = image
        self.log_scale = nnx.Param(jnp.log(jnp.float32(1 / 0.07 if loss == "clip" else 10.0)))
        self.bias = nnx.Param(jnp.float32(-10.0))

    def __call__(self, images: jax.Array, tokens: jax.Array) -> tuple[jax.Array, jax.Array]:
        return self.image(images), self.text(tokens)[0]
