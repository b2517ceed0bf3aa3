"""CLIP score (Hessel et al. 2021, "CLIPScore", eq. 1 with w = 100 as torchmetrics uses): how
well images match their prompts by a CLIP model's embeddings, 100 * max(cos(image, text), 0)
averaged over the pairs. torchmetrics' `CLIPScore` clips the mean instead of each pair; the two
agree whenever no pair's cosine is negative (as with real images and a real CLIP). The
embeddings are the caller's (any CLIP image and text towers)."""

import jax.numpy as jnp

from jaxgen.metrics import _checks


def clip_score(image_embeddings, text_embeddings) -> float:
    """Mean CLIP score of matched pairs.

        score = clip_score(clip.embed_images(images), clip.embed_texts(tokens))

    Args:
      image_embeddings: [N, D] image embeddings (normalised here).
      text_embeddings: [N, D] embeddings of each image's own prompt.

    Returns:
      100 * mean_i max(cos(image_i, text_i), 0), a float in [0, 100].
    """
    images = _checks.features_array(image_embeddings, "image_embeddings")
    texts = _checks.features_array(text_embeddings, "text_embeddings")
    if images.shape != texts.shape:
        raise ValueError(f"image_embeddings {images.shape} and text_embeddings {texts.shape} "
                         "must be matched pairs of the same shape [N, D]")
    images = images / jnp.linalg.norm(images, axis=-1, keepdims=True)
    texts = texts / jnp.linalg.norm(texts, axis=-1, keepdims=True)
    return float(100.0 * jnp.mean(jnp.maximum(jnp.sum(images * texts, axis=-1), 0.0)))
