"""Latent-space tools, shared by every model with a latent space (VAE encoders, GAN generators).

Pure functions of latent arrays [..., D]; decoding the results is the model's business.
"""

import jax
import jax.numpy as jnp


def lerp(z0: jax.Array, z1: jax.Array, t: jax.Array) -> jax.Array:
    """Linear interpolation; `t` [T] gives [T, ..., D] from z0 (t=0) to z1 (t=1)."""
    t = jnp.reshape(t, (-1,) + (1,) * jnp.ndim(z0))
    return (1.0 - t) * z0 + t * z1


def slerp(z0: jax.Array, z1: jax.Array, t: jax.Array, eps: float = 1e-7) -> jax.Array:
    """Spherical interpolation along the great circle (White 2016, "Sampling generative networks").

    Keeps intermediate points at a typical norm under a Gaussian prior, where lerp passes through
    the low-density region near the origin. Falls back to lerp for (nearly) parallel vectors.
    """
    t = jnp.reshape(t, (-1,) + (1,) * jnp.ndim(z0))
    n0 = z0 / (jnp.linalg.norm(z0, axis=-1, keepdims=True) + eps)
    n1 = z1 / (jnp.linalg.norm(z1, axis=-1, keepdims=True) + eps)
    omega = jnp.arccos(jnp.clip(jnp.sum(n0 * n1, axis=-1, keepdims=True), -1.0, 1.0))
    sin_omega = jnp.sin(omega)
    safe = sin_omega > 1e-4
    w0 = jnp.where(safe, jnp.sin((1.0 - t) * omega) / jnp.where(safe, sin_omega, 1.0), 1.0 - t)
    w1 = jnp.where(safe, jnp.sin(t * omega) / jnp.where(safe, sin_omega, 1.0), t)
    return w0 * z0 + w1 * z1


def interpolate(z0: jax.Array, z1: jax.Array, num: int, method: str = "slerp") -> jax.Array:
    """`num` evenly spaced points from z0 to z1, both ends included: [num, ..., D]."""
    t = jnp.linspace(0.0, 1.0, num)
    if method == "slerp":
        return slerp(z0, z1, t)
    if method == "lerp":
        return lerp(z0, z1, t)
    raise ValueError(f"method must be 'slerp' or 'lerp', got {method!r}")


def attribute_vector(latents: jax.Array, has_attribute: jax.Array) -> jax.Array:
    """Mean latent of the examples with the attribute minus the mean of those without.

    Args:
        latents: [N, D] codes (e.g. posterior means).
        has_attribute: [N] booleans; both groups must be non-empty.
    """
    mask = jnp.asarray(has_attribute, jnp.float32)[:, None]
    with_mean = jnp.sum(latents * mask, 0) / jnp.sum(mask)
    without_mean = jnp.sum(latents * (1.0 - mask), 0) / jnp.sum(1.0 - mask)
    return with_mean - without_mean


def class_means(latents: jax.Array, labels: jax.Array, num_classes: int) -> jax.Array:
    """[num_classes, D] mean latent of each labelled subset (NaN for an empty class)."""
    one_hot = jax.nn.one_hot(labels, num_classes)
    return (one_hot.T @ latents) / jnp.sum(one_hot, 0)[:, None]


def arithmetic(a: jax.Array, b: jax.Array, c: jax.Array) -> jax.Array:
    """a - b + c: e.g. (woman with hat) - (woman) + (man) ~ (man with hat) (Radford et al. 2016)."""
    return a - b + c


def walk(start: jax.Array, direction: jax.Array, num: int, scale: float = 3.0) -> jax.Array:
    """`num` points start + s * direction for s evenly spaced in [-scale, scale]: [num, D]."""
    return start + jnp.linspace(-scale, scale, num)[:, None] * direction


def loop_through(anchors: jax.Array, steps_between: int) -> jax.Array:
    """A closed slerp tour through `anchors` [K, D]: [K * steps_between, D], for looping GIFs."""
    nxt = jnp.roll(anchors, -1, axis=0)
    t = jnp.linspace(0.0, 1.0, steps_between, endpoint=False)
    path = jax.vmap(lambda a, b: slerp(a, b, t))(anchors, nxt)  # [K, T, D]
    return path.reshape(-1, anchors.shape[-1])
