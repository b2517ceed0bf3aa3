"""Improved precision and recall (Kynkaanniemi et al. 2019, section 2): each set's manifold is
the union of hyperspheres around its samples, each with the radius of the sample's k-th nearest
neighbour in its own set (k = 3 in the paper). Precision is the share of generated samples
inside the real manifold, recall the share of real samples inside the generated one.

Distances are computed in JAX, a chunk of rows against the whole other set at a time, so a
50,000 x 50,000 matrix never exists: each chunk is [row_chunk, N].
"""

import functools

import jax
import jax.numpy as jnp

from jaxgen.metrics import _checks


def _squared_distances(row, points, points_sq_norms):
    # |a - b|^2 = |a|^2 + |b|^2 - 2 a.b: one matmul per chunk (vmapped by lax.map); clipped at 0
    # against rounding.
    cross = jnp.matmul(points, row, precision=jax.lax.Precision.HIGHEST)
    return jnp.maximum(jnp.sum(row * row) + points_sq_norms - 2.0 * cross, 0.0)


@functools.partial(jax.jit, static_argnames=("k", "row_chunk"))
def _radii_squared(points, k: int, row_chunk: int):
    sq_norms = jnp.sum(points * points, axis=1)

    def radius(row):
        # Sample i's distance to itself (0) is the smallest, so the (k+1)-th smallest distance
        # is its k-th nearest neighbour among the others, duplicates counted as neighbours.
        return -jax.lax.top_k(-_squared_distances(row, points, sq_norms), k + 1)[0][k]

    return jax.lax.map(radius, points, batch_size=row_chunk)


@functools.partial(jax.jit, static_argnames="row_chunk")
def _count_inside(queries, points, radii_squared, row_chunk: int):
    """How many queries lie in at least one of the hyperspheres around `points` (the indicator
    f of Kynkaanniemi et al. 2019, section 2)."""
    sq_norms = jnp.sum(points * points, axis=1)

    def inside(row):
        return jnp.any(_squared_distances(row, points, sq_norms) <= radii_squared)

    return jnp.sum(jax.lax.map(inside, queries, batch_size=row_chunk))


def precision_recall(real_features, fake_features, *, k: int = 3,
                     row_chunk: int = 1024) -> tuple[float, float]:
    """Improved precision and recall of generated features against real ones.

    Args:
      real_features: [N, D], N > k.
      fake_features: [M, D], M > k.
      k: the neighbour whose distance is each sample's radius (the paper's k = 3).
      row_chunk: rows whose distances to a whole set are computed at once; memory is about
        row_chunk x max(N, M) floats.

    Returns:
      (precision, recall), floats in [0, 1].
    """
    real = _checks.features_array(real_features, "real_features")
    fake = _checks.features_array(fake_features, "fake_features")
    _checks.same_dim(real, fake, "real_features", "fake_features")
    for name, value in (("k", k), ("row_chunk", row_chunk)):
        if not (isinstance(value, int) and value >= 1):
            raise ValueError(f"{name} must be a positive integer, got {value!r}")
    if min(real.shape[0], fake.shape[0]) <= k:
        raise ValueError(f"k={k} needs more than k samples in each set, got "
                         f"{real.shape[0]} real and {fake.shape[0]} fake")
    real_radii = _radii_squared(real, k, row_chunk)
    fake_radii = _radii_squared(fake, k, row_chunk)
    # Counts, divided on the host: exact fractions at any N.
    precision = int(_count_inside(fake, real, real_radii, row_chunk)) / fake.shape[0]
    recall = int(_count_inside(real, fake, fake_radii, row_chunk)) / real.shape[0]
    return precision, recall
