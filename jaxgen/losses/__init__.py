"""Pure loss functions of arrays. Import freely: nothing here depends on models or training."""

from jaxgen.losses._vae import (
    bernoulli_log_likelihood,
    diagonal_gaussian_log_density,
    elbo_loss,
    gaussian_kl,
    gaussian_log_likelihood,
    iwae_bound,
)

__all__ = [
    "bernoulli_log_likelihood",
    "diagonal_gaussian_log_density",
    "elbo_loss",
    "gaussian_kl",
    "gaussian_log_likelihood",
    "iwae_bound",
]
