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
