"""DiT: the paper's parameter counts, zero output at init (adaLN-Zero), conditioning and dropout
once the parameters are random, patch layout, input checks, and jit == eager."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from flax import nnx

from jaxgen.models.dit import DIT_B2, DIT_S2, DIT_XL2, DiT, sincos_pos_embed

SMALL = dict(patch_size=2, hidden=32, depth=2, num_heads=2)


def _count(**kwargs):
    abstract = nnx.eval_shape(lambda: DiT(rngs=nnx.Rngs(0), **kwargs))
    return sum(int(np.prod(p.shape)) for p in jax.tree.leaves(nnx.state(abstract, nnx.Param)))


def _randomised(model, seed=0, scale=0.2):
    """(graphdef, params) with every parameter drawn at random: at init adaLN-Zero makes the
    output zero whatever the inputs, so conditioning can only be seen on random parameters."""
    graphdef, params = nnx.split(model)
    rng = np.random.default_rng(seed)
    params = jax.tree.map(lambda p: (scale * rng.normal(size=p.shape)).astype(np.float32), params)
    return graphdef, params


def _apply_fn(graphdef):
    @jax.jit
    def apply(params, x, time, labels=None, context=None, dropout_key=None):
        model = nnx.merge(graphdef, params)
        return model(x, time, labels, context, dropout_key=dropout_key)

    return apply


def _images(shape, batch=2, seed=1):
    return np.random.default_rng(seed).normal(size=(batch, *shape)).astype(np.float32)


def test_parameter_counts_match_the_paper():
    # ImageNet-256 latents (32x32x4), 1000 classes plus the null row, sigma learned (8 channels
    # out). The official DiT-XL/2 reports 675,129,632 = sum(p.numel() for p in parameters()),
    # which includes its frozen 256 x 1152 pos_embed; here that embedding is a constant, not a
    # parameter. Everything else matches layer for layer (separate q, k, v projections with bias
    # hold exactly what DiT's fused qkv does).
    imagenet = dict(data_shape=(32, 32, 4), num_classes=1000, out_channels=8)
    xl = _count(**imagenet, **DIT_XL2)
    assert xl == 675_129_632 - 256 * 1152 == 674_834_720
    assert abs(xl - 675e6) / 675e6 < 0.005
    # The paper's other sizes: DiT-S/2 33M, DiT-B/2 130M.
    assert round(_count(**imagenet, **DIT_S2) / 1e6) == 33
    assert round(_count(**imagenet, **DIT_B2) / 1e6) == 130


def test_position_embedding_closed_form():
    # dim 8: a quarter (2 frequencies, 1 and 1/100) per sin/cos of the column, then of the row.
    embed = sincos_pos_embed(8, 2, 3)
    omega = np.array([1.0, 0.01])
    for row in range(2):
        for col in range(3):
            want = np.concatenate([np.sin(col * omega), np.cos(col * omega),
                                   np.sin(row * omega), np.cos(row * omega)])
            np.testing.assert_allclose(embed[row * 3 + col], want, atol=1e-6)


@pytest.mark.parametrize("dtype", [jnp.float32, jnp.bfloat16])
def test_zero_at_init_float32_and_params_only(dtype):
    model = DiT((8, 12, 3), **SMALL, num_classes=10, context_dim=8, dropout=0.1,
                out_channels=6, dtype=dtype, rngs=nnx.Rngs(0))
    _, params, rest = nnx.split(model, nnx.Param, ...)
    assert not jax.tree.leaves(rest)  # no RNG state, no buffers
    rng = np.random.default_rng(0)
    context = rng.normal(size=(2, 5, 8)).astype(np.float32)
    apply = _apply_fn(nnx.graphdef(model))
    out = apply(params, _images((8, 12, 3)), jnp.array([3.0, 700.0]), jnp.array([1, 9]), context,
                jax.random.key(0))
    assert out.shape == (2, 8, 12, 6) and out.dtype == jnp.float32
    np.testing.assert_array_equal(out, 0.0)


def test_conditioning_and_dropout_on_random_params():
    model = DiT((8, 8, 3), **SMALL, num_classes=10, dropout=0.2, rngs=nnx.Rngs(0))
    graphdef, params = _randomised(model)
    apply = _apply_fn(graphdef)
    x, time, labels = _images((8, 8, 3)), jnp.array([10.0, 10.0]), jnp.array([1, 2])
    base = np.asarray(apply(params, x, time, labels))
    assert np.abs(base).max() > 1e-2
    assert np.abs(base - apply(params, x, jnp.array([500.0, 500.0]), labels)).max() > 1e-3
    assert np.abs(base - apply(params, x, time, jnp.array([3, 4]))).max() > 1e-3
    np.testing.assert_array_equal(apply(params, x, time, None),
                                  apply(params, x, time, jnp.full((2,), 10)))
    np.testing.assert_array_equal(base, apply(params, x, time, labels))  # no key: no dropout
    dropped = [np.asarray(apply(params, x, time, labels, dropout_key=jax.random.key(k)))
               for k in (0, 1, 0)]
    assert np.abs(dropped[0] - dropped[1]).max() > 1e-3
    assert np.abs(dropped[0] - base).max() > 1e-3
    np.testing.assert_array_equal(dropped[0], dropped[2])  # a pure function of its key


def test_patches_stay_in_place():
    # With no blocks there is no mixing between tokens, so a change to one pixel changes exactly
    # the output patch that holds it: patchify and unpatchify agree, also on a non-square grid.
    model = DiT((8, 12, 3), patch_size=2, hidden=32, depth=0, num_heads=2, out_channels=5,
                rngs=nnx.Rngs(0))
    graphdef, params = _randomised(model)
    apply = _apply_fn(graphdef)
    x, time = _images((8, 12, 3), batch=1), jnp.array([100.0])
    moved = x.copy()
    moved[0, 5, 9, 1] += 1.0
    changed = np.abs(np.asarray(apply(params, moved, time) - apply(params, x, time))).max(-1)[0]
    expected = np.zeros((8, 12), bool)
    expected[4:6, 8:10] = True
    np.testing.assert_array_equal(changed > 1e-6, expected)


def test_bad_inputs_raise_clear_errors():
    with pytest.raises(ValueError, match="9x8 is not divisible by 2"):
        DiT((9, 8, 3), **SMALL, rngs=nnx.Rngs(0))
    with pytest.raises(ValueError, match="divisible by 4"):
        DiT((8, 8, 3), patch_size=2, hidden=30, depth=1, num_heads=2, rngs=nnx.Rngs(0))
    model = DiT((8, 8, 3), **SMALL, context_dim=8, rngs=nnx.Rngs(0))
    time = jnp.array([1.0, 2.0])
    with pytest.raises(ValueError, match=r"takes images of shape \[8, 8, 3\], got \[8, 8, 4\]"):
        model(_images((8, 8, 4)), time)
    with pytest.raises(ValueError, match="context_dim: pass `context`"):
        model(_images((8, 8, 3)), time)


def test_output_depends_on_context():
    model = DiT((8, 8, 3), **SMALL, context_dim=8, rngs=nnx.Rngs(0))
    graphdef, params = _randomised(model)
    apply = _apply_fn(graphdef)
    rng = np.random.default_rng(2)
    contexts = rng.normal(size=(2, 2, 5, 8)).astype(np.float32)
    x, time = _images((8, 8, 3)), jnp.array([1.0, 2.0])
    assert np.abs(apply(params, x, time, None, contexts[0])
                  - apply(params, x, time, None, contexts[1])).max() > 1e-3


def test_jit_of_split_state_matches_eager():
    model = DiT((8, 8, 3), **SMALL, num_classes=10, context_dim=8, rngs=nnx.Rngs(0))
    graphdef, params = _randomised(model)
    x, time, labels = _images((8, 8, 3)), jnp.array([5.0, 900.0]), jnp.array([0, 7])
    context = np.random.default_rng(3).normal(size=(2, 4, 8)).astype(np.float32)

    @jax.jit
    def f(params, x, time, labels):
        return nnx.merge(graphdef, params)(x, time, labels, context)

    eager = nnx.merge(graphdef, params)(x, time, labels, context)
    np.testing.assert_allclose(f(params, x, time, labels), eager, atol=1e-4, rtol=1e-4)
