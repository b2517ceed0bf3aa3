"""The VAE losses against closed forms: KL, likelihoods, ELBO <= log p(x), IWAE tightening."""

import math

import chex
import jax
import jax.numpy as jnp
import numpy as np
import pytest

from jaxgen import losses


class KLTest(chex.TestCase):
    @chex.variants(with_jit=True, without_jit=True)
    def test_matches_closed_form(self):
        mean = jnp.array([[0.0, 0.0], [1.0, -2.0]])
        log_var = jnp.array([[0.0, 0.0], [math.log(0.25), math.log(4.0)]])
        kl = self.variant(losses.gaussian_kl)(mean, log_var)
        chex.assert_shape(kl, (2,))
        # Per dim: 1/2 (s^2 + m^2 - 1 - log s^2).
        expected = 0.5 * ((0.25 + 1 - 1 - math.log(0.25)) + (4 + 4 - 1 - math.log(4.0)))
        np.testing.assert_allclose(kl, [0.0, expected], rtol=1e-6)

    def test_matches_monte_carlo(self):
        mean, log_var = jnp.array([[0.7, -0.3, 1.5]]), jnp.array([[-0.5, 0.4, -1.2]])
        z = mean + jnp.exp(0.5 * log_var) * jax.random.normal(jax.random.PRNGKey(0), (400_000, 3))
        log_q = losses.diagonal_gaussian_log_density(z, mean, log_var)
        log_p = losses.diagonal_gaussian_log_density(z, 0.0, 0.0)
        np.testing.assert_allclose(jnp.mean(log_q - log_p), losses.gaussian_kl(mean, log_var)[0],
                                   rtol=1e-2)

    def test_rejects_mismatched_shapes(self):
        with pytest.raises(AssertionError):
            losses.gaussian_kl(jnp.zeros((2, 3)), jnp.zeros((2, 4)))


def test_bernoulli_log_likelihood_closed_form():
    logits = jnp.array([[0.3, -1.2], [2.0, 0.0]])
    targets = jnp.array([[1.0, 0.0], [0.0, 1.0]])
    p = jax.nn.sigmoid(logits)
    expected = jnp.sum(targets * jnp.log(p) + (1 - targets) * jnp.log1p(-p), axis=-1)
    np.testing.assert_allclose(losses.bernoulli_log_likelihood(logits, targets), expected,
                               rtol=1e-6)


def test_gaussian_log_likelihood_closed_form():
    x, mean, log_scale = jnp.array([[1.0, 2.0]]), jnp.array([[0.5, 2.5]]), jnp.log(2.0)
    expected = sum(-0.5 * ((a - m) / 2) ** 2 - math.log(2) - 0.5 * math.log(2 * math.pi)
                   for a, m in [(1.0, 0.5), (2.0, 2.5)])
    np.testing.assert_allclose(losses.gaussian_log_likelihood(x, mean, log_scale), [expected],
                               rtol=1e-6)


def test_elbo_loss_reduction_and_beta():
    log_lik, kl = jnp.array([-10.0, -20.0]), jnp.array([1.0, 3.0])
    loss, aux = losses.elbo_loss(log_lik, kl, beta=2.0)
    np.testing.assert_allclose(loss, np.mean([2 * 1 + 10, 2 * 3 + 20]))
    np.testing.assert_allclose(aux["elbo"], [-11.0, -23.0])  # always the beta = 1 bound


# Linear-Gaussian model where log p(x) is exact: z ~ N(0, 1), x | z ~ N(a z, s^2), so
# x ~ N(0, a^2 + s^2), and the exact posterior is Gaussian.
A, S = 2.0, 0.5


def _linear_gaussian_terms(x, q_mean, q_log_var, key, k):
    z = q_mean + jnp.exp(0.5 * q_log_var) * jax.random.normal(key, (k, *x.shape))
    log_lik = -0.5 * ((x - A * z) / S) ** 2 - math.log(S) - 0.5 * math.log(2 * math.pi)
    log_prior = losses.diagonal_gaussian_log_density(z[..., None], 0.0, 0.0)
    log_post = losses.diagonal_gaussian_log_density(z[..., None], q_mean[:, None],
                                                    q_log_var[:, None])
    return log_lik, log_prior, log_post


def _log_px(x):
    var = A**2 + S**2
    return -0.5 * x**2 / var - 0.5 * math.log(2 * math.pi * var)


def test_elbo_is_below_log_likelihood_and_tight_at_true_posterior():
    x = jnp.array([-1.0, 0.3, 2.5])
    post_var = 1.0 / (1.0 + A**2 / S**2)
    post_mean = post_var * A * x / S**2
    for q_mean, q_log_var, tight in [
        (post_mean, jnp.full(3, math.log(post_var)), True),
        (post_mean + 0.5, jnp.full(3, math.log(post_var) + 1.0), False),
    ]:
        log_lik, _, _ = _linear_gaussian_terms(x, q_mean, q_log_var, jax.random.PRNGKey(1),
                                               200_000)
        kl = losses.gaussian_kl(q_mean[:, None], q_log_var[:, None])
        _, aux = losses.elbo_loss(jnp.mean(log_lik, axis=0), kl)
        elbo = aux["elbo"]
        if tight:  # the ELBO equals log p(x) at the exact posterior
            np.testing.assert_allclose(elbo, _log_px(x), atol=2e-3)
        else:
            assert np.all(elbo < _log_px(x) - 0.05)


def test_iwae_tightens_with_k_and_approaches_log_likelihood():
    x = jnp.array([-1.0, 0.3, 2.5])
    post_var = 1.0 / (1.0 + A**2 / S**2)
    # A shifted, too-wide posterior: a loose ELBO, with light-tailed importance weights.
    q_mean = post_var * A * x / S**2 + 0.1
    q_log_var = jnp.full(3, math.log(post_var) + 1.0)
    bounds = []
    for k in (1, 10, 100, 5000):
        reps = []
        for seed in range(100):
            terms = _linear_gaussian_terms(x, q_mean, q_log_var, jax.random.PRNGKey(seed), k)
            reps.append(losses.iwae_bound(*terms))
        bounds.append(np.mean(reps, axis=0))
    bounds = np.array(bounds)
    assert np.all(np.diff(bounds, axis=0) > 0), bounds  # strictly tighter with each k
    assert np.all(bounds <= _log_px(np.asarray(x)) + 1e-3)
    assert np.all(_log_px(np.asarray(x)) - bounds[0] > 0.1)  # k = 1 (the ELBO) is loose ...
    np.testing.assert_allclose(bounds[-1], _log_px(np.asarray(x)), atol=5e-3)  # k = 5000 is not
