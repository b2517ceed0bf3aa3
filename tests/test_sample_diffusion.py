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


def _sqrtm(c):
    w, v = np.linalg.eigh(c)
    return v @ np.diag(np.sqrt(w)) @ v.T


def _linear_part(sampler, *args):
    """(offset, matrix) of `sampler(x, *args)`, an affine map of x for Gaussian data."""
    points = jnp.concatenate([jnp.zeros((1, 2)), jnp.eye(2)])  # x = 0, e1, e2
    out = np.asarray(sampler(points, *args), np.float64)
    return out[0], (out[1:] - out[0]).T


def test_dpm_solver_is_second_order_and_ddim_first():
    # The exact probability-flow map between levels a and b for Gaussian data is affine:
    # x_b - alpha_b MEAN = C_b^1/2 C_a^-1/2 (x_a - alpha_a MEAN), C = alpha^2 COV + sigma^2 I.
    # Both samplers run from t = 999 to t = 199 on uniform integer grids (to_clean=False), so the
    # error is the solver's alone; it must fall as h (DDIM) and h^2 (DPM-Solver++ 2M).
    schedule = losses.linear_schedule(1000)
    acp = np.asarray(schedule.alphas_cumprod, np.float64)

    def marginal(t):
        return acp[t] * COV + (1 - acp[t]) * np.eye(2)

    exact = _sqrtm(marginal(199)) @ np.linalg.inv(_sqrtm(marginal(999)))
    fn = gaussian_denoiser(schedule, "eps")
    solvers = {
        "ddim": lambda x, s: diffusion.ddim_sample(fn, schedule, x, s, jax.random.PRNGKey(0),
                                                   to_clean=False),
        "dpm": lambda x, s: diffusion.dpm_solver_sample(fn, schedule, x, s, to_clean=False),
    }
    errors = {name: [] for name in solvers}
    for num_steps in (10, 20, 40, 80):
        steps = np.linspace(999, 199, num_steps + 1).astype(np.int32)
        for name, solver in solvers.items():
            _, matrix = _linear_part(solver, steps)
            errors[name].append(np.abs(matrix - exact).max())
    for name, (low, high) in {"ddim": (0.9, 1.1), "dpm": (1.85, 2.4)}.items():
        e = np.array(errors[name])
        orders = np.log2(e[:-1] / e[1:])
        assert np.all((orders > low) & (orders < high)), (name, e, orders)
    assert errors["dpm"][0] < errors["ddim"][0] / 4  # 10 steps: 7.9e-3 against 3.9e-2


@pytest.mark.parametrize("parameterization", ["eps", "v"])
def test_dpm_solver_and_ddpm_sample_the_gaussian(parameterization):
    schedule = losses.cosine_schedule(1000)
    fn = gaussian_denoiser(schedule, parameterization)
    x_T = jnp.asarray(np.random.default_rng(0).standard_normal((20_000, 2)), jnp.float32)
    steps = diffusion.timesteps(1000, 20, "trailing")
    x = np.asarray(jax.jit(lambda x: diffusion.dpm_solver_sample(
        fn, schedule, x, steps, parameterization))(x_T))
    # 20 steps to a clean sample: within 0.01 of the moments (DDIM at 20 steps is 0.06 off).
    np.testing.assert_allclose(x.mean(0), MEAN, atol=0.02)
    np.testing.assert_allclose(np.cov(x.T), COV, atol=0.03)
    x = np.asarray(jax.jit(lambda x, k: diffusion.ddpm_sample(
        fn, schedule, x, k, parameterization))(x_T, jax.random.PRNGKey(3)))
    np.testing.assert_allclose(x.mean(0), MEAN, atol=0.02)
    np.testing.assert_allclose(np.cov(x.T), COV, atol=0.03)


def test_ddim_inversion_returns_to_the_data():
    schedule = losses.cosine_schedule(1000)
    fn = gaussian_denoiser(schedule, "v")
    x0 = jnp.asarray(np.random.default_rng(1).multivariate_normal(MEAN, COV, 2000), jnp.float32)
    errors = []
    for num_steps in (25, 100, 400):
        steps = diffusion.timesteps(1000, num_steps, "trailing")
        noise = diffusion.ddim_invert(fn, schedule, x0, steps, "v")
        back = diffusion.ddim_sample(fn, schedule, noise, steps, jax.random.PRNGKey(0),
                                     parameterization="v")
        errors.append(float(jnp.sqrt(jnp.mean((back - x0) ** 2))))
    # The inverted points are the noise that DDIM maps back to the data: N(0, I) for data
    # from the model's distribution, and the round trip closes as the steps get finer.
    np.testing.assert_allclose(np.cov(np.asarray(noise).T), np.eye(2), atol=0.1)
    np.testing.assert_allclose(np.asarray(noise).mean(0), 0.0, atol=0.07)
    # Measured: RMS 0.087, 0.031, 0.010 at 25, 100, 400 steps.
    assert errors[0] > 2 * errors[1] > 4 * errors[2] and errors[2] < 0.015, errors


def gaussian_velocity(x, t):
    """The optimal flow-matching velocity E[eps - x0 | x_t] for x0 ~ N(MEAN, COV) on the path
    x_t = (1 - t) x0 + t eps: with C_t = (1 - t)^2 COV + t^2 I and d = x_t - (1 - t) MEAN,
    E[eps | x_t] = t C_t^-1 d and E[x0 | x_t] = MEAN + (1 - t) COV C_t^-1 d."""
    mean, cov = jnp.asarray(MEAN, jnp.float32), jnp.asarray(COV, jnp.float32)
    s = (1 - t)[:, None, None]
    marginal = s**2 * cov + (t**2)[:, None, None] * jnp.eye(2)
    d = x - (1 - t)[:, None] * mean
    solved = jnp.linalg.solve(marginal, d[..., None])[..., 0]
    eps = t[:, None] * solved
    x0 = mean + (1 - t)[:, None] * (solved @ cov)
    return eps - x0


def test_flow_samplers_orders_and_moments():
    # From t = 1 (pure noise) to t = 0 the exact ODE map of Gaussian data sends N(0, I) to
    # N(MEAN, COV) affinely: its linear part is COV^1/2. Euler is first order, Heun second.
    exact = _sqrtm(COV)
    errors = {"euler": [], "heun": []}
    for num_steps in (8, 16, 32, 64):
        times = diffusion.flow_times(num_steps)
        for name, sampler in (("euler", diffusion.euler_sample), ("heun", diffusion.heun_sample)):
            offset, matrix = _linear_part(
                lambda x, times, sampler=sampler: sampler(gaussian_velocity, x, times), times)
            errors[name].append(np.abs(matrix - exact).max())
            np.testing.assert_allclose(offset, MEAN, atol=1e-4)
    for name, (low, high) in {"euler": (0.85, 1.15), "heun": (1.8, 2.3)}.items():
        e = np.array(errors[name])
        orders = np.log2(e[:-1] / e[1:])
        assert np.all((orders > low) & (orders < high)), (name, e, orders)
    np.testing.assert_allclose(diffusion.flow_times(2, shift=3.0), [1.0, 0.75, 0.0])


def test_guidance_mixes_one_batched_forward_and_does_not_recompile():
    calls = []

    def model_fn(x, t, labels):
        calls.append(x.shape[0])  # traced once per compilation
        return x * (1.0 + labels[:, None].astype(x.dtype))

    x = jnp.ones((3, 2))
    labels, null = jnp.array([1, 2, 3]), jnp.zeros(3, jnp.int32)

    @jax.jit
    def run(x, labels, scale, low, high):
        fn = diffusion.guided(model_fn, labels, null, scale, noise_level=lambda t: t,
                              interval=(low, high))
        return fn(x, jnp.array([0.5, 1.5, 2.5]))

    out = run(x, labels, 2.0, 0.0, jnp.inf)
    cond, uncond = 1.0 + labels[:, None], 1.0
    np.testing.assert_allclose(out, cond + 2.0 * (cond - uncond) * np.ones((3, 2)))
    # Guidance only where the noise level is in (1, 2]: the middle example.
    out = run(x, jnp.array([3, 1, 2]), 4.0, 1.0, 2.0)
    np.testing.assert_allclose(out[:, 0], [4.0, 2.0 + 4.0 * 1.0, 3.0])
    assert calls == [6], calls  # one doubled batch, one trace for all scales and intervals


@pytest.mark.parametrize("sampler", ["ddim", "dpm"])
def test_clipped_x0_keeps_samples_in_the_data_range(sampler):
    schedule = losses.linear_schedule(1000)
    steps = diffusion.timesteps(1000, 5, "trailing")

    def wild(x, t):  # a bad eps model: its x0 = (x - sigma eps) / alpha leaves [-1, 1]
        return -3.0 * x

    def run(clip):
        if sampler == "ddim":
            return diffusion.ddim_sample(wild, schedule, jnp.ones((4, 2)), steps,
                                         jax.random.PRNGKey(0), clip_x0=clip)
        return diffusion.dpm_solver_sample(wild, schedule, jnp.ones((4, 2)), steps, clip_x0=clip)

    assert np.abs(np.asarray(run(None))).max() > 10
    assert np.abs(np.asarray(run(1.0))).max() <= 1.0 + 1e-6
