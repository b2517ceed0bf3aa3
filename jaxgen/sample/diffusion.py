"""Diffusion samplers as one `lax.scan` each, for any denoiser `fn(x_t, t) -> prediction`.

`t` is the integer training timestep [B] of the `NoiseSchedule`; the prediction is in the
parameterization the denoiser was trained with ("eps", "x0" or "v"), converted here with
`losses.to_x0_and_eps`.
"""

from collections.abc import Callable

import jax
import jax.numpy as jnp
import numpy as np

from jaxgen import losses

SPACINGS = ("leading", "trailing", "linspace")


def timesteps(num_train_steps: int, num_steps: int, spacing: str = "trailing") -> np.ndarray:
    """The training timesteps a sampler visits, from noisiest to cleanest, as diffusers'
    schedulers name the choices (Lin et al. 2024 discuss why "trailing" should be preferred):

    "leading":  0, r, 2r, ... with r = T // n (the DDIM paper's; never visits t = T - 1);
    "trailing": T - 1, T - 1 - T/n, ... rounded (starts from the noisiest step);
    "linspace": n points evenly from 0 to T - 1, rounded.
    """
    if not 1 <= num_steps <= num_train_steps:
        raise ValueError(f"num_steps must be in [1, {num_train_steps}], got {num_steps}")
    if spacing == "leading":
        steps = np.arange(num_steps) * (num_train_steps // num_steps)
    elif spacing == "trailing":
        steps = np.round(np.arange(num_train_steps, 0, -num_train_steps / num_steps)) - 1
        steps = steps[::-1]
    elif spacing == "linspace":
        steps = np.round(np.linspace(0, num_train_steps - 1, num_steps))
    else:
        raise ValueError(f"spacing must be one of {SPACINGS}, got {spacing!r}")
    return steps.astype(np.int32)[::-1].copy()


def ddim_sample(fn: Callable[[jax.Array, jax.Array], jax.Array], schedule: losses.NoiseSchedule,
                x_T: jax.Array, steps: jax.Array, key: jax.Array, eta: float | jax.Array = 0.0,
                parameterization: str = "eps") -> jax.Array:
    """DDIM (Song et al. 2021, eq. 12) from x_T over `steps` (noisiest first); `eta` = 0 is
    deterministic, `eta` = 1 matches DDPM's ancestral variance. The last step goes to
    alphas_cumprod = 1 (a clean sample), as diffusers' `set_alpha_to_one`."""
    acp = schedule.alphas_cumprod
    steps = jnp.asarray(steps)
    prev_acp = jnp.concatenate([acp[steps[1:]], jnp.ones((1,), acp.dtype)])
    batch = x_T.shape[0]

    def step(x, inputs):
        t, acp_prev, key_i = inputs
        acp_t = acp[t]
        alpha, sigma = jnp.sqrt(acp_t), jnp.sqrt(1.0 - acp_t)
        prediction = fn(x, jnp.full((batch,), t))
        x0, eps = losses.to_x0_and_eps(prediction, x, jnp.full((batch,), alpha),
                                       jnp.full((batch,), sigma), parameterization)
        noise_std = eta * jnp.sqrt((1 - acp_prev) / (1 - acp_t) * (1 - acp_t / acp_prev))
        direction = jnp.sqrt(jnp.maximum(1 - acp_prev - noise_std**2, 0.0))
        x = (jnp.sqrt(acp_prev) * x0 + direction * eps
             + noise_std * jax.random.normal(key_i, x.shape, x.dtype))
        return x, None

    keys = jax.random.split(key, steps.shape[0])
    x, _ = jax.lax.scan(step, x_T, (steps, prev_acp, keys))
    return x
