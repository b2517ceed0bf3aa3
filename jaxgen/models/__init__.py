"""Flax NNX modules."""

from jaxgen.models.gan import (
    DCGANDiscriminator,
    DCGANGenerator,
    MlpDiscriminator,
    MlpGenerator,
    pack_samples,
)
from jaxgen.models.vae import KLVAE, ConvVAE, MlpVAE, SpatialVAE, reparameterize

__all__ = [
    "ConvVAE",
    "KLVAE",
    "DCGANDiscriminator",
    "DCGANGenerator",
    "MlpDiscriminator",
    "MlpGenerator",
    "MlpVAE",
    "SpatialVAE",
    "pack_samples",
    "reparameterize",
]
