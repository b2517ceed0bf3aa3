"""Variational autoencoders (Kingma & Welling 2014): convolutional and MLP encoder/decoder pairs.

Both map x [B, *data_shape] to the posterior's `mean` and `log_var` [B, latent_dim] and decode a
latent z [B, latent_dim] to per-pixel likelihood parameters [B, *data_shape]: Bernoulli logits,
or Gaussian means (with one learned log-scale, Rybkin et al. 2021) for `likelihood="gaussian"`.
Parameters are float32; `dtype` sets the compute precision (bfloat16 on accelerators).
"""

import itertools
import math

import jax
import jax.numpy as jnp
from flax import nnx

from jaxgen.models.autoencoder_kl import AutoencoderKL
from jaxgen.models.layers import ConvTranspose

LIKELIHOODS = ("bernoulli", "gaussian")


def reparameterize(key: jax.Array, mean: jax.Array, log_var: jax.Array) -> jax.Array:
    """z = mean + sigma * eps with eps ~ N(0, I), differentiable in mean and log_var."""
    return mean + jnp.exp(0.5 * log_var) * jax.random.normal(key, mean.shape, mean.dtype)


class _VAE(nnx.Module):
    """What both VAEs share: the likelihood's scale, the forward pass and the output dtype."""

    def __init__(self, data_shape, latent_dim, likelihood):
        if likelihood not in LIKELIHOODS:
            raise ValueError(f"likelihood must be one of {LIKELIHOODS}, got {likelihood!r}")
        self.data_shape = tuple(data_shape)
        self.latent_dim = latent_dim
        self.likelihood = likelihood
        if likelihood == "gaussian":
            self.log_scale = nnx.Param(jnp.zeros((), jnp.float32))

    def _check(self, x: jax.Array) -> None:
        if tuple(x.shape[1:]) != self.data_shape:
            raise ValueError(
                f"this VAE takes inputs of shape [B, {', '.join(map(str, self.data_shape))}], "
                f"got {list(x.shape)}; set the model's data_shape to match the dataset."
            )

    def __call__(self, x: jax.Array, key: jax.Array):
        """Returns (decoder_outputs, mean, log_var, z) for one posterior sample per example."""
        mean, log_var = self.encode(x)
        z = reparameterize(key, mean, log_var)
        return self.decode(z), mean, log_var, z


class ConvVAE(_VAE):
    """Strided-conv encoder and transposed-conv decoder; H and W must divide by 2**len(channels)."""

    def __init__(
        self,
        data_shape: tuple[int, int, int],
        latent_dim: int = 16,
        channels: tuple[int, ...] = (32, 64),
        hidden: int = 256,
        likelihood: str = "bernoulli",
        dtype=jnp.float32,
        *,
        rngs: nnx.Rngs,
    ):
        super().__init__(data_shape, latent_dim, likelihood)
        height, width, in_channels = data_shape
        factor = 2 ** len(channels)
        if height % factor or width % factor:
            raise ValueError(
                f"ConvVAE with {len(channels)} stride-2 stages needs H and W divisible by "
                f"{factor}; got {height}x{width}."
            )
        self.bottom = (height // factor, width // factor, channels[-1])
        conv = dict(kernel_size=(3, 3), dtype=dtype, rngs=rngs)
        widths = (in_channels, *channels)
        self.down = nnx.List(
            [nnx.Conv(a, b, strides=(2, 2), **conv) for a, b in itertools.pairwise(widths)]
        )
        flat = math.prod(self.bottom)
        self.enc_hidden = nnx.Linear(flat, hidden, dtype=dtype, rngs=rngs)
        self.enc_out = nnx.Linear(hidden, 2 * latent_dim, dtype=dtype, rngs=rngs)
        self.dec_hidden = nnx.Linear(latent_dim, hidden, dtype=dtype, rngs=rngs)
        self.dec_bottom = nnx.Linear(hidden, flat, dtype=dtype, rngs=rngs)
        up_widths = (*channels[::-1], channels[0])
        self.up = nnx.List(
            [
                ConvTranspose(a, b, strides=(2, 2), **conv)
                for a, b in itertools.pairwise(up_widths)
            ]
        )
        self.dec_out = nnx.Conv(channels[0], in_channels, **conv)

    def encode(self, x: jax.Array) -> tuple[jax.Array, jax.Array]:
        self._check(x)
        h = x
        for layer in self.down:
            h = nnx.swish(layer(h))
        h = nnx.swish(self.enc_hidden(h.reshape(h.shape[0], -1)))
        mean, log_var = jnp.split(self.enc_out(h).astype(jnp.float32), 2, axis=-1)
        return mean, log_var

    def decode(self, z: jax.Array) -> jax.Array:
        h = nnx.swish(self.dec_bottom(nnx.swish(self.dec_hidden(z))))
        h = h.reshape(z.shape[0], *self.bottom)
        for layer in self.up:
            h = nnx.swish(layer(h))
        return self.dec_out(h).astype(jnp.float32)


class MlpVAE(_VAE):
    """Fully connected encoder and decoder over the flattened data (images or points)."""

    def __init__(
        self,
        data_shape: tuple[int, ...],
        latent_dim: int = 16,
        hidden: tuple[int, ...] = (512, 256),
        likelihood: str = "bernoulli",
        dtype=jnp.float32,
        *,
        rngs: nnx.Rngs,
    ):
        super().__init__(data_shape, latent_dim, likelihood)
        size = math.prod(data_shape)
        dense = dict(dtype=dtype, rngs=rngs)
        enc = (size, *hidden)
        self.encoder = nnx.List([nnx.Linear(a, b, **dense) for a, b in itertools.pairwise(enc)])
        self.enc_out = nnx.Linear(hidden[-1], 2 * latent_dim, **dense)
        dec = (latent_dim, *hidden[::-1])
        self.decoder = nnx.List([nnx.Linear(a, b, **dense) for a, b in itertools.pairwise(dec)])
        self.dec_out = nnx.Linear(hidden[0], size, **dense)

    def encode(self, x: jax.Array) -> tuple[jax.Array, jax.Array]:
        self._check(x)
        h = x.reshape(x.shape[0], -1)
        for layer in self.encoder:
            h = nnx.swish(layer(h))
        mean, log_var = jnp.split(self.enc_out(h).astype(jnp.float32), 2, axis=-1)
        return mean, log_var

    def decode(self, z: jax.Array) -> jax.Array:
        h = z
        for layer in self.decoder:
            h = nnx.swish(layer(h))
        return self.dec_out(h).astype(jnp.float32).reshape(z.shape[0], *self.data_shape)


class _ResBlock(nnx.Module):
    """GroupNorm, swish, 3x3 conv, twice, plus the input."""

    def __init__(self, channels: int, dtype, rngs: nnx.Rngs):
        groups = min(8, channels)
        self.norm1 = nnx.GroupNorm(channels, num_groups=groups, dtype=dtype, rngs=rngs)
        self.conv1 = nnx.Conv(channels, channels, (3, 3), dtype=dtype, rngs=rngs)
        self.norm2 = nnx.GroupNorm(channels, num_groups=groups, dtype=dtype, rngs=rngs)
        self.conv2 = nnx.Conv(channels, channels, (3, 3), dtype=dtype, rngs=rngs)

    def __call__(self, x):
        h = self.conv1(nnx.swish(self.norm1(x)))
        return x + self.conv2(nnx.swish(self.norm2(h)))


class _GridVAE(_VAE):
    """A VAE whose latent is a grid `latent_shape` [h, w, c]: `encode`/`decode` speak flat
    latents [B, h * w * c], like the other VAEs, so the ELBO, IWAE and latent-arithmetic code
    work on it unchanged; `encode_grid`/`decode_grid` keep the grid, for a denoiser."""

    def encode(self, x: jax.Array) -> tuple[jax.Array, jax.Array]:
        mean, log_var = self.encode_grid(x)
        return mean.reshape(x.shape[0], -1), log_var.reshape(x.shape[0], -1)

    def decode(self, z: jax.Array) -> jax.Array:
        return self.decode_grid(z.reshape(z.shape[0], *self.latent_shape))


class SpatialVAE(_GridVAE):
    """A fully convolutional VAE whose latent is a grid [H / 2**n, W / 2**n, latent_channels]
    (n = len(channels)), the first stage of latent diffusion (Rombach et al. 2022): trained with
    a small KL weight it is close to an autoencoder whose latents a denoiser can model."""

    def __init__(
        self,
        data_shape: tuple[int, int, int],
        latent_channels: int = 4,
        channels: tuple[int, ...] = (32, 64),
        likelihood: str = "bernoulli",
        dtype=jnp.float32,
        *,
        rngs: nnx.Rngs,
    ):
        height, width, in_channels = data_shape
        factor = 2 ** len(channels)
        if height % factor or width % factor:
            raise ValueError(f"SpatialVAE with {len(channels)} stride-2 stages needs H and W "
                             f"divisible by {factor}; got {height}x{width}.")
        self.latent_shape = (height // factor, width // factor, latent_channels)
        super().__init__(data_shape, math.prod(self.latent_shape), likelihood)
        conv = dict(dtype=dtype, rngs=rngs)
        self.enc_in = nnx.Conv(in_channels, channels[0], (3, 3), **conv)
        widths = (channels[0], *channels)
        self.down = nnx.List([nnx.Conv(a, b, (3, 3), strides=(2, 2), **conv)
                              for a, b in itertools.pairwise(widths)])
        self.enc_blocks = nnx.List([_ResBlock(c, dtype, rngs) for c in channels])
        self.enc_out = nnx.Conv(channels[-1], 2 * latent_channels, (1, 1), **conv)
        self.dec_in = nnx.Conv(latent_channels, channels[-1], (3, 3), **conv)
        self.dec_blocks = nnx.List([_ResBlock(c, dtype, rngs) for c in channels[::-1]])
        up_widths = (*channels[::-1], channels[0])
        self.up = nnx.List([ConvTranspose(a, b, (3, 3), strides=(2, 2), **conv)
                            for a, b in itertools.pairwise(up_widths)])
        self.dec_norm = nnx.GroupNorm(channels[0], num_groups=min(8, channels[0]), **conv)
        self.dec_out = nnx.Conv(channels[0], in_channels, (3, 3), **conv)

    def encode_grid(self, x: jax.Array) -> tuple[jax.Array, jax.Array]:
        """Posterior mean and log-variance, each [B, *latent_shape]."""
        self._check(x)
        h = self.enc_in(x)
        for down, block in zip(self.down, self.enc_blocks, strict=True):
            h = block(nnx.swish(down(h)))
        mean, log_var = jnp.split(self.enc_out(nnx.swish(h)).astype(jnp.float32), 2, axis=-1)
        return mean, log_var

    def decode_grid(self, z: jax.Array) -> jax.Array:
        """Likelihood parameters [B, *data_shape] from latents [B, *latent_shape]."""
        h = self.dec_in(z)
        for block, up in zip(self.dec_blocks, self.up, strict=True):
            h = nnx.swish(up(block(h)))
        return self.dec_out(nnx.swish(self.dec_norm(h))).astype(jnp.float32)


class KLVAE(_GridVAE):
    """Stable Diffusion's autoencoder (diffusers' `AutoencoderKL`, `jaxgen.models.
    autoencoder_kl`) trained as a jaxgen VAE: the architecture a latent diffusion run can export
    to diffusers (`python -m jaxgen export`). `channels` are its `block_out_channels`, so the
    latent grid is [H / 2**(n-1), W / 2**(n-1), latent_channels] for n = len(channels); its
    decoder outputs the likelihood's parameters (images, for the Gaussian likelihood, as SD's
    decoder does). The network lives under `autoencoder`, diffusers' key map over it."""

    def __init__(
        self,
        data_shape: tuple[int, int, int],
        latent_channels: int = 4,
        channels: tuple[int, ...] = (32, 64, 64),
        layers_per_block: int = 1,
        norm_groups: int = 32,
        likelihood: str = "gaussian",
        dtype=jnp.float32,
        *,
        rngs: nnx.Rngs,
    ):
        height, width, in_channels = data_shape
        factor = 2 ** (len(channels) - 1)
        if height % factor or width % factor:
            raise ValueError(f"KLVAE with {len(channels)} levels needs H and W divisible by "
                             f"{factor}; got {height}x{width}.")
        if any(c % norm_groups for c in channels):
            raise ValueError(f"every entry of channels {tuple(channels)} must divide by "
                             f"norm_groups={norm_groups} (GroupNorm)")
        self.latent_shape = (height // factor, width // factor, latent_channels)
        super().__init__(data_shape, math.prod(self.latent_shape), likelihood)
        self.autoencoder = AutoencoderKL(
            in_channels=in_channels, out_channels=in_channels, block_out_channels=channels,
            layers_per_block=layers_per_block, latent_channels=latent_channels,
            norm_num_groups=norm_groups, dtype=dtype, rngs=rngs)

    def encode_grid(self, x: jax.Array) -> tuple[jax.Array, jax.Array]:
        """Posterior mean and log-variance, each [B, *latent_shape]."""
        self._check(x)
        return self.autoencoder.encode(x)

    def decode_grid(self, z: jax.Array) -> jax.Array:
        """Likelihood parameters [B, *data_shape] from latents [B, *latent_shape]."""
        return self.autoencoder.decode(z)
