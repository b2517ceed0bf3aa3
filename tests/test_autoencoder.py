"""The latent-grid VAEs (latent diffusion's first stage, jaxgen's spatial one and Stable
Diffusion's AutoencoderKL): flat and grid views agree. (Their training on the engine is tested
with latent diffusion, which needs a trained one, and with the export to diffusers.)"""

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from flax import nnx

from jaxgen.models import KLVAE, SpatialVAE


@pytest.mark.parametrize("build", [
    lambda: SpatialVAE((28, 28, 1), latent_channels=3, channels=(8, 16), rngs=nnx.Rngs(0)),
    lambda: KLVAE((28, 28, 1), latent_channels=3, channels=(8, 16, 16), norm_groups=8,
                  rngs=nnx.Rngs(0)),
], ids=["spatial", "kl"])
def test_latent_grid_and_flat_views_agree(build):
    model = build()
    assert model.latent_shape == (7, 7, 3) and model.latent_dim == 147
    x = jax.random.uniform(jax.random.PRNGKey(1), (2, 28, 28, 1), minval=-1, maxval=1)

    @nnx.jit
    def views(model, x):
        mean, log_var = model.encode_grid(x)
        flat_mean, _ = model.encode(x)
        return mean, log_var, flat_mean, model.decode(flat_mean), model.decode_grid(mean)

    mean, log_var, flat_mean, decoded, decoded_grid = views(model, x)
    assert mean.shape == log_var.shape == (2, 7, 7, 3) and mean.dtype == jnp.float32
    np.testing.assert_array_equal(flat_mean, mean.reshape(2, -1))
    assert decoded.shape == (2, 28, 28, 1)
    np.testing.assert_allclose(decoded, decoded_grid, atol=1e-6)
    with pytest.raises(ValueError, match="divisible by 4"):
        SpatialVAE((30, 30, 1), channels=(8, 16), rngs=nnx.Rngs(0))
    with pytest.raises(ValueError, match="divisible by 4"):
        KLVAE((30, 30, 1), channels=(8, 16, 16), norm_groups=8, rngs=nnx.Rngs(0))
    with pytest.raises(ValueError, match="norm_groups=32"):
        KLVAE((28, 28, 1), channels=(8, 16, 16), rngs=nnx.Rngs(0))
