"""Pure loss functions of arrays. Import freely: nothing here depends on models or training."""

from jaxgen.losses._gan import (
    ADVERSARIAL_LOSSES,
    AdversarialLoss,
    adversarial_loss,
    gradient_penalty,
    hinge_discriminator_loss,
    hinge_generator_loss,
    least_squares_discriminator_loss,
    least_squares_generator_loss,
    minimax_discriminator_loss,
    minimax_generator_loss,
    non_saturating_generator_loss,
    r1_penalty,
    wasserstein_discriminator_loss,
    wasserstein_generator_loss,
)
from jaxgen.losses._vae import (
    bernoulli_log_likelihood,
    diagonal_gaussian_log_density,
    elbo_loss,
    gaussian_kl,
    gaussian_log_likelihood,
    iwae_bound,
)

__all__ = [
    "ADVERSARIAL_LOSSES",
    "AdversarialLoss",
    "adversarial_loss",
    "bernoulli_log_likelihood",
    "diagonal_gaussian_log_density",
    "elbo_loss",
    "gaussian_kl",
    "gaussian_log_likelihood",
    "gradient_penalty",
    "hinge_discriminator_loss",
    "hinge_generator_loss",
    "iwae_bound",
    "least_squares_discriminator_loss",
    "least_squares_generator_loss",
    "minimax_discriminator_loss",
    "minimax_generator_loss",
    "non_saturating_generator_loss",
    "r1_penalty",
    "wasserstein_discriminator_loss",
    "wasserstein_generator_loss",
]
