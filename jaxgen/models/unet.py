"""The diffusion U-Net (Flax NNX), configurable like DDPM's (Ho et al. 2020) and ADM's (Dhariwal &
Nichol 2021): channel multipliers per resolution, residual blocks per level, GroupNorm(32),
dropout, self-attention at chosen resolutions, a sinusoidal time embedding, class conditioning
(an embedding with one extra "null" row for classifier-free guidance), and cross-attention to a
context sequence (text tokens) when `context_dim` is set.

Every denoiser here has one call: `model(x [B, H, W, C], time [B], labels [B] | None,
context [B, L, D] | None, dropout_key=None) -> [B, H, W, C_out]`. `time` is a float: the
training timestep for discrete schedules, 1000 t for flow matching. Dropout is active exactly
when a `dropout_key` is given, so the model holds no random state and stays a pure function of
its parameters.

`UNet(**DDPM_CIFAR10)` is the DDPM CIFAR-10 network, 35.7M parameters.
"""

import jax
import jax.numpy as jnp
from flax import nnx

from jaxgen.models.layers import Attention, condition_embedding
from jaxgen.models.spatial_transformer import SpatialTransformer

# Ho et al. 2020, appendix B: the 32x32 model.
DDPM_CIFAR10 = dict(data_shape=(32, 32, 3), channels=128, channel_mults=(1, 2, 2, 2),
                    num_res_blocks=2, attention_resolutions=(16,), dropout=0.1)


def _groups(channels, groups=None):
    # By default 32 groups (Wu & He 2018) as DDPM, but at least 4 channels per group: with one
    # channel per group (a 16-channel model) the norm is an instance norm, which removes each
    # channel's per-image mean, and before the output conv that mean is what an eps model must
    # copy from x_T at high noise (its error is divided by alpha_T, 0.006 on the linear
    # schedule). A checkpoint's config gives `groups` exactly.
    if groups is None:
        groups = min(32, max(1, channels // 4))
        while channels % groups:
            groups -= 1
    elif channels % groups:
        raise ValueError(f"GroupNorm of {channels} channels into {groups} groups: the groups "
                         "must divide the channels")
    return groups


def _group_norm(channels, dtype, rngs, groups=None, epsilon=1e-6):
    groups = _groups(channels, groups)
    return nnx.GroupNorm(channels, num_groups=groups, epsilon=epsilon, dtype=dtype,
                         rngs=rngs)


def _conv(cin, cout, rngs, dtype, kernel=3, strides=1, zero=False, padding="SAME"):
    kw = {"kernel_init": nnx.initializers.zeros_init()} if zero else {}
    return nnx.Conv(cin, cout, (kernel, kernel), strides=(strides, strides), padding=padding,
                    dtype=dtype, rngs=rngs, **kw)


class ResBlock(nnx.Module):
    """GroupNorm, swish, conv; add the embedding; GroupNorm, swish, dropout, zero-init conv; plus a
    1x1 skip when the width changes. `scale_shift` is ADM's FiLM form of the embedding
    (`norm(h) * (1 + scale) + shift`) instead of DDPM's addition."""

    def __init__(self, cin, cout, emb_dim, dropout, scale_shift, dtype, rngs, norm=_group_norm):
        self.norm1 = norm(cin, dtype, rngs)
        self.conv1 = _conv(cin, cout, rngs, dtype)
        self.scale_shift = scale_shift
        self.emb = nnx.Linear(emb_dim, 2 * cout if scale_shift else cout, dtype=dtype, rngs=rngs)
        self.norm2 = norm(cout, dtype, rngs)
        self.dropout = nnx.Dropout(dropout)
        self.conv2 = _conv(cout, cout, rngs, dtype, zero=True)
        self.skip = _conv(cin, cout, rngs, dtype, kernel=1) if cin != cout else None

    def __call__(self, x, emb, dropout_key=None):
        h = self.conv1(nnx.swish(self.norm1(x)))
        e = self.emb(nnx.swish(emb))[:, None, None, :]
        if self.scale_shift:
            scale, shift = jnp.split(e, 2, axis=-1)
            h = self.norm2(h) * (1 + scale) + shift
        else:
            h = self.norm2(h + e)
        h = self.dropout(nnx.swish(h), deterministic=dropout_key is None, rngs=dropout_key)
        h = self.conv2(h)
        return h + (x if self.skip is None else self.skip(x))


class AttentionBlock(nnx.Module):
    """Self-attention over the H*W positions (GroupNorm, then residual), followed by
    cross-attention to `context` when the block was built with `context_dim`."""

    def __init__(self, channels, num_heads, context_dim, dtype, rngs, norm=_group_norm):
        self.norm = norm(channels, dtype, rngs)
        self.attn = Attention(channels, channels, num_heads, dtype=dtype, rngs=rngs)
        # NNX fixes an attribute as data or static at its first assignment: assign once.
        self.cross_norm = (nnx.LayerNorm(channels, epsilon=1e-6, dtype=dtype, rngs=rngs)
                           if context_dim else None)
        self.cross = (Attention(channels, context_dim, num_heads, dtype=dtype, rngs=rngs)
                      if context_dim else None)

    def __call__(self, x, context=None):
        b, h, w, c = x.shape
        tokens = x.reshape(b, h * w, c)
        normed = self.norm(x).reshape(b, h * w, c)
        tokens = tokens + self.attn(normed, normed)
        if self.cross is not None:
            if context is None:
                raise ValueError("this U-Net was built with context_dim: pass `context`")
            tokens = tokens + self.cross(self.cross_norm(tokens), context)
        return tokens.reshape(b, h, w, c)


class Downsample(nnx.Module):
    """A stride-2 3x3 conv. `padding` None is "SAME" (for even sizes one row and column after,
    as DDPM's TensorFlow code); an int p pads p on every side (diffusers' `downsample_padding`:
    0 pads after only, as "SAME"; Stable Diffusion's 1 pads both sides)."""

    def __init__(self, channels, dtype, rngs, padding=None):
        pads = ("SAME" if padding is None else ((0, 1), (0, 1)) if padding == 0
                else ((padding, padding), (padding, padding)))
        self.conv = _conv(channels, channels, rngs, dtype, strides=2, padding=pads)

    def __call__(self, x):
        return self.conv(x)


class Upsample(nnx.Module):
    def __init__(self, channels, dtype, rngs):
        self.conv = _conv(channels, channels, rngs, dtype)

    def __call__(self, x):
        return self.conv(jnp.repeat(jnp.repeat(x, 2, axis=1), 2, axis=2))  # nearest, 2x


class UNet(nnx.Module):
    """Args:
        data_shape: (H, W, C) of the inputs; H and W divisible by 2^(levels - 1).
        channels: base width; level i has `channels * channel_mults[i]`.
        num_res_blocks: residual blocks per level on the way down (one more on the way up).
        attention_resolutions: spatial sizes (e.g. 16) whose levels get attention blocks.
        num_heads / head_channels: attention heads; head_channels > 0 sets heads = C // it (ADM).
        num_classes: 0 for unconditional; else labels in [0, K) and K is the null class.
        context_dim: width of the cross-attention context (0: no cross-attention).
        scale_shift: ADM's scale-shift GroupNorm in residual blocks.
        out_channels: default C (a prediction the shape of the input).
        norm_groups, norm_eps: the GroupNorms' groups and epsilon (default: 32 groups of at
            least 4 channels, 1e-6).
        downsample_padding: see `Downsample` (None: "SAME").
        freq_shift, flip_sin_to_cos: the time embedding's (see `layers.timestep_embedding`).
        attention: "plain" (GroupNorm, self-attention, then cross-attention to the context
            when context_dim is set: `AttentionBlock`) or "transformer" (Stable Diffusion's
            `SpatialTransformer` of `transformer_depth` layers, projections linear when
            `linear_projection`, attention logits in float32 when `upcast_attention`).
    The defaults are DDPM's network; `jaxgen.pretrained` sets the rest from diffusers' configs.
    """

    def __init__(self, data_shape, channels=128, channel_mults=(1, 2, 2, 2), num_res_blocks=2,
                 attention_resolutions=(16,), dropout=0.0, num_heads=1, head_channels=0,
                 num_classes=0, context_dim=0, scale_shift=False, out_channels=None,
                 norm_groups=None, norm_eps=1e-6, downsample_padding=None, freq_shift=1.0,
                 flip_sin_to_cos=False, attention="plain", transformer_depth=1,
                 linear_projection=False, upcast_attention=False, *, dtype=jnp.float32,
                 rngs: nnx.Rngs):
        height, width, in_channels = data_shape
        levels = len(channel_mults)
        factor = 2 ** (levels - 1)
        if height % factor or width % factor:
            raise ValueError(f"a U-Net with {levels} levels halves the image {levels - 1} times: "
                             f"{height}x{width} is not divisible by {factor}; drop a level from "
                             "channel_mults or pad the data")
        self.data_shape, self.channels, self.num_classes = tuple(data_shape), channels, num_classes
        self.dtype = dtype
        self.freq_shift, self.flip_sin_to_cos = freq_shift, flip_sin_to_cos
        emb_dim = 4 * channels

        def norm(c, dtype, rngs):
            return _group_norm(c, dtype, rngs, norm_groups, norm_eps)

        self.time_mlp = nnx.List([nnx.Linear(channels, emb_dim, dtype=dtype, rngs=rngs),
                                  nnx.Linear(emb_dim, emb_dim, dtype=dtype, rngs=rngs)])
        self.class_embed = (nnx.Embed(num_classes + 1, emb_dim, dtype=dtype, rngs=rngs)
                            if num_classes else None)

        def heads(c):
            return c // head_channels if head_channels > 0 else num_heads

        if attention not in ("plain", "transformer"):
            raise ValueError(f"attention must be 'plain' or 'transformer', got {attention!r}")

        def attention_block(c):
            if attention == "transformer":
                return SpatialTransformer(c, context_dim, heads(c), depth=transformer_depth,
                                          linear_projection=linear_projection,
                                          upcast=upcast_attention,
                                          norm_groups=_groups(c, norm_groups), dtype=dtype,
                                          rngs=rngs)
            return AttentionBlock(c, heads(c), context_dim, dtype, rngs, norm)

        def res(cin, cout):
            return ResBlock(cin, cout, emb_dim, dropout, scale_shift, dtype, rngs, norm)

        self.conv_in = _conv(in_channels, channels, rngs, dtype)
        down, skips, size, c = [], [channels], height, channels
        for level, mult in enumerate(channel_mults):
            for _ in range(num_res_blocks):
                blocks = [res(c, channels * mult)]
                c = channels * mult
                if size in attention_resolutions:
                    blocks.append(attention_block(c))
                down.append(nnx.List(blocks))
                skips.append(c)
            if level < levels - 1:
                down.append(nnx.List([Downsample(c, dtype, rngs, downsample_padding)]))
                skips.append(c)
                size //= 2
        self.down = nnx.List(down)
        self.mid = nnx.List([res(c, c), attention_block(c), res(c, c)])
        up = []
        for level, mult in reversed(list(enumerate(channel_mults))):
            for _ in range(num_res_blocks + 1):
                blocks = [res(c + skips.pop(), channels * mult)]
                c = channels * mult
                if size in attention_resolutions:
                    blocks.append(attention_block(c))
                up.append(nnx.List(blocks))
            if level > 0:
                up.append(nnx.List([Upsample(c, dtype, rngs)]))
                size *= 2
        self.up = nnx.List(up)
        self.norm_out = norm(c, dtype, rngs)
        self.conv_out = _conv(c, out_channels or in_channels, rngs, dtype, zero=True)

    def embed(self, time, labels):
        return condition_embedding(self.time_mlp, self.class_embed, time, labels,
                                   num_features=self.channels, null_class=self.num_classes,
                                   dtype=self.dtype, freq_shift=self.freq_shift,
                                   flip_sin_to_cos=self.flip_sin_to_cos)

    def _apply(self, blocks, h, emb, context, key):
        for i, block in enumerate(blocks):
            if isinstance(block, ResBlock):
                h = block(h, emb, None if key is None else jax.random.fold_in(key, i))
            elif isinstance(block, AttentionBlock | SpatialTransformer):
                h = block(h, context)
            else:
                h = block(h)
        return h

    def __call__(self, x, time, labels=None, context=None, *, dropout_key=None):
        if tuple(x.shape[1:]) != self.data_shape:
            raise ValueError(f"the U-Net takes images of shape {list(self.data_shape)}, got "
                             f"{list(x.shape[1:])}")
        emb = self.embed(jnp.asarray(time, jnp.float32), labels)
        keys = iter(jax.random.split(dropout_key, len(self.down) + len(self.up) + 1)
                    if dropout_key is not None else [None] * (len(self.down) + len(self.up) + 1))
        h = self.conv_in(x.astype(self.dtype))
        skips = [h]
        for blocks in self.down:
            h = self._apply(blocks, h, emb, context, next(keys))
            skips.append(h)
        h = self._apply(self.mid, h, emb, context, next(keys))
        for blocks in self.up:
            if isinstance(blocks[0], ResBlock):
                h = jnp.concatenate([h, skips.pop()], axis=-1)
            h = self._apply(blocks, h, emb, context, next(keys))
        return self.conv_out(nnx.swish(self.norm_out(h))).astype(jnp.float32)
