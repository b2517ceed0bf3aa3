"""Shared layers: the sub-pixel transposed convolution equals lax/nnx.ConvTranspose."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from flax import nnx

from jaxgen.models.layers import ConvTranspose, subpixel_conv_transpose

# (kernel, strides, input height and width): DCGAN's 4/2, the VAE's 3/2, odd sizes, stride 1,
# stride above 2, kernel below the stride and unequal strides.
CASES = [(4, (2, 2), 7, 7), (3, (2, 2), 7, 5), (3, (1, 1), 5, 5), (5, (3, 3), 4, 6),
         (2, (2, 2), 3, 3), (1, (2, 2), 3, 3), (4, (2, 1), 5, 6)]


def test_subpixel_matches_lax_values_and_gradients():
    def both(x, kernel, cotangent, strides):
        outs = []
        for fn in (subpixel_conv_transpose,
                   lambda x, k, s: jax.lax.conv_transpose(x, k, s, "SAME")):
            y, vjp = jax.vjp(lambda x, k, fn=fn: fn(x, k, strides), x, kernel)
            outs.append((y, *vjp(cotangent)))
        return outs

    both = jax.jit(both, static_argnums=3)
    rng = np.random.default_rng(0)  # numpy draws: eager jax.random compiles per shape
    for kernel_size, strides, height, width in CASES:
        x = rng.normal(size=(2, height, width, 3)).astype(np.float32)
        kernel = rng.normal(size=(kernel_size, kernel_size, 3, 4)).astype(np.float32)
        shape = (2, height * strides[0], width * strides[1], 4)
        cotangent = rng.normal(size=shape).astype(np.float32)
        ours, reference = both(x, kernel, cotangent, strides)
        assert ours[0].shape == reference[0].shape == shape
        for got, want in zip(ours, reference, strict=True):  # output, d/dx, d/dkernel
            np.testing.assert_allclose(got, want, atol=1e-4, rtol=1e-5)


def test_layer_has_nnx_parameters_and_results():
    kwargs = dict(strides=(2, 2), padding="SAME", bias_init=nnx.initializers.normal(1.0))
    ours = ConvTranspose(4, 6, (4, 4), impl="subpixel", rngs=nnx.Rngs(0), **kwargs)
    theirs = nnx.ConvTranspose(4, 6, (4, 4), rngs=nnx.Rngs(0), **kwargs)
    assert jax.tree.map(jnp.shape, nnx.state(ours, nnx.Param)) == \
        jax.tree.map(jnp.shape, nnx.state(theirs, nnx.Param))
    x = np.random.default_rng(0).normal(size=(2, 5, 5, 4)).astype(np.float32)
    np.testing.assert_allclose(ours(x), theirs(x), atol=1e-5)
    # Other paddings take the native path.
    valid = [cls(2, 3, (3, 3), strides=(2, 2), padding="VALID", rngs=nnx.Rngs(0))
             for cls in (ConvTranspose, nnx.ConvTranspose)]
    np.testing.assert_allclose(valid[0](x[..., :2]), valid[1](x[..., :2]))
    with pytest.raises(ValueError, match="impl must be"):
        ConvTranspose(2, 3, (3, 3), impl="fast", rngs=nnx.Rngs(0))
