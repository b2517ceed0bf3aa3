"""GAN players (Flax NNX): MLP generator/discriminator for point sets and DCGAN-style
convolutional ones for images (Radford et al. 2016), unconditional or class-conditional.

Generators map latents z [B, latent_dim] (and labels [B] when conditional) to samples
[B, *data_shape]; images come out in [-1, 1] through tanh, points unbounded. Discriminators map
`pack` samples concatenated along the feature (or channel) axis to one score per packed example,
[B / pack] logits: pack = 1 is the usual discriminator, pack > 1 is PacGAN (Lin et al. 2018).

Batch norm lives only in the generators, with running statistics used for sampling. The
discriminators have none: a gradient penalty is a per-example quantity, which batch statistics
would couple across the batch (Gulrajani et al. 2017, section 4).
"""

import itertools
import math

import jax
import jax.numpy as jnp
from flax import nnx

from jaxgen.models.layers import ConvTranspose

# DCGAN's init (Radford et al. 2016, section 4), also the PacGAN protocol's.
_INIT_STD = 0.02


def _linear(din, dout, rngs, use_bias=True, dtype=jnp.float32):
    return nnx.Linear(din, dout, use_bias=use_bias, kernel_init=nnx.initializers.normal(_INIT_STD),
                      dtype=dtype, rngs=rngs)


def _batch_norm(features, rngs, dtype):
    # PyTorch's BN momentum 0.1, which DCGAN and the PacGAN protocol use, is flax's 0.9.
    return nnx.BatchNorm(features, momentum=0.9, dtype=dtype, rngs=rngs)


def pack_samples(x: jax.Array, pack: int) -> jax.Array:
    """[B, ..., C] -> [B / pack, ..., pack * C]: consecutive samples side by side on the last axis
    (PacGAN's packing: the discriminator judges `pack` samples jointly)."""
    if pack == 1:
        return x
    if x.shape[0] % pack:
        raise ValueError(f"a batch of {x.shape[0]} cannot be packed in groups of {pack}")
    grouped = x.reshape(x.shape[0] // pack, pack, *x.shape[1:])
    return jnp.moveaxis(grouped, 1, -2).reshape(x.shape[0] // pack, *x.shape[1:-1], -1)


def upsampling_plan(height: int, width: int, min_base: int = 4) -> tuple[int, int]:
    """(base size, number of 2x upsamplings) for a square DCGAN: 28 -> (7, 2), 32 -> (4, 3),
    64 -> (4, 4). The base is the first odd size or `min_base`, whichever comes first."""
    if height != width:
        raise ValueError(f"DCGAN models take square images, got {height}x{width}")
    base, ups = height, 0
    while base % 2 == 0 and base > min_base:
        base, ups = base // 2, ups + 1
    if ups == 0:
        raise ValueError(f"image size {height} cannot be reached by 2x upsampling")
    return base, ups


class MlpGenerator(nnx.Module):
    """z -> [Linear (no bias) -> BatchNorm -> ReLU] x len(hidden) -> Linear: the PacGAN/VEEGAN
    point generator (4 hidden layers of 400 units)."""

    def __init__(self, data_shape, latent_dim=2, hidden=(400, 400, 400, 400), batch_norm=True,
                 num_classes=0, dtype=jnp.float32, *, rngs: nnx.Rngs):
        if num_classes:
            raise ValueError("the MLP generator is unconditional; set model.num_classes=0")
        self.data_shape = tuple(data_shape)
        self.latent_dim = latent_dim
        widths = (latent_dim, *hidden)
        self.layers = nnx.List([_linear(a, b, rngs, use_bias=not batch_norm, dtype=dtype)
                                for a, b in itertools.pairwise(widths)])
        self.norms = nnx.List([_batch_norm(b, rngs, dtype) for b in hidden] if batch_norm else [])
        self.out = _linear(widths[-1], math.prod(self.data_shape), rngs, dtype=dtype)

    def __call__(self, z: jax.Array, labels=None, *, train: bool = False) -> jax.Array:
        h = z
        for i, layer in enumerate(self.layers):
            h = layer(h)
            if self.norms:
                h = self.norms[i](h, use_running_average=not train)
            h = jax.nn.relu(h)
        return self.out(h).astype(jnp.float32).reshape(z.shape[0], *self.data_shape)


class MlpDiscriminator(nnx.Module):
    """Packed points -> [Linear -> maxout over `maxout_pieces`] x len(hidden) -> Linear -> score.

    The PacGAN protocol's discriminator: 3 layers of 200 maxout units with 5 pieces (Goodfellow
    et al. 2013). `maxout_pieces=1` gives LeakyReLU(0.2) layers instead.
    """

    def __init__(self, data_shape, hidden=(200, 200, 200), maxout_pieces=5, pack=1,
                 num_classes=0, dtype=jnp.float32, *, rngs: nnx.Rngs):
        if num_classes:
            raise ValueError("the MLP discriminator is unconditional; set model.num_classes=0")
        self.data_shape = tuple(data_shape)
        self.pack = pack
        self.pieces = maxout_pieces
        widths = (pack * math.prod(self.data_shape), *hidden)
        self.layers = nnx.List([_linear(a, b * maxout_pieces, rngs, dtype=dtype)
                                for a, b in itertools.pairwise(widths)])
        self.out = _linear(widths[-1], 1, rngs, dtype=dtype)

    def __call__(self, x: jax.Array, labels=None) -> jax.Array:
        h = x.reshape(x.shape[0], -1)
        for layer in self.layers:
            h = layer(h)
            if self.pieces > 1:
                h = jnp.max(h.reshape(*h.shape[:-1], -1, self.pieces), axis=-1)
            else:
                h = jax.nn.leaky_relu(h, 0.2)
        return self.out(h)[:, 0].astype(jnp.float32)


class DCGANGenerator(nnx.Module):
    """z (+ a label embedding) -> Linear -> base x base x channels[0] -> [ConvTranspose 4x4,
    stride 2 -> BatchNorm -> ReLU] ... -> ConvTranspose to the image channels -> tanh.

    `channels` lists the widths from the coarsest feature map; there is one per 2x upsampling
    (see `upsampling_plan`), the last upsampling producing the image itself.
    """

    def __init__(self, data_shape, latent_dim=64, channels=(128, 64), batch_norm=True,
                 num_classes=0, dtype=jnp.float32, *, rngs: nnx.Rngs):
        height, width, out_channels = data_shape
        self.data_shape = tuple(data_shape)
        self.latent_dim = latent_dim
        self.base, ups = upsampling_plan(height, width)
        if len(channels) != ups:
            raise ValueError(
                f"a {height}x{width} image needs {ups} upsamplings from {self.base}x{self.base}, "
                f"so model.g_channels needs {ups} widths, got {tuple(channels)}"
            )
        self.channels = tuple(channels)
        self.embed = (nnx.Embed(num_classes, latent_dim, rngs=rngs) if num_classes else None)
        in_dim = latent_dim * (2 if num_classes else 1)
        self.project = _linear(in_dim, self.base * self.base * channels[0], rngs,
                               use_bias=not batch_norm, dtype=dtype)
        init = nnx.initializers.normal(_INIT_STD)
        self.ups = nnx.List([
            ConvTranspose(a, b, (4, 4), strides=(2, 2), padding="SAME", kernel_init=init,
                              use_bias=not batch_norm, dtype=dtype, rngs=rngs)
            for a, b in itertools.pairwise(channels)
        ])
        self.norms = nnx.List([_batch_norm(c, rngs, dtype) for c in channels] if batch_norm
                              else [])
        self.to_image = ConvTranspose(channels[-1], out_channels, (4, 4), strides=(2, 2),
                                          padding="SAME", kernel_init=init, dtype=dtype, rngs=rngs)

    def _norm_relu(self, i, h, train):
        if self.norms:
            h = self.norms[i](h, use_running_average=not train)
        return jax.nn.relu(h)

    def __call__(self, z: jax.Array, labels=None, *, train: bool = False) -> jax.Array:
        if self.embed is not None:
            if labels is None:
                raise ValueError("this generator is class-conditional: pass labels")
            z = jnp.concatenate([z, self.embed(labels).astype(z.dtype)], axis=-1)
        h = self.project(z).reshape(z.shape[0], self.base, self.base, self.channels[0])
        h = self._norm_relu(0, h, train)
        for i, up in enumerate(self.ups):
            h = self._norm_relu(i + 1, up(h), train)
        return jnp.tanh(self.to_image(h).astype(jnp.float32))


class DCGANDiscriminator(nnx.Module):
    """Packed images -> [Conv 4x4, stride 2 -> LeakyReLU(0.2)] x len(channels) -> Linear score,
    plus, when class-conditional, the projection term <embed(y), features> (Miyato & Koyama
    2018, eq. 3)."""

    def __init__(self, data_shape, channels=(64, 128), pack=1, num_classes=0,
                 dtype=jnp.float32, *, rngs: nnx.Rngs):
        height, width, in_channels = data_shape
        self.data_shape = tuple(data_shape)
        base, ups = upsampling_plan(height, width)
        if len(channels) != ups:
            raise ValueError(
                f"a {height}x{width} image is reduced to {base}x{base} by {ups} stride-2 convs, "
                f"so model.d_channels needs {ups} widths, got {tuple(channels)}"
            )
        init = nnx.initializers.normal(_INIT_STD)
        widths = (pack * in_channels, *channels)
        self.convs = nnx.List([
            nnx.Conv(a, b, (4, 4), strides=(2, 2), padding="SAME", kernel_init=init, dtype=dtype,
                     rngs=rngs)
            for a, b in itertools.pairwise(widths)
        ])
        features = base * base * channels[-1]
        self.out = _linear(features, 1, rngs, dtype=dtype)
        self.embed = nnx.Embed(num_classes, features, embedding_init=init, rngs=rngs) \
            if num_classes else None

    def __call__(self, x: jax.Array, labels=None) -> jax.Array:
        h = x
        for conv in self.convs:
            h = jax.nn.leaky_relu(conv(h), 0.2)
        h = h.reshape(h.shape[0], -1)
        score = self.out(h)[:, 0]
        if self.embed is not None:
            if labels is None:
                raise ValueError("this discriminator is class-conditional: pass labels")
            score = score + jnp.sum(self.embed(labels).astype(h.dtype) * h, axis=-1)
        return score.astype(jnp.float32)
