"""The U-Net: the DDPM CIFAR-10 parameter count, shapes, zero output at init, conditioning
(labels, the null class, cross-attention context), dropout and input checks."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from flax import nnx

from jaxgen.models.unet import DDPM_CIFAR10, UNet

SMALL = dict(data_shape=(8, 8, 2), channels=16, channel_mults=(1, 2), num_res_blocks=1,
             attention_resolutions=(4,), num_heads=2)


def test_ddpm_cifar10_config_has_35_7m_parameters():
    # Ho et al. 2020 report 35.7M for the CIFAR-10 network; diffusers' port of the released
    # checkpoint (google/ddpm-cifar10-32) holds exactly 35,746,307.
    abstract = nnx.eval_shape(lambda: UNet(**DDPM_CIFAR10, rngs=nnx.Rngs(0)))
    count = sum(p.size for p in jax.tree.leaves(nnx.state(abstract, nnx.Param)))
    assert count == 35_746_307
    assert nnx.state(abstract, nnx.Param) == nnx.state(abstract)  # no RNG or other state


def _randomised(**kwargs):
    """(apply, params): the zero-initialised output conv makes the output 0 at init, so the
    conditioning can only be seen with every parameter random."""
    graphdef, params = nnx.split(UNet(**SMALL, **kwargs, rngs=nnx.Rngs(0)))
    context = jnp.ones((2, 4, kwargs["context_dim"])) if kwargs.get("context_dim") else None
    zero = jax.jit(lambda p, x, t, c: nnx.merge(graphdef, p)(x, t, context=c))(
        params, jnp.ones((2, 8, 8, 2)), jnp.ones(2), context)
    assert zero.shape == (2, 8, 8, 2) and zero.dtype == jnp.float32
    np.testing.assert_array_equal(zero, 0.0)
    rng = np.random.default_rng(0)
    params = jax.tree.map(lambda p: (0.2 * rng.normal(size=p.shape)).astype(np.float32), params)

    @jax.jit
    def apply(params, x, t, labels=None, context=None, dropout_key=None):
        return nnx.merge(graphdef, params)(x, t, labels, context, dropout_key=dropout_key)

    return apply, params


def test_unet_conditioning_and_dropout():
    apply, params = _randomised(num_classes=3, context_dim=5, dropout=0.3)
    rng = np.random.default_rng(1)
    x = rng.normal(size=(2, 8, 8, 2)).astype(np.float32)
    context = rng.normal(size=(2, 4, 5)).astype(np.float32)
    t, labels = np.array([3.0, 500.0]), np.array([0, 2])
    base = apply(params, x, t, labels, context)
    assert base.shape == x.shape
    assert not np.allclose(base, apply(params, x, t + 100, labels, context))
    assert not np.allclose(base, apply(params, x, t, np.array([1, 1]), context))
    assert not np.allclose(base, apply(params, x, t, labels, context + 1))
    # No labels is the null class (index num_classes), the unconditional half of CFG.
    np.testing.assert_allclose(apply(params, x, t, None, context),
                               apply(params, x, t, np.array([3, 3]), context), rtol=1e-5)
    # Each example's output depends on that example alone (GroupNorm is per example).
    np.testing.assert_allclose(apply(params, x[:1], t[:1], labels[:1], context[:1]), base[:1],
                               rtol=1e-4, atol=1e-4)
    # Dropout acts only with a key, and differently per key.
    k1, k2 = jax.random.PRNGKey(1), jax.random.PRNGKey(2)
    np.testing.assert_array_equal(apply(params, x, t, labels, context, k1),
                                  apply(params, x, t, labels, context, k1))
    assert not np.allclose(apply(params, x, t, labels, context, k1),
                           apply(params, x, t, labels, context, k2))
    with pytest.raises(ValueError, match="pass `context`"):
        apply(params, x, t, labels)


def test_unet_input_checks():
    with pytest.raises(ValueError, match="28x28 is not divisible by 8"):
        UNet(data_shape=(28, 28, 1), channels=8, channel_mults=(1, 2, 2, 2),
             attention_resolutions=(), rngs=nnx.Rngs(0))
    model = nnx.eval_shape(lambda: UNet(**SMALL, rngs=nnx.Rngs(0)))
    with pytest.raises(ValueError, match=r"takes images of shape \[8, 8, 2\], got \[8, 8, 3\]"):
        jax.eval_shape(lambda m: m(jnp.zeros((1, 8, 8, 3)), jnp.zeros(1)), model)
