import jax
import jax.numpy as jnp
import numpy as np

from jaxgen.sample import latent


def test_slerp_ends_norm_and_fallback():
    z0, z1 = jnp.array([3.0, 0.0]), jnp.array([0.0, 3.0])
    path = latent.interpolate(z0, z1, 5, "slerp")
    np.testing.assert_allclose(path[0], z0, atol=1e-6)
    np.testing.assert_allclose(path[-1], z1, atol=1e-6)
    np.testing.assert_allclose(jnp.linalg.norm(path, axis=-1), 3.0, rtol=1e-6)  # stays on circle
    np.testing.assert_allclose(latent.slerp(z0, 2 * z0, jnp.array([0.5]))[0], 1.5 * z0)
    lerp = latent.interpolate(z0, z1, 5, "lerp")
    np.testing.assert_allclose(lerp[2], [1.5, 1.5])


def test_batched_interpolation_shapes():
    z0, z1 = jax.random.normal(jax.random.PRNGKey(0), (2, 4, 8))
    assert latent.interpolate(z0, z1, 7).shape == (7, 4, 8)
    assert latent.loop_through(z0, 5).shape == (20, 8)


def test_attribute_vector_class_means_arithmetic():
    latents = jnp.array([[1.0, 0.0], [3.0, 0.0], [0.0, 2.0], [0.0, 4.0]])
    labels = jnp.array([0, 0, 1, 1])
    means = latent.class_means(latents, labels, 2)
    np.testing.assert_allclose(means, [[2.0, 0.0], [0.0, 3.0]])
    np.testing.assert_allclose(latent.attribute_vector(latents, labels == 1), [-2.0, 3.0])
    np.testing.assert_allclose(latent.arithmetic(latents[0], means[0], means[1]), [-1.0, 3.0])
    np.testing.assert_allclose(latent.walk(jnp.zeros(2), jnp.ones(2), 3, scale=1.0),
                               [[-1, -1], [0, 0], [1, 1]])
