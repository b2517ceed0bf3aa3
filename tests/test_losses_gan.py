"""The adversarial losses against their closed forms on hand-made logits, and the penalties
against finite-difference gradient norms."""

import math

import chex
import jax
import jax.numpy as jnp
import numpy as np
import pytest

from jaxgen import losses

REAL = jnp.array([2.0, -0.5, 0.3])
FAKE = jnp.array([-1.0, 0.7])  # a different batch size on purpose


def _log_sigmoid(x):
    return -math.log1p(math.exp(-x))


def _mean(values):
    return sum(values) / len(values)


class LossTest(chex.TestCase):
    @chex.variants(with_jit=True, without_jit=True)
    def test_minimax_and_non_saturating(self):
        d = self.variant(losses.minimax_discriminator_loss)(REAL, FAKE)
        expected_d = (-_mean([_log_sigmoid(x) for x in REAL.tolist()])
                      - _mean([math.log1p(-1 / (1 + math.exp(-x))) for x in FAKE.tolist()]))
        np.testing.assert_allclose(d, expected_d, rtol=1e-6)
        sat = self.variant(losses.minimax_generator_loss)(FAKE)
        np.testing.assert_allclose(
            sat, _mean([math.log1p(-1 / (1 + math.exp(-x))) for x in FAKE.tolist()]), rtol=1e-6)
        ns = self.variant(losses.non_saturating_generator_loss)(FAKE)
        np.testing.assert_allclose(ns, -_mean([_log_sigmoid(x) for x in FAKE.tolist()]),
                                   rtol=1e-6)

    @chex.variants(with_jit=True, without_jit=True)
    def test_hinge(self):
        d = self.variant(losses.hinge_discriminator_loss)(REAL, FAKE)
        # Real: max(0, 1-2)=0, 1.5, 0.7; fake: max(0, 1-1)=0, 1.7.
        np.testing.assert_allclose(d, (0 + 1.5 + 0.7) / 3 + (0 + 1.7) / 2, rtol=1e-6)
        np.testing.assert_allclose(self.variant(losses.hinge_generator_loss)(FAKE), 0.15,
                                   rtol=1e-6, atol=1e-7)

    @chex.variants(with_jit=True, without_jit=True)
    def test_wasserstein(self):
        d = self.variant(losses.wasserstein_discriminator_loss)(REAL, FAKE)
        np.testing.assert_allclose(d, -0.15 - 0.6, rtol=1e-6)
        np.testing.assert_allclose(self.variant(losses.wasserstein_generator_loss)(FAKE), 0.15,
                                   rtol=1e-6)

    @chex.variants(with_jit=True, without_jit=True)
    def test_least_squares(self):
        d = self.variant(losses.least_squares_discriminator_loss)(REAL, FAKE)
        expected = 0.5 * _mean([1.0, 2.25, 0.49]) + 0.5 * _mean([1.0, 0.49])
        np.testing.assert_allclose(d, expected, rtol=1e-6)
        g = self.variant(losses.least_squares_generator_loss)(FAKE)
        np.testing.assert_allclose(g, 0.5 * _mean([4.0, 0.09]), rtol=1e-6)


def test_losses_accept_column_logits_and_reject_other_shapes():
    np.testing.assert_allclose(losses.hinge_discriminator_loss(REAL[:, None], FAKE[:, None]),
                               losses.hinge_discriminator_loss(REAL, FAKE))
    with pytest.raises(AssertionError):
        losses.hinge_discriminator_loss(jnp.zeros((3, 2)), FAKE)


@pytest.mark.parametrize("name", sorted(losses.ADVERSARIAL_LOSSES))
def test_each_pair_pushes_the_right_way(name):
    """Discriminator loss falls as real scores rise and fake scores fall; the generator loss falls
    as fake scores rise: the sign conventions every pair shares. Scores lie in (0, 1), where
    even the least-squares targets (0 for fake, 1 for real) have not been passed."""
    pair = losses.adversarial_loss(name)
    real, fake = jnp.array([0.9, 0.05, 0.3]), jnp.array([0.2, 0.7])
    d_real, d_fake = jax.grad(pair.discriminator, argnums=(0, 1))(real, fake)
    g_fake = jax.grad(pair.generator)(fake)
    assert np.all(np.asarray(d_real) <= 0) and np.any(np.asarray(d_real) < 0)
    assert np.all(np.asarray(d_fake) >= 0) and np.any(np.asarray(d_fake) > 0)
    assert np.all(np.asarray(g_fake) < 0)


def test_unknown_loss_is_a_clear_error():
    with pytest.raises(ValueError, match="known"):
        losses.adversarial_loss("wgan")


def _critic(x):
    """A smooth nonlinear critic of 2-D points whose input gradient is not constant."""
    return jnp.sin(x[:, 0]) * x[:, 1] + 0.5 * jnp.square(x[:, 0] + 2.0 * x[:, 1])


def _finite_difference_norms(critic, x, h=1e-3):
    x = np.asarray(x, np.float64)
    grads = np.zeros_like(x)
    for j in range(x.shape[1]):
        step = np.zeros_like(x)
        step[:, j] = h
        f = lambda v: np.asarray(critic(jnp.asarray(v, jnp.float32)), np.float64)  # noqa: E731
        grads[:, j] = (f(x + step) - f(x - step)) / (2 * h)
    return np.linalg.norm(grads, axis=1)


def test_gradient_penalty_matches_finite_differences():
    key = jax.random.PRNGKey(0)
    real = jax.random.normal(jax.random.PRNGKey(1), (6, 2))
    fake = jax.random.normal(jax.random.PRNGKey(2), (6, 2)) + 3.0
    penalty = losses.gradient_penalty(_critic, real, fake, key)
    eps = jax.random.uniform(key, (6, 1))  # the same draw the penalty makes
    x_hat = eps * real + (1 - eps) * fake
    norms = _finite_difference_norms(_critic, x_hat)
    np.testing.assert_allclose(penalty, np.mean((norms - 1.0) ** 2), rtol=2e-3)


def test_gradient_penalty_is_zero_for_a_unit_slope_critic():
    w = jnp.array([0.6, 0.8])  # ||w|| = 1: every input gradient has norm 1
    real, fake = jnp.ones((4, 2)), jnp.zeros((4, 2))
    penalty = losses.gradient_penalty(lambda x: x @ w, real, fake, jax.random.PRNGKey(0))
    np.testing.assert_allclose(penalty, 0.0, atol=1e-10)


def test_r1_matches_finite_differences_and_reaches_the_critic_weights():
    real = jax.random.normal(jax.random.PRNGKey(3), (5, 2))
    norms = _finite_difference_norms(_critic, real)
    np.testing.assert_allclose(losses.r1_penalty(_critic, real), np.mean(norms**2), rtol=2e-3)
    # The penalty must be differentiable in the critic's parameters (a double backward).
    grad = jax.grad(lambda s: losses.r1_penalty(lambda x: s * _critic(x), real))(2.0)
    np.testing.assert_allclose(grad, 2 * 2.0 * np.mean(norms**2), rtol=2e-3)


def test_penalties_on_image_shaped_inputs():
    w = jax.random.normal(jax.random.PRNGKey(4), (4, 4, 1))
    critic = lambda x: jnp.sum(x * w, axis=(1, 2, 3))  # noqa: E731 - gradient is w everywhere
    x = jnp.zeros((3, 4, 4, 1))
    np.testing.assert_allclose(losses.r1_penalty(critic, x), jnp.sum(w**2), rtol=1e-5)
