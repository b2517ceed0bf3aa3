"""CLIP's InfoNCE and SigLIP's sigmoid loss against direct computations, their invariances, and
sharded == unsharded: the loss sees the global batch, not each device's slice."""

import math

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from jax.sharding import NamedSharding
from jax.sharding import PartitionSpec as P

from jaxgen import parallel
from jaxgen.losses import clip_loss, siglip_loss


def _pairs(batch=8, dim=5, seed=0):
    rng = np.random.default_rng(seed)
    return (rng.normal(size=(batch, dim)).astype(np.float32),
            rng.normal(size=(batch, dim)).astype(np.float32))


def _cosines(images, texts):
    images = images / np.linalg.norm(images, axis=1, keepdims=True)
    texts = texts / np.linalg.norm(texts, axis=1, keepdims=True)
    return [[float(images[i] @ texts[j]) for j in range(len(texts))] for i in range(len(images))]


def test_clip_loss_is_the_mean_of_both_cross_entropies():
    images, texts = _pairs()
    scale = 1 / 0.07
    sims = _cosines(images, texts)
    n = len(sims)
    image_to_text = [-(scale * sims[i][i]) + math.log(sum(math.exp(scale * sims[i][j])
                                                          for j in range(n))) for i in range(n)]
    text_to_image = [-(scale * sims[j][j]) + math.log(sum(math.exp(scale * sims[i][j])
                                                          for i in range(n))) for j in range(n)]
    expected = 0.5 * (sum(image_to_text) / n + sum(text_to_image) / n)
    loss, aux = clip_loss(images, texts, jnp.log(scale))
    assert float(loss) == pytest.approx(expected, rel=1e-5)
    assert float(aux["logit_scale"]) == pytest.approx(scale, rel=1e-6)
    # symmetric in its two towers, and the scale is clipped at max_scale as CLIP does
    assert float(clip_loss(texts, images, jnp.log(scale))[0]) == pytest.approx(float(loss))
    assert float(clip_loss(images, texts, jnp.log(1e4))[1]["logit_scale"]) == 100.0


def test_siglip_loss_sums_binary_terms_over_texts_and_averages_over_images():
    images, texts = _pairs(seed=1)
    log_scale, bias = math.log(10.0), -10.0
    sims = _cosines(images, texts)
    n = len(sims)

    def log_sigmoid(x):
        return -math.log1p(math.exp(-x))

    expected = -sum(log_sigmoid((1 if i == j else -1) * (10.0 * sims[i][j] + bias))
                    for i in range(n) for j in range(n)) / n
    loss, aux = siglip_loss(images, texts, jnp.float32(log_scale), jnp.float32(bias))
    assert float(loss) == pytest.approx(expected, rel=1e-5)
    assert float(aux["bias"]) == bias


def test_matched_pairs_score_low_and_are_retrieved():
    images, _ = _pairs(batch=16, dim=32)
    texts = images + 0.01 * np.random.default_rng(2).normal(size=images.shape)
    for loss_fn, args in ((clip_loss, (jnp.log(100.0),)),
                          (siglip_loss, (jnp.log(10.0), jnp.float32(-5.0)))):
        loss, aux = loss_fn(images, texts, *args)
        shuffled, _ = loss_fn(images, texts[::-1], *args)
        assert float(loss) < float(shuffled)
        assert float(aux["image_to_text_accuracy"]) == 1.0
        assert float(aux["text_to_image_accuracy"]) == 1.0


def test_wrong_shapes_are_refused():
    images, texts = _pairs()
    with pytest.raises(AssertionError):
        clip_loss(images, texts[:4], jnp.float32(0.0))
    with pytest.raises(AssertionError):
        siglip_loss(images[None], texts[None], jnp.float32(0.0), jnp.float32(0.0))


@pytest.mark.parametrize("name", ["clip", "siglip"])
def test_sharded_global_batch_equals_one_device(name):
    """Each device holds 2 of the 16 pairs; the loss and its gradients must equal the
    single-device computation on all 16, i.e. every image is contrasted with all 16 texts."""
    images, texts = _pairs(batch=16, dim=8, seed=3)
    params = {"log_scale": jnp.float32(math.log(10.0)), "bias": jnp.float32(-3.0)}

    def loss(params, images, texts):
        if name == "clip":
            return clip_loss(images, texts, params["log_scale"])[0]
        return siglip_loss(images, texts, params["log_scale"], params["bias"])[0]

    grad_fn = jax.value_and_grad(loss, argnums=(0, 1, 2))
    expected = jax.jit(grad_fn)(params, images, texts)
    mesh = parallel.make_mesh()
    assert mesh.size == 8
    batch = NamedSharding(mesh, P(parallel.DATA_AXES))
    sharded = jax.jit(grad_fn, in_shardings=(None, batch, batch))(
        params, jax.device_put(images, batch), jax.device_put(texts, batch))
    for got, want in zip(jax.tree.leaves(sharded), jax.tree.leaves(expected), strict=True):
        np.testing.assert_allclose(np.asarray(got), np.asarray(want), rtol=1e-5, atol=1e-6)
    # and it is not the mean of per-device losses over 2 pairs each
    per_device = np.mean([float(loss(params, images[i:i + 2], texts[i:i + 2]))
                          for i in range(0, 16, 2)])
    assert abs(per_device - float(expected[0])) > 0.1
