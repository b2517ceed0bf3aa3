"""Adversarial losses and the discriminator's gradient penalties.

Every loss is a pure function of discriminator outputs ("logits": real-valued scores, one per
example, shape [B] or [B, 1]; higher means "more real"). Each family has a discriminator loss,
minimised by the discriminator, and a generator loss, minimised by the generator; both are plain
means over the batch. Real and fake batches may have different sizes.

The penalties take the discriminator as a function of its input, because they differentiate it.
"""

from collections.abc import Callable
from typing import NamedTuple

import chex
import jax
import jax.numpy as jnp
import optax


def _scores(logits: jax.Array) -> jax.Array:
    chex.assert_rank(logits, {1, 2})
    if logits.ndim == 2:
        chex.assert_axis_dimension(logits, 1, 1)
        logits = logits[:, 0]
    return logits.astype(jnp.float32)


def _bce(logits: jax.Array, label: float) -> jax.Array:
    return jnp.mean(optax.sigmoid_binary_cross_entropy(logits, jnp.full_like(logits, label)))


def minimax_discriminator_loss(real_logits: jax.Array, fake_logits: jax.Array) -> jax.Array:
    """-E[log D(x)] - E[log(1 - D(G(z)))] with D = sigmoid(logits) (Goodfellow et al. 2014, eq. 1).

    The same discriminator loss serves the minimax and the non-saturating generator.

    Example:
        >>> import jax.numpy as jnp
        >>> from jaxgen.losses import minimax_discriminator_loss
        >>> round(float(minimax_discriminator_loss(jnp.zeros(4), jnp.zeros(4))), 4)  # 2 log 2
        1.3863
    """
    return _bce(_scores(real_logits), 1.0) + _bce(_scores(fake_logits), 0.0)


def minimax_generator_loss(fake_logits: jax.Array) -> jax.Array:
    """E[log(1 - D(G(z)))]: the generator's side of the minimax game, as written in the paper.

    It saturates: when the discriminator rejects fakes confidently, its gradient vanishes
    (Goodfellow et al. 2014, section 3), which is why the non-saturating loss is the default.

    Example:
        >>> import jax.numpy as jnp
        >>> from jaxgen.losses import minimax_generator_loss
        >>> round(float(minimax_generator_loss(jnp.zeros(4))), 4)  # log(1 - 1/2) = -log 2
        -0.6931
    """
    return -_bce(_scores(fake_logits), 0.0)


def non_saturating_generator_loss(fake_logits: jax.Array) -> jax.Array:
    """-E[log D(G(z))] (Goodfellow et al. 2014, section 3): same fixed point, strong early
    gradients.

    Example:
        >>> import jax.numpy as jnp
        >>> from jaxgen.losses import non_saturating_generator_loss
        >>> round(float(non_saturating_generator_loss(jnp.zeros(4))), 4)  # -log(1/2) = log 2
        0.6931
    """
    return _bce(_scores(fake_logits), 1.0)


def hinge_discriminator_loss(real_logits: jax.Array, fake_logits: jax.Array) -> jax.Array:
    """E[max(0, 1 - D(x))] + E[max(0, 1 + D(G(z)))] (Lim & Ye 2017; Miyato et al. 2018).

    Example:
        >>> import jax.numpy as jnp
        >>> from jaxgen.losses import hinge_discriminator_loss
        >>> float(hinge_discriminator_loss(jnp.zeros(2), jnp.zeros(2)))  # both margins missed
        2.0
        >>> float(hinge_discriminator_loss(jnp.array([1.0, 3.0]), jnp.array([-1.0, -2.0])))
        0.0
    """
    return (jnp.mean(jax.nn.relu(1.0 - _scores(real_logits)))
            + jnp.mean(jax.nn.relu(1.0 + _scores(fake_logits))))


def hinge_generator_loss(fake_logits: jax.Array) -> jax.Array:
    """-E[D(G(z))].

    Example:
        >>> import jax.numpy as jnp
        >>> from jaxgen.losses import hinge_generator_loss
        >>> float(hinge_generator_loss(jnp.array([1.0, 3.0])))  # no margin: raise every score
        -2.0
    """
    return -jnp.mean(_scores(fake_logits))


def wasserstein_discriminator_loss(real_logits: jax.Array, fake_logits: jax.Array) -> jax.Array:
    """E[D(G(z))] - E[D(x)]: the critic's loss, whose negative estimates the Wasserstein-1
    distance when D is 1-Lipschitz (Arjovsky et al. 2017, eq. 3). Pair it with
    `gradient_penalty` (WGAN-GP) to keep D near 1-Lipschitz.

    Example:
        >>> import jax.numpy as jnp
        >>> from jaxgen.losses import wasserstein_discriminator_loss
        >>> float(wasserstein_discriminator_loss(jnp.array([2.0, 4.0]), jnp.array([1.0, 1.0])))
        -2.0
    """
    return jnp.mean(_scores(fake_logits)) - jnp.mean(_scores(real_logits))


def wasserstein_generator_loss(fake_logits: jax.Array) -> jax.Array:
    """-E[D(G(z))].

    Example:
        >>> import jax.numpy as jnp
        >>> from jaxgen.losses import wasserstein_generator_loss
        >>> float(wasserstein_generator_loss(jnp.array([[1.0], [3.0]])))  # [B, 1] logits work too
        -2.0
    """
    return -jnp.mean(_scores(fake_logits))


def least_squares_discriminator_loss(real_logits: jax.Array, fake_logits: jax.Array) -> jax.Array:
    """1/2 E[(D(x) - 1)^2] + 1/2 E[D(G(z))^2]: LSGAN with a = 0, b = c = 1 (Mao et al. 2017,
    eq. 2).

    Example:
        >>> import jax.numpy as jnp
        >>> from jaxgen.losses import least_squares_discriminator_loss
        >>> float(least_squares_discriminator_loss(jnp.ones(2), jnp.zeros(2)))  # its targets: 0
        0.0
        >>> float(least_squares_discriminator_loss(jnp.zeros(2), jnp.zeros(2)))
        0.5
    """
    return (0.5 * jnp.mean(jnp.square(_scores(real_logits) - 1.0))
            + 0.5 * jnp.mean(jnp.square(_scores(fake_logits))))


def least_squares_generator_loss(fake_logits: jax.Array) -> jax.Array:
    """1/2 E[(D(G(z)) - 1)^2].

    Example:
        >>> import jax.numpy as jnp
        >>> from jaxgen.losses import least_squares_generator_loss
        >>> float(least_squares_generator_loss(jnp.ones(2)))  # fakes scored as real: 0
        0.0
        >>> float(least_squares_generator_loss(jnp.zeros(2)))
        0.5
    """
    return 0.5 * jnp.mean(jnp.square(_scores(fake_logits) - 1.0))


class AdversarialLoss(NamedTuple):
    """A (discriminator loss, generator loss) pair.

    Example:
        >>> import jax.numpy as jnp
        >>> from jaxgen import losses
        >>> pair = losses.AdversarialLoss(discriminator=losses.hinge_discriminator_loss,
        ...                               generator=losses.hinge_generator_loss)
        >>> pair == losses.adversarial_loss("hinge")  # the registered "hinge" pair
        True
        >>> float(pair.discriminator(jnp.ones(2), -jnp.ones(2))), float(pair.generator(jnp.ones(2)))
        (0.0, -1.0)
    """

    discriminator: Callable[[jax.Array, jax.Array], jax.Array]
    generator: Callable[[jax.Array], jax.Array]


ADVERSARIAL_LOSSES = {
    "minimax": AdversarialLoss(minimax_discriminator_loss, minimax_generator_loss),
    "non_saturating": AdversarialLoss(minimax_discriminator_loss, non_saturating_generator_loss),
    "hinge": AdversarialLoss(hinge_discriminator_loss, hinge_generator_loss),
    "wasserstein": AdversarialLoss(wasserstein_discriminator_loss, wasserstein_generator_loss),
    "least_squares": AdversarialLoss(least_squares_discriminator_loss,
                                     least_squares_generator_loss),
}


def adversarial_loss(name: str) -> AdversarialLoss:
    """The named loss pair: one of `ADVERSARIAL_LOSSES`.

    Example:
        >>> import jax.numpy as jnp
        >>> from jaxgen.losses import adversarial_loss
        >>> discriminator_loss, generator_loss = adversarial_loss("non_saturating")
        >>> round(float(generator_loss(jnp.zeros(4))), 4)  # log 2 at D = 1/2
        0.6931
    """
    if name not in ADVERSARIAL_LOSSES:
        raise ValueError(f"Unknown GAN loss {name!r}; known: {sorted(ADVERSARIAL_LOSSES)}.")
    return ADVERSARIAL_LOSSES[name]


def _input_gradient_norms(critic: Callable[[jax.Array], jax.Array], x: jax.Array) -> jax.Array:
    """[B] norms of d critic(x)_i / d x_i. Valid because example i's score depends only on x_i
    (true of discriminators without batch statistics, which is why WGAN-GP critics drop them)."""
    grads = jax.grad(lambda inputs: jnp.sum(_scores(critic(inputs))))(x)
    squared = jnp.sum(jnp.square(grads.reshape(grads.shape[0], -1).astype(jnp.float32)), -1)
    return jnp.sqrt(squared + 1e-12)  # the epsilon keeps the norm differentiable at 0


def gradient_penalty(
    critic: Callable[[jax.Array], jax.Array],
    real: jax.Array,
    fake: jax.Array,
    key: jax.Array,
    target: float = 1.0,
) -> jax.Array:
    """WGAN-GP: E[(||grad D(x_hat)|| - target)^2] at x_hat = e x + (1 - e) G(z), e ~ U[0, 1]
    per example (Gulrajani et al. 2017, algorithm 1). Multiply by lambda (10 in the paper).

    Args:
        critic: maps a batch [B, ...] to scores [B] or [B, 1].
        real, fake: [B, ...] batches of the same shape, paired row by row.
        key: draws the interpolation weights.

    Example:
        >>> import jax, jax.numpy as jnp
        >>> from jaxgen.losses import gradient_penalty
        >>> real, fake, key = jnp.ones((4, 2)), jnp.zeros((4, 2)), jax.random.key(0)
        >>> critic = lambda x: x @ jnp.array([0.6, 0.8])  # linear, gradient norm 1 everywhere
        >>> round(float(gradient_penalty(critic, real, fake, key)), 4)
        0.0
        >>> round(float(gradient_penalty(lambda x: x @ jnp.array([3.0, 4.0]), real, fake, key)), 4)
        16.0
    """
    chex.assert_equal_shape([real, fake])
    eps = jax.random.uniform(key, (real.shape[0],) + (1,) * (real.ndim - 1), real.dtype)
    x_hat = eps * real + (1.0 - eps) * jax.lax.stop_gradient(fake)
    return jnp.mean(jnp.square(_input_gradient_norms(critic, x_hat) - target))


def r1_penalty(critic: Callable[[jax.Array], jax.Array], real: jax.Array) -> jax.Array:
    """R1: E[||grad D(x)||^2] on real data (Mescheder et al. 2018, eq. 9). The paper's
    regulariser is gamma / 2 times this.

    Example:
        >>> import jax.numpy as jnp
        >>> from jaxgen.losses import r1_penalty
        >>> critic = lambda x: x @ jnp.array([3.0, 4.0])  # gradient norm 5 everywhere
        >>> round(float(r1_penalty(critic, jnp.ones((4, 2)))), 4)
        25.0
    """
    return jnp.mean(jnp.square(_input_gradient_norms(critic, real)))
