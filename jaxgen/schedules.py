"""The ground floor of diffusion: noise schedules, the forward process and the conversions
between what a denoiser may predict. The losses (`jaxgen.losses`) and the samplers
(`jaxgen.sample.diffusion`) both build on it; `jaxgen.losses` re-exports its names, so
`from jaxgen.losses import linear_schedule` keeps working.

Variance-preserving notation throughout: `x_t = alpha_t * x_0 + sigma_t * eps` with
`alpha_t^2 + sigma_t^2 = 1` and `SNR_t = alpha_t^2 / sigma_t^2`. A denoiser predicts one of

- "eps": the noise (Ho et al. 2020),
- "x0": the clean data,
- "v": `alpha_t * eps - sigma_t * x_0` (Salimans & Ho 2022),

and `to_x0_and_eps` converts any of them to the other two. Flow matching (rectified flow) has
its own straight path `x_t = (1 - t) x_0 + t eps` (`flow_interpolate`).

Schedules are computed once in float64 (as DDPM's code does) and returned as float32 arrays;
everything else is a pure function of arrays, with per-example scales of shape [B].
"""

from typing import NamedTuple

import chex
import jax
import jax.numpy as jnp
import numpy as np

PARAMETERIZATIONS = ("eps", "x0", "v")


class NoiseSchedule(NamedTuple):
    """A discrete variance-preserving schedule over timesteps 0 .. T-1.

    `betas[t]` is the variance added at step t; `alphas_cumprod[t] = prod_{s <= t} (1 - beta_s)`
    is alpha_t^2 of the marginal q(x_t | x_0).

    Example:
        >>> import jax.numpy as jnp
        >>> from jaxgen.schedules import NoiseSchedule
        >>> betas = jnp.array([0.5, 0.5])
        >>> schedule = NoiseSchedule(betas, alphas_cumprod=jnp.cumprod(1.0 - betas))
        >>> schedule.num_steps, schedule.alphas_cumprod.tolist()
        (2, [0.5, 0.25])
        >>> bool(jnp.allclose(schedule.alpha**2 + schedule.sigma**2, 1.0))  # variance-preserving
        True
    """

    betas: jax.Array  # [T]
    alphas_cumprod: jax.Array  # [T]

    @property
    def num_steps(self) -> int:
        return self.betas.shape[0]

    @property
    def alpha(self) -> jax.Array:
        """[T] signal scale sqrt(alphas_cumprod)."""
        return jnp.sqrt(self.alphas_cumprod)

    @property
    def sigma(self) -> jax.Array:
        """[T] noise scale sqrt(1 - alphas_cumprod)."""
        return jnp.sqrt(1.0 - self.alphas_cumprod)

    @property
    def log_snr(self) -> jax.Array:
        """[T] log(alpha_t^2 / sigma_t^2), strictly decreasing in t."""
        return jnp.log(self.alphas_cumprod) - jnp.log1p(-self.alphas_cumprod)


def _from_betas(betas: np.ndarray) -> NoiseSchedule:
    return NoiseSchedule(jnp.asarray(betas, jnp.float32),
                         jnp.asarray(np.cumprod(1.0 - betas), jnp.float32))


def linear_schedule(num_steps: int = 1000, beta_start: float = 1e-4,
                    beta_end: float = 0.02) -> NoiseSchedule:
    """DDPM's schedule (Ho et al. 2020, section 4): betas linear from 1e-4 to 0.02 over T.

    Example:
        >>> from jaxgen.schedules import linear_schedule
        >>> schedule = linear_schedule(1000)
        >>> round(float(schedule.betas[0]), 6), round(float(schedule.betas[-1]), 6)
        (0.0001, 0.02)
    """
    return _from_betas(np.linspace(beta_start, beta_end, num_steps, dtype=np.float64))


def cosine_schedule(num_steps: int = 1000, offset: float = 0.008,
                    max_beta: float = 0.999) -> NoiseSchedule:
    """The cosine schedule (Nichol & Dhariwal 2021, eq. 17):
    alphas_cumprod(t) = f(t) / f(0), f(t) = cos((t / T + s) / (1 + s) * pi / 2)^2, with each
    beta clipped to `max_beta` so the last steps stay finite.

    Example:
        >>> from jaxgen.schedules import cosine_schedule
        >>> schedule = cosine_schedule(100)
        >>> bool(schedule.alphas_cumprod[0] > 0.999), bool(schedule.alphas_cumprod[-1] < 1e-6)
        (True, True)
        >>> round(float(schedule.betas[-1]), 4)  # f(T) = 0 would make it 1: clipped
        0.999
    """
    t = np.arange(num_steps + 1, dtype=np.float64) / num_steps
    f = np.cos((t + offset) / (1 + offset) * np.pi / 2) ** 2
    return _from_betas(np.minimum(1.0 - f[1:] / f[:-1], max_beta))


def scaled_linear_schedule(num_steps: int = 1000, beta_start: float = 0.00085,
                           beta_end: float = 0.012) -> NoiseSchedule:
    """Stable Diffusion's schedule (diffusers' "scaled_linear"): sqrt(beta) linear from
    sqrt(beta_start) to sqrt(beta_end), so betas grow quadratically.

    Example:
        >>> from jaxgen.schedules import scaled_linear_schedule
        >>> betas = scaled_linear_schedule(1000).betas
        >>> round(float(betas[0]), 6), round(float(betas[-1]), 6)
        (0.00085, 0.012)
    """
    return _from_betas(np.linspace(beta_start**0.5, beta_end**0.5, num_steps,
                                   dtype=np.float64) ** 2)


SCHEDULES = {"linear": linear_schedule, "cosine": cosine_schedule,
             "scaled_linear": scaled_linear_schedule}


def make_schedule(name: str, num_steps: int = 1000, beta_start: float | None = None,
                  beta_end: float | None = None) -> NoiseSchedule:
    """The named schedule over `num_steps`; `beta_start` / `beta_end` (None: the schedule's
    own) set the range of "linear" and "scaled_linear".

    Example:
        >>> import jax.numpy as jnp
        >>> from jaxgen.schedules import linear_schedule, make_schedule
        >>> bool(jnp.array_equal(make_schedule("linear", 50).betas, linear_schedule(50).betas))
        True
        >>> round(float(make_schedule("linear", 50, beta_end=0.05).betas[-1]), 6)
        0.05
    """
    if name not in SCHEDULES:
        raise ValueError(f"Unknown noise schedule {name!r}; known: {sorted(SCHEDULES)}")
    betas = {k: v for k, v in (("beta_start", beta_start), ("beta_end", beta_end))
             if v is not None}
    if betas and name == "cosine":
        raise ValueError("the cosine schedule has no beta_start / beta_end")
    return SCHEDULES[name](num_steps, **betas)


def per_example(scale: jax.Array, like: jax.Array) -> jax.Array:
    """[B] -> [B, 1, ..., 1] to broadcast against `like` [B, ...].

    Example:
        >>> import jax.numpy as jnp
        >>> from jaxgen.schedules import per_example
        >>> per_example(jnp.ones(2), like=jnp.zeros((2, 8, 8, 3))).shape
        (2, 1, 1, 1)
    """
    return scale.reshape(scale.shape[0], *([1] * (like.ndim - 1)))


def add_noise(x0: jax.Array, noise: jax.Array, alpha: jax.Array, sigma: jax.Array) -> jax.Array:
    """x_t = alpha * x0 + sigma * noise, with alpha and sigma [B] per example.

    Example:
        >>> import jax.numpy as jnp
        >>> from jaxgen.schedules import add_noise
        >>> x0, noise = jnp.ones((2, 3)), -jnp.ones((2, 3))
        >>> x_t = add_noise(x0, noise, alpha=jnp.array([1.0, 0.6]), sigma=jnp.array([0.0, 0.8]))
        >>> x_t.shape, [round(v, 4) for v in x_t[:, 0].tolist()]  # clean, then 0.6 - 0.8
        ((2, 3), [1.0, -0.2])
    """
    chex.assert_equal_shape([x0, noise])
    return per_example(alpha, x0) * x0 + per_example(sigma, x0) * noise


def prediction_target(parameterization: str, x0: jax.Array, noise: jax.Array,
                      alpha: jax.Array, sigma: jax.Array) -> jax.Array:
    """What a denoiser of this parameterization should output for (x0, noise) at (alpha,
    sigma).

    Example:
        >>> import jax.numpy as jnp
        >>> from jaxgen.schedules import prediction_target
        >>> x0, noise = jnp.ones((1, 2)), jnp.full((1, 2), 2.0)
        >>> alpha, sigma = jnp.array([0.6]), jnp.array([0.8])
        >>> prediction_target("eps", x0, noise, alpha, sigma).tolist()
        [[2.0, 2.0]]
        >>> [round(v, 4) for v in prediction_target("v", x0, noise, alpha, sigma)[0].tolist()]
        [0.4, 0.4]
    """
    if parameterization == "eps":
        return noise
    if parameterization == "x0":
        return x0
    if parameterization == "v":
        return per_example(alpha, x0) * noise - per_example(sigma, x0) * x0
    raise ValueError(f"parameterization must be one of {PARAMETERIZATIONS}, "
                     f"got {parameterization!r}")


def to_x0_and_eps(prediction: jax.Array, x_t: jax.Array, alpha: jax.Array, sigma: jax.Array,
                  parameterization: str) -> tuple[jax.Array, jax.Array]:
    """The (x0, eps) implied by a denoiser output at x_t (variance-preserving: a^2 + s^2 = 1).

    Example:
        >>> import jax.numpy as jnp
        >>> from jaxgen.schedules import add_noise, prediction_target, to_x0_and_eps
        >>> x0, noise = jnp.ones((1, 2)), -jnp.ones((1, 2))
        >>> alpha, sigma = jnp.array([0.6]), jnp.array([0.8])
        >>> v = prediction_target("v", x0, noise, alpha, sigma)  # a perfect v-prediction
        >>> x0_v, eps_v = to_x0_and_eps(v, add_noise(x0, noise, alpha, sigma), alpha, sigma, "v")
        >>> bool(jnp.allclose(x0_v, x0, atol=1e-5) & jnp.allclose(eps_v, noise, atol=1e-5))
        True
    """
    a, s = per_example(alpha, x_t), per_example(sigma, x_t)
    if parameterization == "eps":
        return (x_t - s * prediction) / a, prediction
    if parameterization == "x0":
        return prediction, (x_t - a * prediction) / s
    if parameterization == "v":
        return a * x_t - s * prediction, s * x_t + a * prediction
    raise ValueError(f"parameterization must be one of {PARAMETERIZATIONS}, "
                     f"got {parameterization!r}")


def flow_interpolate(x0: jax.Array, noise: jax.Array, t: jax.Array) -> jax.Array:
    """The rectified-flow path x_t = (1 - t) x0 + t noise, t [B] in [0, 1] (1 is pure noise).

    Example:
        >>> import jax.numpy as jnp
        >>> from jaxgen.schedules import flow_interpolate
        >>> x0, noise = jnp.zeros((3, 2)), jnp.ones((3, 2))
        >>> flow_interpolate(x0, noise, t=jnp.array([0.0, 0.25, 1.0]))[:, 0].tolist()
        [0.0, 0.25, 1.0]
    """
    chex.assert_equal_shape([x0, noise])
    t = per_example(t, x0)
    return (1.0 - t) * x0 + t * noise
