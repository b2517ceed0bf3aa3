"""Pure loss functions of arrays. Import freely: nothing here depends on models or training.

The diffusion schedules and parameterisation conversions (`jaxgen.schedules`) are re-exported
here beside the losses that use them.
"""

from jaxgen.losses._contrastive import clip_loss, siglip_loss
from jaxgen.losses._diffusion import (
    WEIGHTINGS,
    diffusion_loss,
    flow_matching_loss,
    logit_normal_times,
    loss_weight,
)
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
from jaxgen.schedules import (
    PARAMETERIZATIONS,
    SCHEDULES,
    NoiseSchedule,
    add_noise,
    cosine_schedule,
    flow_interpolate,
    linear_schedule,
    make_schedule,
    prediction_target,
    to_x0_and_eps,
)

__all__ = [
    "ADVERSARIAL_LOSSES",
    "AdversarialLoss",
    "NoiseSchedule",
    "PARAMETERIZATIONS",
    "SCHEDULES",
    "WEIGHTINGS",
    "add_noise",
    "adversarial_loss",
    "bernoulli_log_likelihood",
    "clip_loss",
    "cosine_schedule",
    "diagonal_gaussian_log_density",
    "diffusion_loss",
    "elbo_loss",
    "flow_interpolate",
    "flow_matching_loss",
    "gaussian_kl",
    "gaussian_log_likelihood",
    "gradient_penalty",
    "hinge_discriminator_loss",
    "hinge_generator_loss",
    "iwae_bound",
    "least_squares_discriminator_loss",
    "least_squares_generator_loss",
    "linear_schedule",
    "logit_normal_times",
    "loss_weight",
    "make_schedule",
    "minimax_discriminator_loss",
    "minimax_generator_loss",
    "non_saturating_generator_loss",
    "prediction_target",
    "r1_penalty",
    "siglip_loss",
    "to_x0_and_eps",
    "wasserstein_discriminator_loss",
    "wasserstein_generator_loss",
]
