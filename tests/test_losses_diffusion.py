"""Diffusion losses and schedules against closed forms and published constants."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from jaxgen import losses


def test_linear_schedule_is_ddpms():
    schedule = losses.linear_schedule(1000)
    np.testing.assert_allclose(schedule.betas[np.array([0, -1])], [1e-4, 0.02], rtol=1e-6)
    # DDPM's sqrt(alphas_cumprod[T-1]) is 0.00635: x_T is noise to 6e-3 of the signal.
    np.testing.assert_allclose(schedule.alphas_cumprod[-1], 4.0358e-5, rtol=1e-3)
    np.testing.assert_allclose(schedule.alpha**2 + schedule.sigma**2, 1.0, atol=1e-6)
    assert np.all(np.diff(schedule.log_snr) < 0)


def test_cosine_schedule_follows_its_closed_form_until_the_clip():
    schedule = losses.cosine_schedule(1000)
    t = np.arange(1, 1001) / 1000

    def f(t):
        return np.cos((t + 0.008) / 1.008 * np.pi / 2) ** 2

    # Unclipped steps: alphas_cumprod[t] = f((t + 1) / T) / f(0).
    np.testing.assert_allclose(schedule.alphas_cumprod[:990], (f(t) / f(0))[:990], rtol=1e-4)
    assert float(schedule.betas.max()) == pytest.approx(0.999)  # the last step is clipped
    assert np.all(np.diff(schedule.log_snr) < 0)
    with pytest.raises(ValueError, match="Unknown noise schedule"):
        losses.make_schedule("sigmoid")


def _denoising_case(seed=0, batch=6):
    rng = np.random.default_rng(seed)
    x0 = jnp.asarray(rng.normal(size=(batch, 4, 4, 2)), jnp.float32)
    noise = jnp.asarray(rng.normal(size=x0.shape), jnp.float32)
    schedule = losses.cosine_schedule(1000)
    t = jnp.asarray([0, 10, 200, 500, 800, 980][:batch])
    return x0, noise, schedule.alpha[t], schedule.sigma[t]


@pytest.mark.parametrize("parameterization", losses.PARAMETERIZATIONS)
def test_targets_round_trip_and_a_perfect_denoiser_scores_zero(parameterization):
    x0, noise, alpha, sigma = _denoising_case()
    x_t = losses.add_noise(x0, noise, alpha, sigma)
    target = losses.prediction_target(parameterization, x0, noise, alpha, sigma)
    x0_hat, eps_hat = losses.to_x0_and_eps(target, x_t, alpha, sigma, parameterization)
    np.testing.assert_allclose(x0_hat[:5], x0[:5], atol=2e-3)  # t=980: x0 = x_t / 0.03
    np.testing.assert_allclose(eps_hat[1:], noise[1:], atol=2e-3)  # t=0: eps = x_t / 0.002
    for weighting in losses.WEIGHTINGS:
        loss, aux = losses.diffusion_loss(target, x0, noise, alpha, sigma, parameterization,
                                          weighting)
        assert float(loss) == 0.0 and aux["mse"].shape == (6,)


def test_min_snr_is_the_same_loss_in_every_parameterization():
    # One imperfect denoiser, expressed as eps, x0 and v outputs: x0-space MSE times
    # min(SNR, gamma) is what each parameterization's Min-SNR weight recovers.
    x0, noise, alpha, sigma = _denoising_case()
    x_t = losses.add_noise(x0, noise, alpha, sigma)
    eps_hat = noise + 0.3 * jnp.asarray(np.random.default_rng(1).normal(size=x0.shape))
    x0_hat = (x_t - sigma[:, None, None, None] * eps_hat) / alpha[:, None, None, None]
    v_hat = alpha[:, None, None, None] * eps_hat - sigma[:, None, None, None] * x0_hat
    outputs = {"eps": eps_hat, "x0": x0_hat, "v": v_hat}
    per_example = {}
    for name, output in outputs.items():
        _, aux = losses.diffusion_loss(output, x0, noise, alpha, sigma, name, "min_snr", 5.0)
        per_example[name] = aux["weight"] * aux["mse"]
    snr = (alpha / sigma) ** 2
    eps_mse = jnp.mean(jnp.square(eps_hat - noise), axis=(1, 2, 3))
    want = jnp.minimum(snr, 5.0) / snr * eps_mse
    for name in outputs:
        np.testing.assert_allclose(per_example[name], want, rtol=2e-3, err_msg=name)
    # And the simple eps loss is the plain MSE of the noise.
    loss, _ = losses.diffusion_loss(eps_hat, x0, noise, alpha, sigma)
    np.testing.assert_allclose(loss, jnp.mean(jnp.square(eps_hat - noise)), rtol=1e-6)


def test_flow_matching_path_target_and_times():
    x0, noise, _, _ = _denoising_case()
    np.testing.assert_allclose(losses.flow_interpolate(x0, noise, jnp.zeros(6)), x0)
    np.testing.assert_allclose(losses.flow_interpolate(x0, noise, jnp.ones(6)), noise)
    # The path is straight: its derivative in t is noise - x0 everywhere.
    t = jnp.linspace(0.1, 0.9, 6)
    velocity = jax.jvp(lambda t: losses.flow_interpolate(x0, noise, t), (t,), (jnp.ones(6),))[1]
    loss, aux = losses.flow_matching_loss(velocity, x0, noise)
    assert float(loss) < 1e-10 and aux["mse"].shape == (6,)
    loss, _ = losses.flow_matching_loss(jnp.zeros_like(x0), x0, noise)
    np.testing.assert_allclose(loss, jnp.mean(jnp.square(noise - x0)), rtol=1e-6)
    times = losses.logit_normal_times(jax.random.PRNGKey(0), 20_000, mean=0.5, std=1.0)
    assert float(times.min()) > 0.0 and float(times.max()) < 1.0
    logits = np.log(times / (1 - times))
    assert abs(logits.mean() - 0.5) < 0.03 and abs(logits.std() - 1.0) < 0.03


def test_bad_names_are_refused():
    x0, noise, alpha, sigma = _denoising_case()
    with pytest.raises(ValueError, match="parameterization must be one of"):
        losses.diffusion_loss(x0, x0, noise, alpha, sigma, "score")
    with pytest.raises(ValueError, match="weighting must be one of"):
        losses.diffusion_loss(x0, x0, noise, alpha, sigma, "eps", "p2")
