"""The Diffusion Transformer (Flax NNX) of Peebles & Xie 2023, "Scalable Diffusion Models with
Transformers": the image is cut into patch x patch tokens by a strided convolution, given fixed
2-D sin-cos position embeddings, and run through transformer blocks conditioned by adaLN-Zero
(every LayerNorm's shift and scale, and a gate on every residual branch, regressed from the
time + class embedding, that regression zero-initialised so each block starts as the identity);
a final adaLN-modulated LayerNorm and linear layer give patch * patch * C_out values per token,
which are folded back into an image. With `context_dim` each block also cross-attends to a
context sequence (text tokens), after self-attention, as PixArt-alpha (Chen et al. 2023) does.

Every denoiser here has one call: `model(x [B, H, W, C], time [B], labels [B] | None,
context [B, L, D] | None, dropout_key=None) -> [B, H, W, C_out]`. `time` is a float: the
training timestep for discrete schedules, 1000 t for flow matching. Dropout is active exactly
when a `dropout_key` is given, so the model holds no random state and stays a pure function of
its parameters.

`DiT(data_shape=(32, 32, 4), num_classes=1000, out_channels=8, **DIT_XL2)` is the paper's
ImageNet-256 latent model (sigma learned, hence 8 output channels), 674,834,720 parameters: the
paper's 675M, whose official count of 675,129,632 includes the 256 x 1152 fixed position
embedding that is a constant here.
"""

import functools

import jax
import jax.numpy as jnp
import numpy as np
from flax import nnx

from jaxgen.models.layers import Attention, condition_embedding

# Peebles & Xie 2023, table 1 (the /2 models: patch size 2).
DIT_S2 = dict(patch_size=2, hidden=384, depth=12, num_heads=6)
DIT_B2 = dict(patch_size=2, hidden=768, depth=12, num_heads=12)
DIT_L2 = dict(patch_size=2, hidden=1024, depth=24, num_heads=16)
DIT_XL2 = dict(patch_size=2, hidden=1152, depth=28, num_heads=16)

TIME_FEATURES = 256  # DiT's frequency_embedding_size


@functools.lru_cache(maxsize=16)
def sincos_pos_embed(dim: int, grid_h: int, grid_w: int) -> np.ndarray:
    """[grid_h * grid_w, dim] fixed position embeddings, tokens in row-major order: the first
    half of the features encodes the column, the second half the row, each as sines then cosines
    at frequencies 1 down to 1 / 10000 (DiT's and MAE's get_2d_sincos_pos_embed, extended to
    non-square grids)."""
    if dim % 4:
        raise ValueError(f"2-D sin-cos position embeddings need a width divisible by 4, got {dim}")
    omega = 1.0 / 10000 ** (np.arange(dim // 4, dtype=np.float64) / (dim // 4))
    rows, cols = np.meshgrid(np.arange(grid_h), np.arange(grid_w), indexing="ij")

    def axis(positions):
        angles = positions.reshape(-1)[:, None] * omega[None]
        return np.concatenate([np.sin(angles), np.cos(angles)], axis=1)

    embed = np.concatenate([axis(cols), axis(rows)], axis=1).astype(np.float32)
    embed.flags.writeable = False  # shared by the cache
    return embed


def _linear(cin, cout, dtype, rngs, zero=False):
    # DiT initialises every linear layer it owns Xavier-uniform with zero bias.
    init = nnx.initializers.zeros_init() if zero else nnx.initializers.xavier_uniform()
    return nnx.Linear(cin, cout, kernel_init=init, dtype=dtype, rngs=rngs)


def _layer_norm(hidden, dtype, rngs):
    # No affine parameters: adaLN supplies the shift and scale.
    return nnx.LayerNorm(hidden, epsilon=1e-6, use_bias=False, use_scale=False, dtype=dtype,
                         rngs=rngs)


def _cross_attention(hidden, context_dim, num_heads, dtype, rngs):
    attention = Attention(hidden, context_dim, num_heads, dtype=dtype, rngs=rngs)
    # PixArt-alpha zero-initialises the cross-attention output, keeping the block the identity at
    # init whatever the context.
    attention.out = _linear(hidden, hidden, dtype, rngs, zero=True)
    return attention


def _modulate(x, shift, scale):
    return x * (1 + scale[:, None]) + shift[:, None]


class DiTBlock(nnx.Module):
    """Self-attention and an MLP, each behind an adaLN-modulated LayerNorm and a gated residual
    (Peebles & Xie 2023, fig. 3, adaLN-Zero), with a cross-attention residual between them when
    built with `context_dim`."""

    def __init__(self, hidden, num_heads, mlp_ratio, context_dim, dropout, dtype, rngs):
        self.adaln = _linear(hidden, 6 * hidden, dtype, rngs, zero=True)
        self.norm1 = _layer_norm(hidden, dtype, rngs)
        self.attn = Attention(hidden, hidden, num_heads, dtype=dtype, rngs=rngs)
        # Assigned once: NNX fixes an attribute as data or static on its first assignment.
        self.cross_norm = (nnx.LayerNorm(hidden, epsilon=1e-6, dtype=dtype, rngs=rngs)
                           if context_dim else None)
        self.cross_attn = (_cross_attention(hidden, context_dim, num_heads, dtype, rngs)
                           if context_dim else None)
        self.norm2 = _layer_norm(hidden, dtype, rngs)
        mlp_hidden = int(hidden * mlp_ratio)
        self.fc1 = _linear(hidden, mlp_hidden, dtype, rngs)
        self.dropout = nnx.Dropout(dropout)
        self.fc2 = _linear(mlp_hidden, hidden, dtype, rngs)

    def __call__(self, tokens, cond, context=None, dropout_key=None):
        shift_attn, scale_attn, gate_attn, shift_mlp, scale_mlp, gate_mlp = jnp.split(
            self.adaln(nnx.silu(cond)), 6, axis=-1)
        normed = _modulate(self.norm1(tokens), shift_attn, scale_attn)
        tokens = tokens + gate_attn[:, None] * self.attn(normed, normed)
        if self.cross_attn is not None:
            if context is None:
                raise ValueError("this DiT was built with context_dim: pass `context`")
            tokens = tokens + self.cross_attn(self.cross_norm(tokens), context)
        h = jax.nn.gelu(self.fc1(_modulate(self.norm2(tokens), shift_mlp, scale_mlp)),
                        approximate=True)
        h = self.dropout(h, deterministic=dropout_key is None, rngs=dropout_key)
        return tokens + gate_mlp[:, None] * self.fc2(h)


class FinalLayer(nnx.Module):
    """adaLN-modulated LayerNorm, then a zero-initialised linear map to patch * patch * C_out
    values per token, so the model predicts exactly zero at init."""

    def __init__(self, hidden, patch_values, dtype, rngs):
        self.adaln = _linear(hidden, 2 * hidden, dtype, rngs, zero=True)
        self.norm = _layer_norm(hidden, dtype, rngs)
        self.linear = _linear(hidden, patch_values, dtype, rngs, zero=True)

    def __call__(self, tokens, cond):
        shift, scale = jnp.split(self.adaln(nnx.silu(cond)), 2, axis=-1)
        return self.linear(_modulate(self.norm(tokens), shift, scale))


class DiT(nnx.Module):
    """The Diffusion Transformer: patch tokens through adaLN-Zero blocks, folded back into an
    image (see the module docstring).

    Args:
        data_shape: (H, W, C) of the inputs; H and W divisible by `patch_size`.
        patch_size: side of the square patches that become tokens ((H / p) * (W / p) tokens).
        hidden: token width; divisible by 4 (position embeddings) and by `num_heads`.
        depth: number of DiT blocks.
        num_heads: attention heads.
        mlp_ratio: MLP width over `hidden`.
        num_classes: 0 for unconditional; else labels in [0, K) and K is the null class.
        context_dim: width of the cross-attention context (0: no cross-attention).
        dropout: rate of dropout after each MLP's activation.
        out_channels: default C (a prediction the shape of the input); 2C to also learn the
            variance, as the paper does.
    """

    def __init__(self, data_shape, patch_size=2, hidden=384, depth=12, num_heads=6,
                 mlp_ratio=4.0, num_classes=0, context_dim=0, dropout=0.0, out_channels=None,
                 *, dtype=jnp.float32, rngs: nnx.Rngs):
        height, width, in_channels = data_shape
        if height % patch_size or width % patch_size:
            raise ValueError(f"a DiT with patch_size {patch_size} cuts the image into "
                             f"{patch_size}x{patch_size} patches: {height}x{width} is not "
                             f"divisible by {patch_size}; pick a patch size that divides both "
                             "sides or pad the data")
        if hidden % 4:
            raise ValueError(f"DiT's 2-D sin-cos position embeddings need hidden divisible by 4, "
                             f"got {hidden}")
        self.data_shape, self.patch_size, self.hidden = tuple(data_shape), patch_size, hidden
        self.num_classes, self.dtype = num_classes, dtype
        self.out_channels = out_channels or in_channels
        # DiT initialises the patch embedding Xavier-uniform over the flattened [p*p*C, hidden].
        self.patch_embed = nnx.Conv(
            in_channels, hidden, (patch_size, patch_size), strides=(patch_size, patch_size),
            padding="VALID", kernel_init=nnx.initializers.xavier_uniform(in_axis=(0, 1, 2)),
            dtype=dtype, rngs=rngs)
        # DiT's timestep and label embedders: normal(0.02) weights.
        normal = nnx.initializers.normal(0.02)
        self.time_mlp = nnx.List([
            nnx.Linear(TIME_FEATURES, hidden, kernel_init=normal, dtype=dtype, rngs=rngs),
            nnx.Linear(hidden, hidden, kernel_init=normal, dtype=dtype, rngs=rngs)])
        self.class_embed = (nnx.Embed(num_classes + 1, hidden, embedding_init=normal,
                                      dtype=dtype, rngs=rngs) if num_classes else None)
        self.blocks = nnx.List([
            DiTBlock(hidden, num_heads, mlp_ratio, context_dim, dropout, dtype, rngs)
            for _ in range(depth)])
        self.final = FinalLayer(hidden, patch_size * patch_size * self.out_channels, dtype, rngs)

    def embed(self, time, labels):
        """The conditioning vector c [B, hidden]: time embedding plus label embedding."""
        return condition_embedding(self.time_mlp, self.class_embed, time, labels,
                                   num_features=TIME_FEATURES, null_class=self.num_classes,
                                   dtype=self.dtype)

    def __call__(self, x, time, labels=None, context=None, *, dropout_key=None):
        if tuple(x.shape[1:]) != self.data_shape:
            raise ValueError(f"the DiT takes images of shape {list(self.data_shape)}, got "
                             f"{list(x.shape[1:])}")
        batch, height, width, _ = x.shape
        p = self.patch_size
        grid_h, grid_w = height // p, width // p
        cond = self.embed(jnp.asarray(time, jnp.float32), labels)
        tokens = self.patch_embed(x.astype(self.dtype)).reshape(batch, grid_h * grid_w, -1)
        tokens = tokens + sincos_pos_embed(self.hidden, grid_h, grid_w).astype(tokens.dtype)
        for i, block in enumerate(self.blocks):
            key = None if dropout_key is None else jax.random.fold_in(dropout_key, i)
            tokens = block(tokens, cond, context, key)
        patches = self.final(tokens, cond)
        # Each token's values are ordered (row in patch, column in patch, channel), as DiT's
        # unpatchify reads them.
        image = patches.reshape(batch, grid_h, grid_w, p, p, self.out_channels)
        image = image.transpose(0, 1, 3, 2, 4, 5).reshape(batch, height, width, self.out_channels)
        return image.astype(jnp.float32)
