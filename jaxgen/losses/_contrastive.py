"""Contrastive image-text losses: CLIP's symmetric InfoNCE and SigLIP's pairwise sigmoid.

Both take the *global* batch of embeddings. Under `jax.jit` with the batch sharded over devices,
GSPMD gathers what the [B, B] similarity matrix needs, so every example is contrasted with
every other example of the global batch, not only with those on its own device.
"""

import chex
import jax
import jax.numpy as jnp
import optax


def _normalize(x: jax.Array) -> jax.Array:
    return x / jnp.linalg.norm(x, axis=-1, keepdims=True).clip(1e-6)


def _similarities(image_embeddings, text_embeddings):
    chex.assert_rank([image_embeddings, text_embeddings], 2)
    chex.assert_equal_shape([image_embeddings, text_embeddings])
    images = _normalize(image_embeddings.astype(jnp.float32))
    texts = _normalize(text_embeddings.astype(jnp.float32))
    return images @ texts.T  # [B, B] cosine similarities, row i: image i against every text


def _retrieval_accuracy(logits):
    targets = jnp.arange(logits.shape[0])
    return (jnp.mean(jnp.argmax(logits, axis=1) == targets),
            jnp.mean(jnp.argmax(logits, axis=0) == targets))


def clip_loss(image_embeddings: jax.Array, text_embeddings: jax.Array, log_scale: jax.Array,
              max_scale: float = 100.0) -> tuple[jax.Array, dict]:
    """CLIP's symmetric InfoNCE loss (Radford et al. 2021, Figure 3).

    Args:
      image_embeddings: [B, D]; pair i is (image i, text i). Normalised here.
      text_embeddings: [B, D].
      log_scale: scalar, the learnable log of the logit scale (1 / temperature); CLIP starts
        at log(1 / 0.07) and clips the scale at `max_scale`.

    Returns:
      (scalar loss: the mean of the image->text and text->image cross-entropies over the
      batch, aux: `logit_scale`, `image_to_text_accuracy`, `text_to_image_accuracy`).

    Example:
      >>> import jax.numpy as jnp
      >>> from jaxgen.losses import clip_loss
      >>> images = jnp.eye(3)  # three orthogonal embeddings, each paired with itself
      >>> loss, aux = clip_loss(images, images, log_scale=jnp.log(100.0))
      >>> round(float(loss), 4), float(aux["image_to_text_accuracy"])
      (0.0, 1.0)
      >>> round(float(clip_loss(images, jnp.ones((3, 3)), jnp.log(100.0))[0]), 4)  # chance: log 3
      1.0986
    """
    scale = jnp.minimum(jnp.exp(log_scale), max_scale)
    logits = scale * _similarities(image_embeddings, text_embeddings)
    targets = jnp.arange(logits.shape[0])
    image_to_text = optax.softmax_cross_entropy_with_integer_labels(logits, targets)
    text_to_image = optax.softmax_cross_entropy_with_integer_labels(logits.T, targets)
    loss = 0.5 * (jnp.mean(image_to_text) + jnp.mean(text_to_image))
    i2t, t2i = _retrieval_accuracy(logits)
    return loss, {"logit_scale": scale, "image_to_text_accuracy": i2t,
                  "text_to_image_accuracy": t2i}


def siglip_loss(image_embeddings: jax.Array, text_embeddings: jax.Array, log_scale: jax.Array,
                bias: jax.Array) -> tuple[jax.Array, dict]:
    """SigLIP's pairwise sigmoid loss (Zhai et al. 2023, Algorithm 1): every (image, text)
    pair is a binary question, positive on the diagonal, with a learnable scale and bias
    (the paper starts at log_scale = log 10, bias = -10).

    Args:
      image_embeddings, text_embeddings: [B, D], normalised here.
      log_scale, bias: scalars.

    Returns:
      (scalar loss: -sum_j log sigmoid(z_ij (scale s_ij + bias)) averaged over images i, with
      z_ij = 1 if i == j else -1; aux as `clip_loss`'s, plus `bias`).

    Example:
      >>> import jax.numpy as jnp
      >>> from jaxgen.losses import siglip_loss
      >>> images, texts = jnp.eye(4)[:2], jnp.eye(4)[2:]  # orthogonal: every similarity is 0
      >>> loss, aux = siglip_loss(images, texts, log_scale=jnp.log(10.0), bias=jnp.array(0.0))
      >>> round(float(loss), 4)  # per image, 2 pairs at logit 0: 2 log 2
      1.3863
    """
    scale = jnp.exp(log_scale)
    logits = scale * _similarities(image_embeddings, text_embeddings) + bias
    labels = 2.0 * jnp.eye(logits.shape[0]) - 1.0
    loss = -jnp.mean(jnp.sum(jax.nn.log_sigmoid(labels * logits), axis=1))
    i2t, t2i = _retrieval_accuracy(logits)
    return loss, {"logit_scale": scale, "bias": bias, "image_to_text_accuracy": i2t,
                  "text_to_image_accuracy": t2i}
