"""Diffusion samplers driven by the closed-form optimal denoiser of Gaussian data."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from jaxgen import losses
from jaxgen.sample import diffusion

MEAN = np.array([1.0, -0.5])
COV = np.array([[0.5, 0.3], [0.3, 0.4]])


def gaussian_denoiser(schedule, parameterization="eps"):
    """E[eps | x_t] for x_0 ~ N(MEAN, COV): x_t ~ N(a MEAN, a^2 COV + s^2 I), so
    E[eps | x_t] = s (a^2 COV + s^2 I)^-1 (x_t - a MEAN); returned in `parameterization`."""
    mean, cov = jnp.asarray(MEAN, jnp.float32), jnp.asarray(COV, jnp.float32)

    def fn(x, t):
        a, s = schedule.alpha[t][:, None], schedule.sigma[t][:, None]
        marginal = a[:, :, None] ** 2 * cov + s[:, :, None] ** 2 * jnp.eye(2)
        eps = s * jnp.linalg.solve(marginal, (x - a * mean)[..., None])[..., 0]
        x0 = (x - s * eps) / a
        targets = {"eps": eps, "x0": x0, "v": a * eps - s * x0}
        return targets[parameterization]

    return fn


def test_timestep_spacings_match_diffusers():
    np.testing.assert_array_equal(diffusion.timesteps(1000, 5, "leading"), [800, 600, 400, 200, 0])
    np.testing.assert_array_equal(diffusion.timesteps(1000, 5, "trailing"),
                                  [999, 799, 599, 399, 199])
    np.testing.assert_array_equal(diffusion.timesteps(1000, 5, "linspace"),
                                  [999, 749, 500, 250, 0])
    with pytest.raises(ValueError, match="spacing must be one of"):
        diffusion.timesteps(1000, 5, "uniform")


@pytest.mark.parametrize("parameterization", losses.PARAMETERIZATIONS)
def test_ddim_with_the_optimal_denoiser_samples_the_gaussian(parameterization):
    schedule = losses.cosine_schedule(1000)
    fn = gaussian_denoiser(schedule, parameterization)
    x_T = jax.random.normal(jax.random.PRNGKey(0), (20_000, 2))
    steps = diffusion.timesteps(1000, 100, "trailing")
    sample = jax.jit(lambda x, k, eta=0.0: diffusion.ddim_sample(
        fn, schedule, x, steps, k, eta, parameterization=parameterization))
    x = np.asarray(sample(x_T, jax.random.PRNGKey(1)))
    # Tolerances: 20,000 samples give a standard error near 0.005 on these moments.
    np.testing.assert_allclose(x.mean(0), MEAN, atol=0.02)
    np.testing.assert_allclose(np.cov(x.T), COV, atol=0.03)
    # eta = 0 is deterministic: the key does not matter.
    np.testing.assert_array_equal(sample(x_T, jax.random.PRNGKey(2)), x)
    # eta = 1 (DDPM's variance) is stochastic and samples the same distribution.
    stochastic = np.asarray(sample(x_T, jax.random.PRNGKey(1), 1.0))
    assert not np.allclose(stochastic, x)
    np.testing.assert_allclose(stochastic.mean(0), MEAN, atol=0.02)
    np.testing.assert_allclose(np.cov(stochastic.T), COV, atol=0.03)


def test_ddim_is_first_order_in_the_number_of_steps():
    # With the optimal denoiser of Gaussian data, deterministic DDIM is an affine map of x_T,
    # so the sample covariance is exactly A A^T: no Monte Carlo error hides the discretisation
    # error, which must halve with each doubling of the steps (a first-order method).
    schedule = losses.cosine_schedule(1000)
    fn = gaussian_denoiser(schedule, "eps")
    points = jnp.concatenate([jnp.zeros((1, 2)), jnp.eye(2)])  # x_T = 0, e1, e2
    errors = []
    for num_steps in (10, 20, 40, 80):
        steps = diffusion.timesteps(1000, num_steps, "trailing")
        out = np.asarray(diffusion.ddim_sample(fn, schedule, points, steps,
                                               jax.random.PRNGKey(0)), np.float64)
        linear = (out[1:] - out[0]).T
        errors.append(np.abs(linear @ linear.T - COV).max())
        np.testing.assert_allclose(out[0], MEAN, atol=1e-4)  # the mean is exact
    orders = np.log2(np.array(errors[:-1]) / np.array(errors[1:]))
    assert np.all((orders > 0.85) & (orders < 1.15)), (errors, orders)
    assert errors[-1] < 0.02  # 80 steps: still 1.6e-2 off in covariance
