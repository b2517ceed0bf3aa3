"""The pictures of a latent-variable model: samples, reconstructions, interpolations, arithmetic
and walks. Each takes an objective with `encode`/`decode`/`sample` and returns image arrays in
[-1, 1] (or uint8 grids), leaving files to the caller.
"""

import jax
import jax.numpy as jnp
import numpy as np

from jaxgen import viz
from jaxgen.sample import latent


def reconstructions(objective, params, images: np.ndarray) -> np.ndarray:
    """Rows of (original, reconstruction from the posterior mean) pairs: [2N, H, W, C]."""
    mean, _ = objective.encode(params, jnp.asarray(images))
    recon = np.asarray(objective.decode(params, mean))
    return np.stack([images, recon], 1).reshape(-1, *images.shape[1:])


def interpolation_strips(objective, params, starts, ends, num: int = 10, method="slerp"):
    """One strip per (start, end) image pair, decoded along the path between their codes."""
    z0, _ = objective.encode(params, jnp.asarray(starts))
    z1, _ = objective.encode(params, jnp.asarray(ends))
    path = latent.interpolate(z0, z1, num, method)  # [num, P, D]
    decoded = objective.decode(params, path.reshape(-1, path.shape[-1]))
    decoded = np.asarray(decoded).reshape(num, len(starts), *starts.shape[1:])
    return np.swapaxes(decoded, 0, 1).reshape(-1, *starts.shape[1:])  # row per pair


def class_arithmetic(objective, params, images, labels, num_classes: int, pairs):
    """For each (image index, target class): [x, decode(z_x - mean_{y(x)} + mean_target)].

    Subtracting the mean code of the image's own class and adding another class's mean keeps the
    writing style (slant, stroke width) while changing the digit: latent arithmetic `a - b + c`.
    Rows: original, its class mean, the target class mean, the result.
    """
    codes, _ = objective.encode(params, jnp.asarray(images))
    means = latent.class_means(codes, jnp.asarray(labels), num_classes)
    rows = []
    for index, target in pairs:
        own = means[labels[index]]
        result = latent.arithmetic(codes[index], own, means[target])
        decoded = objective.decode(params, jnp.stack([own, means[target], result]))
        rows.append(np.concatenate([images[index:index + 1], np.asarray(decoded)]))
    return np.concatenate(rows)


def walk_frames(objective, params, key, anchors: int = 6, steps_between: int = 12, grid=16):
    """Frames of a looping slerp tour through random prior codes: a [T, H', W', C] uint8 grid per
    frame, `grid` independent tours side by side."""
    z = jax.random.normal(key, (anchors, grid, objective.latent_dim))
    tours = jax.vmap(lambda a: latent.loop_through(a, steps_between), in_axes=1, out_axes=1)(z)
    frames = objective.decode(params, tours.reshape(-1, tours.shape[-1]))
    frames = np.asarray(frames).reshape(tours.shape[0], grid, *frames.shape[1:])
    return np.stack([viz.image_grid(f, ncols=int(np.sqrt(grid))) for f in frames])


def prior_interpolation_strips(objective, params, key, pairs: int = 8, num: int = 10,
                               method: str = "slerp"):
    """Strips between random latent pairs from the prior (for models without an encoder)."""
    z = jax.random.normal(key, (2, pairs, objective.latent_dim))
    path = latent.interpolate(z[0], z[1], num, method)  # [num, P, D]
    decoded = np.asarray(objective.decode(params, path.reshape(-1, path.shape[-1])))
    decoded = decoded.reshape(num, pairs, *decoded.shape[1:])
    return np.swapaxes(decoded, 0, 1).reshape(-1, *decoded.shape[2:])


def labelled_latents(objective, params, classifier, key, num: int = 4096,
                     min_confidence: float = 0.9):
    """The lecture's recipe for a GAN's attribute vectors, step one: draw `num` latents, generate
    their images, and label each with the classifier. Returns (latents [M, D], labels [M]) for
    the M images labelled with at least `min_confidence`."""
    z = jax.random.normal(key, (num, objective.latent_dim))
    images = np.concatenate([np.asarray(objective.decode(params, z[i:i + 512]))
                             for i in range(0, num, 512)])
    labels, confidence = classifier.predict(images)
    keep = confidence >= min_confidence
    return np.asarray(z)[keep], labels[keep]


def latent_class_arithmetic(objective, params, latents, labels, num_classes: int, pairs):
    """For each (latent index, target class): decode [z, mean_own, mean_target,
    z - mean_own + mean_target], the generator's version of `class_arithmetic` (`WH - W + M`),
    with class means averaged over labelled latents (see `labelled_latents`)."""
    means = latent.class_means(jnp.asarray(latents), jnp.asarray(labels), num_classes)
    rows = []
    for index, target in pairs:
        own = means[labels[index]]
        codes = jnp.stack([jnp.asarray(latents[index]), own, means[target],
                           latent.arithmetic(jnp.asarray(latents[index]), own, means[target])])
        rows.append(np.asarray(objective.decode(params, codes)))
    return np.concatenate(rows), means


def mean_walk_frames(objective, params, class_means: jax.Array, order, steps_between: int = 12):
    """Frames [T, H, W, C] of a looping slerp tour through the class-mean latents in `order`."""
    tour = latent.loop_through(jnp.asarray(class_means)[jnp.asarray(order)], steps_between)
    return np.asarray(objective.decode(params, tour))
