"""Flax NNX modules."""

from jaxgen.models.vae import ConvVAE, MlpVAE, reparameterize

__all__ = ["ConvVAE", "MlpVAE", "reparameterize"]
