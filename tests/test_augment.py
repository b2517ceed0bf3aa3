"""Differentiable augmentation (`jaxgen.augment`) and spectral normalisation
(`jaxgen.models.spectral_norm`) as pure functions."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from jax.sharding import NamedSharding, PartitionSpec

from jaxgen import augment, parallel
from jaxgen.models import spectral_norm

POLICY = "color,translation,cutout"


def _images(num=8, size=16, channels=3, seed=0):
    return jnp.asarray(np.random.default_rng(seed).uniform(-1, 1, (num, size, size, channels)),
                       jnp.float32)


@pytest.mark.parametrize("name", [*augment.POLICIES, POLICY])
def test_shapes_kept_identity_at_p0_and_the_key_decides(name):
    x, key = _images(), jax.random.PRNGKey(0)
    out = augment.diff_augment(key, x, name)
    assert out.shape == x.shape and out.dtype == x.dtype
    assert not np.array_equal(out, x)
    np.testing.assert_array_equal(augment.diff_augment(key, x, name), out)
    assert not np.array_equal(augment.diff_augment(jax.random.PRNGKey(1), x, name), out)
    np.testing.assert_array_equal(augment.diff_augment(key, x, name, p=0.0), x)
    np.testing.assert_array_equal(augment.diff_augment(key, x, name, p=jnp.float32(0.0)), x)


def test_translation_and_cutout_by_hand():
    """Integer shifts of at most H // 8 with 0 where nothing moved in; a (H // 2)-square hole
    (cut at the borders) and the rest untouched."""
    x = _images(64, size=16, channels=1) + 3.0  # no pixel is 0
    shifted = np.asarray(augment.translation(jax.random.PRNGKey(0), x))
    seen = set()
    for image, out in zip(np.asarray(x), shifted, strict=True):
        matches = [(dy, dx) for dy in range(-2, 3) for dx in range(-2, 3)
                   if np.array_equal(out, _shift(image, dy, dx))]
        assert len(matches) == 1
        seen.add(matches[0])
    assert len(seen) > 15  # of the 25 shifts
    cut = np.asarray(augment.cutout(jax.random.PRNGKey(0), x))
    for image, out in zip(np.asarray(x), cut, strict=True):
        hole = out[..., 0] == 0
        rows, cols = np.nonzero(hole)
        assert hole.sum() == (np.ptp(rows) + 1) * (np.ptp(cols) + 1)  # a rectangle
        assert np.ptp(rows) + 1 <= 8 and np.ptp(cols) + 1 <= 8 and hole.sum() >= 16
        np.testing.assert_array_equal(out[~hole], image[~hole])


def _shift(image, dy, dx):
    """image moved so that out[i, j] = image[i + dy, j + dx], 0 outside."""
    out = np.zeros_like(image)
    h, w = image.shape[:2]
    for i in range(h):
        for j in range(w):
            if 0 <= i + dy < h and 0 <= j + dx < w:
                out[i, j] = image[i + dy, j + dx]
    return out


def test_probability_picks_images_and_gradients_flow():
    x, key = _images(256, size=8), jax.random.PRNGKey(3)
    changed = np.any(np.asarray(augment.cutout(key, x, p=0.3)) != np.asarray(x), axis=(1, 2, 3))
    assert 0.2 < changed.mean() < 0.4
    grads = jax.grad(lambda x: jnp.sum(augment.diff_augment(key, x, POLICY) ** 2))(x)
    assert np.isfinite(grads).all() and np.abs(grads).sum() > 0
    # translation and cutout move or drop pixels: their gradient is the moved cotangent
    g = jax.grad(lambda x: jnp.sum(augment.translation(key, x) * 2.0))(x)
    assert set(np.unique(np.asarray(g))) <= {0.0, 2.0}
    with pytest.raises(ValueError, match="unknown augmentation 'flip'"):
        augment.diff_augment(key, x, "translation,flip")
    with pytest.raises(ValueError, match=r"image batches \[N, H, W, C\]"):
        augment.diff_augment(key, x[0], "cutout")


def test_sharded_augmentation_equals_one_device():
    x, key = _images(16), jax.random.PRNGKey(5)
    fn = jax.jit(lambda key, x: augment.diff_augment(key, x, POLICY, p=0.5))
    one = fn(key, x)
    mesh = parallel.make_mesh(1)
    sharded = jax.device_put(x, parallel.batch_sharding(mesh))
    key = jax.device_put(key, NamedSharding(mesh, PartitionSpec()))
    out = fn(key, sharded)
    assert len(out.sharding.device_set) == 8
    np.testing.assert_allclose(out, one, atol=1e-6)


def test_spectral_norm_converges_to_unit_largest_singular_value():
    rng = np.random.default_rng(0)
    params = {"conv": {"kernel": jnp.asarray(rng.normal(size=(3, 3, 4, 6)), jnp.float32),
                       "bias": jnp.zeros(6)},
              "out": {"kernel": jnp.asarray(rng.normal(size=(10, 1)) * 5, jnp.float32)}}
    vectors = spectral_norm.init(jax.random.PRNGKey(0), params)
    assert set(vectors) == {"conv/kernel", "out/kernel"}
    step = jax.jit(spectral_norm.normalize)
    for _ in range(30):
        normalized, vectors, sigmas = step(params, vectors)
    for name, weight in (("conv/kernel", params["conv"]["kernel"]),
                         ("out/kernel", params["out"]["kernel"])):
        matrix = np.asarray(weight).reshape(-1, weight.shape[-1])
        largest = np.linalg.svd(matrix, compute_uv=False)[0]
        np.testing.assert_allclose(sigmas[name], largest, rtol=1e-4)
    top = np.linalg.svd(np.asarray(normalized["conv"]["kernel"]).reshape(-1, 6),
                        compute_uv=False)[0]
    np.testing.assert_allclose(top, 1.0, rtol=1e-4)
    np.testing.assert_array_equal(normalized["conv"]["bias"], params["conv"]["bias"])
    # the gradient reaches the weight through W / sigma(W), u and v held constant
    grads = jax.grad(lambda p: jnp.sum(spectral_norm.normalize(p, vectors)[0]["out"]["kernel"]))(
        params)
    w = np.asarray(params["out"]["kernel"])[:, 0]
    expected = 1 / np.linalg.norm(w) - w * w.sum() / np.linalg.norm(w) ** 3  # d sum(w/|w|)
    np.testing.assert_allclose(grads["out"]["kernel"][:, 0], expected, rtol=1e-3, atol=1e-5)
    with pytest.raises(KeyError, match="no spectral-norm vector for out/kernel"):
        spectral_norm.normalize(params, {"conv/kernel": vectors["conv/kernel"]})
