"""The Frechet distance between two Gaussians, FID's formula (Heusel et al. 2017, section 3).

Computed with numpy in float64, not with JAX in float32: FID is a small difference of large
traces (for Inception features, tr(S1) + tr(S2) and 2 tr sqrt(S1 S2) run to hundreds while a
good model scores single digits), so float32's seven digits would leave errors of the size of
the differences being measured, and float32 eigendecompositions on accelerators are less
accurate still. JAX gives float64 only under the global x64 flag, which a library must not
flip; a 2048 x 2048 eigendecomposition takes about a second on the host.
"""

import os

import numpy as np

from jaxgen.metrics._statistics import FeatureStatistics, load_statistics


def _gaussian(mu, sigma, mu_name: str, sigma_name: str) -> tuple[np.ndarray, np.ndarray]:
    # atleast_1d/2d as pytorch-fid's calculate_frechet_distance: 1-D features may come as scalars.
    mu = np.atleast_1d(np.asarray(mu, np.float64))
    sigma = np.atleast_2d(np.asarray(sigma, np.float64))
    if mu.ndim != 1:
        raise ValueError(f"{mu_name} must be a mean of shape [D], got shape {mu.shape}")
    if sigma.shape != (mu.shape[0], mu.shape[0]):
        raise ValueError(f"{sigma_name} must be a covariance of shape [D, D] = "
                         f"{(mu.shape[0], mu.shape[0])} to match {mu_name}, got shape "
                         f"{sigma.shape}")
    if not (np.all(np.isfinite(mu)) and np.all(np.isfinite(sigma))):
        raise ValueError(f"{mu_name} or {sigma_name} contains NaN or inf values")
    return mu, sigma


def _sqrtm_psd(matrix: np.ndarray) -> np.ndarray:
    """Symmetric square root of a symmetric PSD matrix; rounding's tiny negative eigenvalues
    are clipped to 0."""
    values, vectors = np.linalg.eigh((matrix + matrix.T) / 2)
    return (vectors * np.sqrt(np.clip(values, 0.0, None))) @ vectors.T


def frechet_distance(mu1, sigma1, mu2, sigma2) -> float:
    """Frechet (2-Wasserstein squared) distance between N(mu1, sigma1) and N(mu2, sigma2):
    ||mu1 - mu2||^2 + tr(sigma1 + sigma2 - 2 (sigma1 sigma2)^1/2), the FID formula.

    tr((S1 S2)^1/2) is the sum of the square roots of the eigenvalues of S1 S2, which are those
    of the symmetric PSD matrix S1^1/2 S2 S1^1/2: `eigh` gives them stably, where pytorch-fid's
    `scipy.linalg.sqrtm` of the non-symmetric product needs a fallback for singular matrices.

    Args:
      mu1, mu2: [D] means.
      sigma1, sigma2: [D, D] covariances (symmetric positive semi-definite).

    Returns:
      the distance, a float computed in float64.
    """
    mu1, sigma1 = _gaussian(mu1, sigma1, "mu1", "sigma1")
    mu2, sigma2 = _gaussian(mu2, sigma2, "mu2", "sigma2")
    if mu1.shape != mu2.shape:
        raise ValueError(f"the first Gaussian has {mu1.shape[0]} dimensions and the second "
                         f"{mu2.shape[0]}; both must come from the same feature extractor")
    root1 = _sqrtm_psd(sigma1)
    product = root1 @ sigma2 @ root1
    eigenvalues = np.linalg.eigvalsh((product + product.T) / 2)
    trace_sqrt = np.sum(np.sqrt(np.clip(eigenvalues, 0.0, None)))
    diff = mu1 - mu2
    return float(diff @ diff + np.trace(sigma1) + np.trace(sigma2) - 2.0 * trace_sqrt)


def _mu_sigma(statistics) -> tuple[np.ndarray, np.ndarray]:
    if isinstance(statistics, FeatureStatistics):
        return statistics.mu, statistics.sigma
    if isinstance(statistics, str | os.PathLike):
        return load_statistics(statistics)
    mu, sigma = statistics
    return mu, sigma


def frechet_distance_from_statistics(first, second) -> float:
    """`frechet_distance` of two sets of statistics.

        fid = frechet_distance_from_statistics(generated_stats, "fid_stats_cifar10_train.npz")

    Args:
      first, second: each a `FeatureStatistics`, a path to an .npz file with `mu` [D] and
        `sigma` [D, D] (pytorch-fid's layout), or a (mu [D], sigma [D, D]) pair.

    Returns:
      the distance, a float computed in float64.
    """
    return frechet_distance(*_mu_sigma(first), *_mu_sigma(second))
