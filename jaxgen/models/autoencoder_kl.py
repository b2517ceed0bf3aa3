"""Stable Diffusion's autoencoder (Rombach et al. 2022, the "KL-f8" first stage; diffusers'
`AutoencoderKL`) in Flax NNX: images [B, H, W, 3] in [-1, 1] to a diagonal Gaussian over
latents [B, H/f, W/f, C] (f = 2^(levels - 1)) and back.

Encoder: conv, per level `layers_per_block` residual blocks (GroupNorm, swish, conv, twice;
no time embedding) and a stride-2 conv (padded after, as diffusers' padding 0) except at the
last level; a middle of residual block, single-head self-attention, residual block; GroupNorm,
swish and a conv to 2C channels (mean and log-variance), then the 1x1 `quant_conv`. The
decoder mirrors it with one more residual block per level and nearest 2x upsampling. All
GroupNorms have eps 1e-6. `scaling_factor` (SD: 0.18215) is the pipeline's, not the model's:
latents are multiplied by it before diffusion and divided before decoding.
"""

import jax.numpy as jnp
from flax import nnx

from jaxgen.models.unet import AttentionBlock, Downsample, Upsample, _conv, _group_norm


class ResnetBlock(nnx.Module):
    def __init__(self, cin, cout, groups, *, dtype, rngs):
        self.norm1 = _group_norm(cin, dtype, rngs, groups)
        self.conv1 = _conv(cin, cout, rngs, dtype)
        self.norm2 = _group_norm(cout, dtype, rngs, groups)
        self.conv2 = _conv(cout, cout, rngs, dtype)
        self.skip = _conv(cin, cout, rngs, dtype, kernel=1) if cin != cout else None

    def __call__(self, x):
        h = self.conv1(nnx.swish(self.norm1(x)))
        h = self.conv2(nnx.swish(self.norm2(h)))
        return h + (x if self.skip is None else self.skip(x))


class Level(nnx.Module):
    """One resolution's residual blocks and its resampler (None at the end of the path)."""

    def __init__(self, resnets, sampler):
        self.resnets = nnx.List(resnets)
        self.sampler = sampler

    def __call__(self, x):
        for block in self.resnets:
            x = block(x)
        return x if self.sampler is None else self.sampler(x)


class Middle(nnx.Module):
    def __init__(self, channels, groups, *, dtype, rngs):
        def norm(c, dtype, rngs):
            return _group_norm(c, dtype, rngs, groups)

        self.res1 = ResnetBlock(channels, channels, groups, dtype=dtype, rngs=rngs)
        self.attn = AttentionBlock(channels, 1, 0, dtype, rngs, norm)
        self.res2 = ResnetBlock(channels, channels, groups, dtype=dtype, rngs=rngs)

    def __call__(self, x):
        return self.res2(self.attn(self.res1(x)))


class Encoder(nnx.Module):
    def __init__(self, in_channels, widths, layers_per_block, out_channels, groups, *, dtype,
                 rngs):
        self.conv_in = _conv(in_channels, widths[0], rngs, dtype)
        levels, c = [], widths[0]
        for i, width in enumerate(widths):
            resnets = []
            for _ in range(layers_per_block):
                resnets.append(ResnetBlock(c, width, groups, dtype=dtype, rngs=rngs))
                c = width
            last = i == len(widths) - 1
            levels.append(Level(resnets, None if last else Downsample(c, dtype, rngs, 0)))
        self.down = nnx.List(levels)
        self.mid = Middle(c, groups, dtype=dtype, rngs=rngs)
        self.norm_out = _group_norm(c, dtype, rngs, groups)
        self.conv_out = _conv(c, out_channels, rngs, dtype)

    def __call__(self, x):
        h = self.conv_in(x)
        for level in self.down:
            h = level(h)
        return self.conv_out(nnx.swish(self.norm_out(self.mid(h))))


class Decoder(nnx.Module):
    def __init__(self, latent_channels, widths, layers_per_block, out_channels, groups, *,
                 dtype, rngs):
        c = widths[-1]
        self.conv_in = _conv(latent_channels, c, rngs, dtype)
        self.mid = Middle(c, groups, dtype=dtype, rngs=rngs)
        levels = []
        for i, width in enumerate(reversed(widths)):
            resnets = []
            for _ in range(layers_per_block + 1):
                resnets.append(ResnetBlock(c, width, groups, dtype=dtype, rngs=rngs))
                c = width
            last = i == len(widths) - 1
            levels.append(Level(resnets, None if last else Upsample(c, dtype, rngs)))
        self.up = nnx.List(levels)
        self.norm_out = _group_norm(c, dtype, rngs, groups)
        self.conv_out = _conv(c, out_channels, rngs, dtype)

    def __call__(self, z):
        h = self.mid(self.conv_in(z))
        for level in self.up:
            h = level(h)
        return self.conv_out(nnx.swish(self.norm_out(h)))


class AutoencoderKL(nnx.Module):
    """Args: in_channels / out_channels of the images, block_out_channels per level,
    layers_per_block, latent_channels, norm_num_groups, use_quant_conv /
    use_post_quant_conv (the 1x1 convs around the latent)."""

    def __init__(self, in_channels=3, out_channels=3, block_out_channels=(128, 256, 512, 512),
                 layers_per_block=2, latent_channels=4, norm_num_groups=32,
                 use_quant_conv=True, use_post_quant_conv=True, *, dtype=jnp.float32,
                 rngs: nnx.Rngs):
        widths = tuple(block_out_channels)
        self.latent_channels, self.dtype = latent_channels, dtype
        self.downsampling = 2 ** (len(widths) - 1)
        self.encoder = Encoder(in_channels, widths, layers_per_block, 2 * latent_channels,
                               norm_num_groups, dtype=dtype, rngs=rngs)
        self.decoder = Decoder(latent_channels, widths, layers_per_block, out_channels,
                               norm_num_groups, dtype=dtype, rngs=rngs)
        self.quant_conv = (_conv(2 * latent_channels, 2 * latent_channels, rngs, dtype, kernel=1)
                           if use_quant_conv else None)
        self.post_quant_conv = (_conv(latent_channels, latent_channels, rngs, dtype, kernel=1)
                                if use_post_quant_conv else None)

    def encode(self, images):
        """images [B, H, W, C] -> (mean, log_var) [B, H/f, W/f, latent_channels], float32;
        log_var clipped to [-30, 20] as diffusers' `DiagonalGaussianDistribution`."""
        if images.shape[1] % self.downsampling or images.shape[2] % self.downsampling:
            raise ValueError(f"image sides must be multiples of {self.downsampling}, got "
                             f"{images.shape[1]}x{images.shape[2]}")
        moments = self.encoder(images.astype(self.dtype))
        if self.quant_conv is not None:
            moments = self.quant_conv(moments)
        mean, log_var = jnp.split(moments.astype(jnp.float32), 2, axis=-1)
        return mean, jnp.clip(log_var, -30.0, 20.0)

    def decode(self, latents):
        """latents [B, h, w, latent_channels] -> images [B, f h, f w, C] (float32)."""
        z = latents.astype(self.dtype)
        if self.post_quant_conv is not None:
            z = self.post_quant_conv(z)
        return self.decoder(z).astype(jnp.float32)
