"""Sample-based scores of a generator against data: mode coverage of a Gaussian mixture (the
VEEGAN/PacGAN protocol), the energy distance between two samples, and the distance of points to
a curve, and the Frechet distance between feature sets (FID's formula on any features). Pure
numpy/JAX functions of sample arrays.
"""

import jax
import jax.numpy as jnp
import numpy as np

from jaxgen import metrics


def mode_coverage(samples: np.ndarray, centers: np.ndarray, std: float,
                  threshold: float = 3.0) -> dict:
    """Mode coverage as VEEGAN (Srivastava et al. 2017, section 5.1) and PacGAN (Lin et al. 2018,
    section 5.1) score it.

    A sample is *high quality* when it lies within `threshold` standard deviations of its nearest
    mode; a mode is *captured* when it is the nearest mode of at least one high-quality sample.

    Args:
        samples: [N, D] generated points (the protocol uses N = 2,500).
        centers: [K, D] the mixture's means.
        std: the components' (isotropic) standard deviation.

    Returns:
        modes: number of captured modes; high_quality: fraction of high-quality samples;
        reverse_kl: KL(q || uniform) in nats, q the distribution of high-quality samples over
        modes (PacGAN's third column; 0 when they spread evenly); counts: [K] samples per mode.
    """
    samples, centers = np.asarray(samples, np.float64), np.asarray(centers, np.float64)
    distances = np.linalg.norm(samples[:, None, :] - centers[None], axis=-1) / std
    nearest, closest = np.argmin(distances, axis=1), np.min(distances, axis=1)
    good = closest < threshold
    counts = np.bincount(nearest[good], minlength=len(centers))
    q = counts / max(counts.sum(), 1)
    nonzero = q > 0
    reverse_kl = float(np.sum(q[nonzero] * np.log(q[nonzero] * len(centers))))
    return {"modes": int(np.count_nonzero(counts)), "high_quality": float(np.mean(good)),
            "reverse_kl": reverse_kl if counts.sum() else float("nan"),
            "counts": counts.tolist()}


@jax.jit
def _mean_pairwise_distance(x: jax.Array, y: jax.Array) -> jax.Array:
    def row(xi):
        return jnp.mean(jnp.sqrt(jnp.sum(jnp.square(xi - y), -1) + 1e-12))

    return jnp.mean(jax.lax.map(row, x, batch_size=256))


def energy_distance(x: np.ndarray, y: np.ndarray) -> float:
    """Energy distance 2 E|X - Y| - E|X - X'| - E|Y - Y'| between samples x [N, D] and y [M, D]
    (Szekely & Rizzo 2013): zero exactly when the distributions agree, and its square root is a
    metric. V-statistic form: self-pairs (distance 0) are included, a bias of order 1/N."""
    x, y = jnp.asarray(x, jnp.float32), jnp.asarray(y, jnp.float32)
    return float(2.0 * _mean_pairwise_distance(x, y) - _mean_pairwise_distance(x, x)
                 - _mean_pairwise_distance(y, y))


def distance_to_curve(points: np.ndarray, curve: np.ndarray) -> np.ndarray:
    """[N] Euclidean distance of each point to a densely sampled curve [T, D] (its nearest
    vertex; with T large, the error is below the vertex spacing)."""
    points, curve = jnp.asarray(points, jnp.float32), jnp.asarray(curve, jnp.float32)
    nearest = jax.lax.map(lambda p: jnp.min(jnp.sum(jnp.square(curve - p), -1)), points,
                          batch_size=256)
    return np.sqrt(np.asarray(nearest))


def frechet_distance(x: np.ndarray, y: np.ndarray) -> float:
    """Frechet distance between Gaussians fitted to features x [N, D] and y [M, D]
    (Heusel et al. 2017, the FID formula): |mu_x - mu_y|^2 + Tr(S_x + S_y - 2 (S_x S_y)^1/2),
    the means and covariances (ddof=1) taken in float64 and handed to
    `jaxgen.metrics.frechet_distance`. Biased upward at small N: compare figures computed with
    the same N."""
    x, y = np.asarray(x, np.float64), np.asarray(y, np.float64)
    return metrics.frechet_distance(x.mean(0), np.cov(x, rowvar=False),
                                    y.mean(0), np.cov(y, rowvar=False))
