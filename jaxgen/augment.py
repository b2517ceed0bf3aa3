"""Differentiable augmentation of image batches, as pure functions of (key, images).

A discriminator trained on few images memorises them; augmenting what it sees, real and fake
alike and differentiably (so the generator's gradient passes through), keeps its feedback
useful (Zhao et al. 2020, "Differentiable Augmentation for Data-Efficient GAN Training";
Karras et al. 2020, "Training Generative Adversarial Networks with Limited Data").

The transforms are DiffAugment's (`DiffAugment_pytorch.py` of mit-han-lab/data-efficient-gans),
on NHWC images in [-1, 1]:

- "color": brightness + U(-0.5, 0.5), saturation (distance from the channel mean) x U(0, 2),
  contrast (distance from the image mean) x U(0.5, 1.5);
- "translation": an integer shift of up to 1/8 of each side, the uncovered pixels 0;
- "cutout": a square of half each side set to 0, centred anywhere in the image.

Each transform is applied to each image with probability `p` (1: DiffAugment; ADA adjusts it
during training, `jaxgen.train.gan`), and `p` = 0 returns the images unchanged.
"""

import jax
import jax.numpy as jnp

POLICIES = ("color", "translation", "cutout")


def _per_image(key, x, p, fn):
    """fn(x) for the images a Bernoulli(p) draw picks, x for the others."""
    if isinstance(p, (int, float)) and p >= 1:
        return fn(x)
    apply = jax.random.bernoulli(key, p, (x.shape[0],) + (1,) * (x.ndim - 1))
    return jnp.where(apply, fn(x), x)


def _uniform(key, x, low, high):
    return jax.random.uniform(key, (x.shape[0], 1, 1, 1), x.dtype, low, high)


def color(key: jax.Array, x: jax.Array, p: float | jax.Array = 1.0) -> jax.Array:
    """Brightness, saturation and contrast, each with probability `p` per image.

    Example:
        >>> import jax, jax.numpy as jnp
        >>> from jaxgen.augment import color
        >>> images, key = jnp.zeros((2, 8, 8, 3)), jax.random.key(0)
        >>> color(key, images).shape
        (2, 8, 8, 3)
        >>> bool(jnp.array_equal(color(key, images, p=0.0), images))  # p = 0: unchanged
        True
    """
    keys = jax.random.split(key, 6)
    x = _per_image(keys[0], x, p, lambda x: x + _uniform(keys[1], x, -0.5, 0.5))

    def saturation(x):
        mean = jnp.mean(x, axis=-1, keepdims=True)
        return (x - mean) * _uniform(keys[3], x, 0.0, 2.0) + mean

    def contrast(x):
        mean = jnp.mean(x, axis=(1, 2, 3), keepdims=True)
        return (x - mean) * _uniform(keys[5], x, 0.5, 1.5) + mean

    x = _per_image(keys[2], x, p, saturation)
    return _per_image(keys[4], x, p, contrast)


def translation(key: jax.Array, x: jax.Array, p: float | jax.Array = 1.0) -> jax.Array:
    """Shifts each image by whole pixels, up to H // 8 and W // 8 either way, filling with 0.

    Example:
        >>> import jax, jax.numpy as jnp
        >>> from jaxgen.augment import translation
        >>> shifted = translation(jax.random.key(0), jnp.ones((4, 16, 16, 3)))
        >>> shifted.shape, bool(jnp.isin(shifted, jnp.array([0.0, 1.0])).all())  # moved, or 0
        ((4, 16, 16, 3), True)
    """
    batch, height, width, _ = x.shape
    shift_key, apply_key = jax.random.split(key)
    sy, sx = height // 8, width // 8
    shifts = jax.random.randint(shift_key, (batch, 2), jnp.array([-sy, -sx]),
                                jnp.array([sy + 1, sx + 1]))

    def shift(x):
        padded = jnp.pad(x, ((0, 0), (1, 1), (1, 1), (0, 0)))
        rows = jnp.clip(jnp.arange(height)[None] + shifts[:, :1] + 1, 0, height + 1)
        cols = jnp.clip(jnp.arange(width)[None] + shifts[:, 1:] + 1, 0, width + 1)
        return jax.vmap(lambda image, r, c: image[r][:, c])(padded, rows, cols)

    return _per_image(apply_key, x, p, shift)


def cutout(key: jax.Array, x: jax.Array, p: float | jax.Array = 1.0) -> jax.Array:
    """Zeroes a (H // 2) x (W // 2) square of each image, its centre uniform over the image
    (the square cut at the borders).

    Example:
        >>> import jax, jax.numpy as jnp
        >>> from jaxgen.augment import cutout
        >>> out = cutout(jax.random.key(0), jnp.ones((4, 8, 8, 1)))
        >>> holes = (out == 0).sum(axis=(1, 2, 3))  # a 4 x 4 square, cut at the borders
        >>> out.shape, bool(((holes >= 2 * 2) & (holes <= 4 * 4)).all())
        ((4, 8, 8, 1), True)
    """
    batch, height, width, _ = x.shape
    centre_key, apply_key = jax.random.split(key)
    ch, cw = height // 2, width // 2
    centres = jax.random.randint(centre_key, (batch, 2), 0,
                                 jnp.array([height + 1 - ch % 2, width + 1 - cw % 2]))
    top, left = centres[:, 0] - ch // 2, centres[:, 1] - cw // 2
    rows, cols = jnp.arange(height), jnp.arange(width)
    inside_rows = (rows[None] >= top[:, None]) & (rows[None] < top[:, None] + ch)
    inside_cols = (cols[None] >= left[:, None]) & (cols[None] < left[:, None] + cw)
    keep = ~(inside_rows[:, :, None] & inside_cols[:, None, :])
    return _per_image(apply_key, x, p, lambda x: x * keep[..., None].astype(x.dtype))


TRANSFORMS = {"color": color, "translation": translation, "cutout": cutout}


def check_policy(policy: str) -> tuple[str, ...]:
    """The transforms named in a comma-separated `policy` ("" for none), in order.

    Example:
        >>> from jaxgen.augment import check_policy
        >>> check_policy("translation,color")
        ('translation', 'color')
        >>> check_policy("")
        ()
    """
    names = tuple(name for name in policy.split(",") if name)
    unknown = [name for name in names if name not in TRANSFORMS]
    if unknown:
        raise ValueError(f"unknown augmentation {unknown[0]!r} in {policy!r}; choose from "
                         f"{', '.join(POLICIES)}, comma-separated")
    return names


def diff_augment(key: jax.Array, x: jax.Array, policy: str = "color,translation,cutout",
                 p: float | jax.Array = 1.0) -> jax.Array:
    """`policy`'s transforms in turn (DiffAugment's order), each applied to each image of the
    NHWC batch `x` with probability `p`.

    Example:
        >>> import jax, jax.numpy as jnp
        >>> from jaxgen.augment import diff_augment
        >>> images, key = jnp.zeros((2, 16, 16, 3)), jax.random.key(0)
        >>> diff_augment(key, images).shape
        (2, 16, 16, 3)
        >>> bool(jnp.array_equal(diff_augment(key, images, policy="", p=1.0), images))  # no policy
        True
    """
    names = check_policy(policy)
    if x.ndim != 4:
        raise ValueError(f"augmentation takes image batches [N, H, W, C], got shape "
                         f"{list(x.shape)}")
    for name, k in zip(names, jax.random.split(key, max(len(names), 1)), strict=False):
        x = TRANSFORMS[name](k, x, p)
    return x
