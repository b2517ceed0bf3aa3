"""Variational-autoencoder objectives: likelihoods, KL to N(0, I), the ELBO and the IWAE bound.

Everything here is a pure function of arrays. Per-example terms have shape [B]; the scalar losses
are plain means over the batch, so callers can see and change the reduction.
"""

import math

import chex
import jax
import jax.numpy as jnp
import optax

_LOG_2PI = math.log(2.0 * math.pi)


def _sum_per_example(x: jax.Array) -> jax.Array:
    return jnp.sum(x.reshape(x.shape[0], -1), axis=-1)


def gaussian_kl(mean: jax.Array, log_var: jax.Array) -> jax.Array:
    """KL(N(mean, exp(log_var)) || N(0, I)) in nats, summed over the latent dims.

    Kingma & Welling 2014, appendix B: -1/2 sum(1 + log_var - mean^2 - exp(log_var)).

    Args:
        mean: [B, ...] posterior means.
        log_var: [B, ...] posterior log-variances, same shape as `mean`.

    Returns:
        [B] KL per example.

    Example:
        >>> import jax.numpy as jnp
        >>> from jaxgen.losses import gaussian_kl
        >>> gaussian_kl(jnp.zeros((2, 3)), jnp.zeros((2, 3))).tolist()  # the prior itself
        [0.0, 0.0]
        >>> gaussian_kl(jnp.ones((1, 4)), jnp.zeros((1, 4))).tolist()  # mean 1: 1/2 per dim
        [2.0]
    """
    chex.assert_equal_shape([mean, log_var])
    return _sum_per_example(0.5 * (jnp.exp(log_var) + jnp.square(mean) - 1.0 - log_var))


def bernoulli_log_likelihood(logits: jax.Array, targets: jax.Array) -> jax.Array:
    """log p(x | z) for independent Bernoulli pixels given decoder logits.

    Args:
        logits: [B, ...] decoder outputs (pre-sigmoid).
        targets: [B, ...] values in [0, 1] (binary for a proper likelihood).

    Returns:
        [B] log-likelihood per example, summed over all non-batch dims.

    Example:
        >>> import jax.numpy as jnp
        >>> from jaxgen.losses import bernoulli_log_likelihood
        >>> log_p = bernoulli_log_likelihood(jnp.zeros((1, 4)), jnp.ones((1, 4)))
        >>> round(float(log_p[0]), 4)  # logit 0 is a fair coin: 4 pixels, 4 log(1/2)
        -2.7726
    """
    chex.assert_equal_shape([logits, targets])
    return -_sum_per_example(optax.sigmoid_binary_cross_entropy(logits, targets))


def gaussian_log_likelihood(x: jax.Array, mean: jax.Array, log_scale: jax.Array) -> jax.Array:
    """log N(x; mean, exp(log_scale)^2), summed over all non-batch dims.

    Args:
        x: [B, ...] data.
        mean: [B, ...] decoder means.
        log_scale: log standard deviation, broadcastable to `x` (a scalar for a shared scale).

    Returns:
        [B] log-density per example.

    Example:
        >>> import jax.numpy as jnp
        >>> from jaxgen.losses import gaussian_log_likelihood
        >>> x = jnp.zeros((1, 2))
        >>> round(float(gaussian_log_likelihood(x, x, log_scale=0.0)[0]), 4)  # 2 log N(0; 0, 1)
        -1.8379
    """
    chex.assert_equal_shape([x, mean])
    log_scale = jnp.broadcast_to(log_scale, x.shape)
    z = (x - mean) * jnp.exp(-log_scale)
    return _sum_per_example(-0.5 * (jnp.square(z) + _LOG_2PI) - log_scale)


def diagonal_gaussian_log_density(z: jax.Array, mean: jax.Array, log_var: jax.Array) -> jax.Array:
    """log N(z; mean, diag(exp(log_var))) summed over the last axis: [..., D] -> [...].

    Example:
        >>> import jax.numpy as jnp
        >>> from jaxgen.losses import diagonal_gaussian_log_density
        >>> log_q = diagonal_gaussian_log_density(jnp.zeros((3, 2)), jnp.zeros(2), jnp.zeros(2))
        >>> log_q.shape, round(float(log_q[0]), 4)  # [3, 2] -> [3], each 2 log N(0; 0, 1)
        ((3,), -1.8379)
    """
    return jnp.sum(-0.5 * (jnp.square(z - mean) * jnp.exp(-log_var) + log_var + _LOG_2PI), axis=-1)


def elbo_loss(
    log_likelihood: jax.Array, kl: jax.Array, beta: float = 1.0
) -> tuple[jax.Array, dict[str, jax.Array]]:
    """Negative (beta-)ELBO: mean over the batch of beta * KL - log p(x | z).

    With beta = 1 this is the evidence lower bound of Kingma & Welling 2014 (eq. 3), a one-sample
    estimate of the reconstruction expectation plus the analytic KL; beta != 1 is the beta-VAE of
    Higgins et al. 2017.

    Args:
        log_likelihood: [B] log p(x | z) of each example at its posterior sample.
        kl: [B] KL(q(z | x) || p(z)) of each example.
        beta: weight of the KL term in the loss. The reported `elbo` is always the unweighted bound.

    Returns:
        (loss, aux): the scalar loss to minimise, and per-example [B] arrays `elbo`,
        `log_likelihood` and `kl`.

    Example:
        >>> import jax.numpy as jnp
        >>> from jaxgen.losses import elbo_loss
        >>> loss, aux = elbo_loss(jnp.array([-3.0, -5.0]), kl=jnp.array([1.0, 1.0]))
        >>> float(loss), aux["elbo"].tolist()  # mean(KL - log p) = mean(4, 6)
        (5.0, [-4.0, -6.0])
        >>> float(elbo_loss(jnp.array([-3.0, -5.0]), jnp.array([1.0, 1.0]), beta=0.0)[0])
        4.0
    """
    chex.assert_rank([log_likelihood, kl], 1)
    chex.assert_equal_shape([log_likelihood, kl])
    loss = jnp.mean(beta * kl - log_likelihood)
    aux = {"elbo": log_likelihood - kl, "log_likelihood": log_likelihood, "kl": kl}
    return loss, aux


def iwae_bound(
    log_likelihood: jax.Array, log_prior: jax.Array, log_posterior: jax.Array
) -> jax.Array:
    """Importance-weighted bound on log p(x) from K posterior samples (Burda et al. 2016, eq. 8).

    log (1/K) sum_k p(x | z_k) p(z_k) / q(z_k | x), with z_k ~ q(z | x). K = 1 gives the ELBO's
    one-sample estimate; the bound tightens monotonically (in expectation) as K grows.

    Args:
        log_likelihood: [K, B] log p(x | z_k).
        log_prior: [K, B] log p(z_k).
        log_posterior: [K, B] log q(z_k | x).

    Returns:
        [B] the bound per example, in nats.

    Example:
        >>> import jax.numpy as jnp
        >>> from jaxgen.losses import iwae_bound
        >>> log_lik, log_prior = jnp.array([[-3.0]]), jnp.array([[-1.0]])  # K = 1, B = 1
        >>> iwae_bound(log_lik, log_prior, jnp.array([[-0.5]])).tolist()  # ELBO term: -3 - 1 + 0.5
        [-3.5]
    """
    chex.assert_rank([log_likelihood, log_prior, log_posterior], 2)
    chex.assert_equal_shape([log_likelihood, log_prior, log_posterior])
    log_weights = log_likelihood + log_prior - log_posterior
    return jax.nn.logsumexp(log_weights, axis=0) - math.log(log_weights.shape[0])
