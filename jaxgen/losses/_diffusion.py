"""Diffusion losses: the weighted denoising loss of a VP denoiser, and flow matching.

The schedules, the forward process and the parameterisation conversions they use live in
`jaxgen.schedules` (see its docstring for the notation). Per-example terms have shape [B]; the
scalar losses are plain batch means.
"""

import chex
import jax
import jax.numpy as jnp

from jaxgen.schedules import PARAMETERIZATIONS, prediction_target

WEIGHTINGS = ("simple", "min_snr")


def loss_weight(snr: jax.Array, parameterization: str, weighting: str = "simple",
                snr_gamma: float = 5.0) -> jax.Array:
    """[B] weights of the per-example MSE.

    "simple": 1 (Ho et al. 2020's L_simple in whichever parameterization is trained).
    "min_snr": Min-SNR-gamma (Hang et al. 2023): the x0-space weight min(SNR, gamma), expressed
    for each parameterization (divided by SNR for eps, by SNR + 1 for v), so the three give the
    same loss for the same denoiser.

    Example:
        >>> import jax.numpy as jnp
        >>> from jaxgen.losses import loss_weight
        >>> snr = jnp.array([1.0, 4.0, 100.0])
        >>> loss_weight(snr, "x0", "min_snr").tolist()  # min(SNR, 5)
        [1.0, 4.0, 5.0]
        >>> [round(w, 4) for w in loss_weight(snr, "eps", "min_snr").tolist()]  # min(SNR, 5) / SNR
        [1.0, 1.0, 0.05]
    """
    if weighting == "simple":
        return jnp.ones_like(snr)
    if weighting != "min_snr":
        raise ValueError(f"weighting must be one of {WEIGHTINGS}, got {weighting!r}")
    clipped = jnp.minimum(snr, snr_gamma)
    if parameterization == "eps":
        return clipped / snr
    if parameterization == "v":
        return clipped / (snr + 1.0)
    if parameterization == "x0":
        return clipped
    raise ValueError(f"parameterization must be one of {PARAMETERIZATIONS}, "
                     f"got {parameterization!r}")


def diffusion_loss(prediction: jax.Array, x0: jax.Array, noise: jax.Array, alpha: jax.Array,
                   sigma: jax.Array, parameterization: str = "eps", weighting: str = "simple",
                   snr_gamma: float = 5.0) -> tuple[jax.Array, dict]:
    """The denoising loss: weighted mean squared error of `prediction` against its target.

    Args:
        prediction: [B, ...] denoiser output at x_t = alpha * x0 + sigma * noise.
        x0, noise: [B, ...] the clean data and the noise that made x_t.
        alpha, sigma: [B] the schedule's scales at each example's timestep.
        parameterization: "eps", "x0" or "v".
        weighting: "simple" or "min_snr" (with `snr_gamma`).

    Returns:
        (scalar loss, {"mse": [B] unweighted per-example MSE, "weight": [B]}).

    Example:
        >>> import jax.numpy as jnp
        >>> from jaxgen.losses import diffusion_loss
        >>> x0, noise = jnp.ones((2, 3)), -jnp.ones((2, 3))
        >>> alpha, sigma = jnp.full(2, 0.6), jnp.full(2, 0.8)
        >>> loss, aux = diffusion_loss(noise, x0, noise, alpha, sigma)  # eps model, true noise
        >>> float(loss), aux["mse"].shape
        (0.0, (2,))
    """
    chex.assert_equal_shape([prediction, x0, noise])
    chex.assert_shape([alpha, sigma], (x0.shape[0],))
    target = prediction_target(parameterization, x0, noise, alpha, sigma)
    error = jnp.square(prediction.astype(jnp.float32) - target.astype(jnp.float32))
    mse = jnp.mean(error.reshape(error.shape[0], -1), axis=-1)
    weight = loss_weight(jnp.square(alpha) / jnp.square(sigma), parameterization, weighting,
                         snr_gamma)
    return jnp.mean(weight * mse), {"mse": mse, "weight": weight}


def flow_matching_loss(velocity: jax.Array, x0: jax.Array,
                       noise: jax.Array) -> tuple[jax.Array, dict]:
    """Conditional flow matching (Lipman et al. 2023; Liu et al. 2023): MSE of the predicted
    velocity at x_t against d x_t / dt = noise - x0. Returns (scalar, {"mse": [B]}).

    Example:
        >>> import jax.numpy as jnp
        >>> from jaxgen.losses import flow_matching_loss
        >>> x0, noise = jnp.zeros((2, 3)), jnp.ones((2, 3))
        >>> float(flow_matching_loss(noise - x0, x0, noise)[0])  # the path's own velocity
        0.0
        >>> flow_matching_loss(jnp.zeros((2, 3)), x0, noise)[1]["mse"].tolist()
        [1.0, 1.0]
    """
    chex.assert_equal_shape([velocity, x0, noise])
    error = jnp.square(velocity.astype(jnp.float32) - (noise - x0).astype(jnp.float32))
    mse = jnp.mean(error.reshape(error.shape[0], -1), axis=-1)
    return jnp.mean(mse), {"mse": mse}


def logit_normal_times(key: jax.Array, num: int, mean: float = 0.0,
                       std: float = 1.0) -> jax.Array:
    """[num] times in (0, 1) with logit(t) ~ N(mean, std^2): Stable Diffusion 3's sampling of
    flow-matching times (Esser et al. 2024, section 3.1), which favours the middle of the path.

    Example:
        >>> import jax
        >>> from jaxgen.losses import logit_normal_times
        >>> t = logit_normal_times(jax.random.key(0), 8)
        >>> t.shape, bool(((t > 0) & (t < 1)).all())
        ((8,), True)
    """
    return jax.nn.sigmoid(mean + std * jax.random.normal(key, (num,)))
