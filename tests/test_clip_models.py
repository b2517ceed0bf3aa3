"""The byte tokenizer, and the CLIP towers: shapes, padding that changes nothing, inits."""

import chex
import jax.numpy as jnp
import numpy as np
import pytest
from flax import nnx

from jaxgen.models import clip


def test_tokenizer_round_trips_bytes_and_truncates_keeping_eos():
    texts = ["a thick, slanted seven", "an 8", "ünïcode"]
    tokens = clip.tokenize(texts, max_length=32)
    chex.assert_shape(tokens, (3, 32))
    assert tokens.dtype == np.int32 and (tokens[:, 0] == clip.BOS).all()
    assert clip.detokenize(tokens) == texts
    short = clip.tokenize("a thick, slanted seven", max_length=8)
    assert short[0, -1] == clip.EOS and clip.detokenize(short) == ["a thick"[:6]]
    with pytest.raises(ValueError, match="max_length"):
        clip.tokenize("x", max_length=2)


def _text_encoder():
    return clip.TextEncoder(width=32, depth=2, num_heads=2, max_length=24, embed_dim=8,
                            rngs=nnx.Rngs(0))


def test_padding_never_changes_the_text_embedding():
    encoder = _text_encoder()
    tokens = jnp.asarray(clip.tokenize(["a thin one", "the digit 4 written small"], 24))
    embedding, features = encoder(tokens)
    chex.assert_shape([embedding, features], [(2, 8), (2, 24, 32)])
    # the first caption again, with 12 instead of 24 positions (fewer pads)
    shorter, _ = encoder(tokens[:1, :12])
    np.testing.assert_allclose(shorter, embedding[:1], atol=1e-5)
    other, _ = encoder(jnp.asarray(clip.tokenize(["a thick one"], 24)))
    assert np.abs(other - embedding[:1]).max() > 1e-3  # but the words do
    with pytest.raises(ValueError, match="tokens must be"):
        encoder(jnp.zeros((2, 30), jnp.int32))


def test_image_tower_and_the_pairs_initial_scales():
    image = clip.ImageEncoder(in_channels=1, channels=(8, 16), embed_dim=8, rngs=nnx.Rngs(0))
    x = jnp.zeros((3, 28, 28, 1))
    chex.assert_shape([image(x), image.features(x)], [(3, 8), (3, 16)])
    model = clip.CLIP(_text_encoder(), image)
    assert float(jnp.exp(model.log_scale[...])) == pytest.approx(1 / 0.07)
    siglip = clip.CLIP(_text_encoder(), image, loss="siglip")
    assert float(jnp.exp(siglip.log_scale[...])) == pytest.approx(10.0)
    assert float(siglip.bias[...]) == -10.0
    images, texts = model(x, jnp.asarray(clip.tokenize(["a", "b", "c"], 24)))
    chex.assert_shape([images, texts], [(3, 8), (3, 8)])
