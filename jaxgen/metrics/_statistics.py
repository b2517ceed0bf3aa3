"""Streaming mean and covariance of [N, D] features: the Gaussian that FID compares.

Each batch gives its count, mean and centred scatter matrix (`batch_moments`, pure JAX, so it
runs where the features are, sharded or not); `FeatureStatistics` combines batches on the host
in float64 with Chan et al.'s parallel update. 50,000 samples never sit in memory, and the
covariance never comes from the cancellation-prone sum(x x^T) - N mu mu^T.

Files use pytorch-fid's layout, `np.savez(path, mu=mu, sigma=sigma)` (plus `count` here), so
published statistics files load as they are.
"""

import dataclasses
import os
import warnings

import jax
import jax.numpy as jnp
import numpy as np

from jaxgen.metrics import _checks


def batch_moments(features: jax.Array) -> tuple[jax.Array, jax.Array, jax.Array]:
    """Count, mean and centred scatter matrix of one batch. Pure and jittable; under `jax.jit`
    with the batch sharded over devices the reductions become all-reduces.

    Args:
      features: [B, D]; computed in float32 (float64 when x64 is enabled and the input is).

    Returns:
      (count: scalar int B, mean: [D], scatter: [D, D] = sum_i (x_i - mean)(x_i - mean)^T).
    """
    if features.ndim != 2:
        raise ValueError(f"features must have shape [N, D], got shape {features.shape}")
    features = features.astype(jnp.promote_types(features.dtype, jnp.float32))
    mean = jnp.mean(features, axis=0)
    centred = features - mean
    # HIGHEST: accelerators otherwise multiply float32 in reduced precision (TF32/bf16 passes).
    scatter = jnp.matmul(centred.T, centred, precision=jax.lax.Precision.HIGHEST)
    return jnp.asarray(features.shape[0]), mean, scatter


_batch_moments = jax.jit(batch_moments)


@dataclasses.dataclass(frozen=True, eq=False)
class FeatureStatistics:
    """Running count, mean [D] and scatter matrix [D, D] of features, in float64 on the host.

    Immutable: `update` and `merge` return new statistics::

        stats = FeatureStatistics.empty(2048)
        for batch in batches:  # [B, 2048] each, numpy or (sharded) JAX arrays
            stats = stats.update(batch)
        stats.save("samples.npz")  # mu, sigma (and count), as pytorch-fid writes them
    """

    count: int
    mean: np.ndarray
    scatter: np.ndarray

    @classmethod
    def empty(cls, dim: int) -> "FeatureStatistics":
        """Statistics of no samples of `dim`-dimensional features."""
        return cls(0, np.zeros(dim), np.zeros((dim, dim)))

    @classmethod
    def from_features(cls, features) -> "FeatureStatistics":
        """Statistics of features [N, D] in one batch."""
        return cls.empty(np.shape(features)[-1]).update(features)

    @property
    def dim(self) -> int:
        return self.mean.shape[0]

    @property
    def mu(self) -> np.ndarray:
        """[D] float64 mean."""
        return self.mean

    @property
    def sigma(self) -> np.ndarray:
        """[D, D] float64 unbiased covariance (ddof=1, as `np.cov(x, rowvar=False)` and
        pytorch-fid). Warns when there are fewer samples than feature dimensions."""
        if self.count < 2:
            raise ValueError(f"a covariance needs at least 2 samples, these statistics hold "
                             f"{self.count}")
        if self.count < self.dim:
            warnings.warn(f"FID from N < D samples is biased: {self.count} samples of "
                          f"{self.dim}-dimensional features give a covariance of rank at most "
                          f"{self.count - 1}; use more samples than feature dimensions, and "
                          "compare FIDs only at equal N", stacklevel=2)
        return self.scatter / (self.count - 1)

    def update(self, features) -> "FeatureStatistics":
        """Add a batch.

        Args:
          features: [B, D], numpy or JAX (sharded or not); finite.

        Returns:
          new statistics of these samples and the batch's.
        """
        if np.ndim(features) == 2:
            _checks.same_dim(self.mean, features, "the statistics", "the batch")
            if np.shape(features)[0] == 0:
                return self
        count, mean, scatter = jax.device_get(_batch_moments(features))
        mean, scatter = np.asarray(mean, np.float64), np.asarray(scatter, np.float64)
        # A NaN or inf anywhere in the batch reaches its mean; checking [D] is cheaper than [B, D].
        _checks.finite(mean, "the batch of features")
        _checks.finite(scatter, "the batch of features")
        return self.merge(FeatureStatistics(int(count), mean, (scatter + scatter.T) / 2))

    def merge(self, other: "FeatureStatistics") -> "FeatureStatistics":
        """Combine with statistics of other samples (of the same D), in any order.

        Returns:
          new statistics of the union of both sets of samples.
        """
        _checks.same_dim(self.mean, other.mean, "the statistics", "the other statistics")
        if other.count == 0:
            return self
        if self.count == 0:
            return other
        # Chan, Golub & LeVeque 1979, "Updating formulae and a pairwise algorithm for computing
        # sample variances": the pairwise update, in matrix form. No catastrophic cancellation.
        count = self.count + other.count
        delta = other.mean - self.mean
        mean = self.mean + delta * (other.count / count)
        scatter = (self.scatter + other.scatter
                   + np.outer(delta, delta) * (self.count * other.count / count))
        return FeatureStatistics(count, mean, scatter)

    def save(self, path: str | os.PathLike) -> None:
        """Write mu [D], sigma [D, D] (pytorch-fid's keys) and count to an .npz file at
        `path` (numpy appends `.npz` when the name lacks it)."""
        np.savez(path, mu=self.mu, sigma=self.sigma, count=self.count)

    @classmethod
    def load(cls, path: str | os.PathLike) -> "FeatureStatistics":
        """Statistics written by `save`, ready to be updated or merged.

        Args:
          path: an .npz file with mu [D], sigma [D, D] and count. A file with only mu and
            sigma (pytorch-fid's) has no sample count: read it with `load_statistics`.

        Returns:
          the statistics; a ValueError names the file when its layout is wrong.
        """
        mu, sigma = load_statistics(path)
        with np.load(path) as data:
            if "count" not in data.files:
                raise ValueError(f"{path}: holds mu and sigma but no 'count', so it cannot be "
                                 "updated or merged; read it with load_statistics to compare")
            count = int(data["count"])
        return cls(count, mu, sigma * (count - 1))


def load_statistics(path: str | os.PathLike) -> tuple[np.ndarray, np.ndarray]:
    """Read FID statistics as pytorch-fid writes them, e.g. published reference statistics.

    Args:
      path: an .npz file with arrays `mu` [D] and `sigma` [D, D]; other keys are ignored.

    Returns:
      (mu [D], sigma [D, D]) in float64. A file of another layout raises a ValueError naming
      the file and what was expected.
    """
    expected = "an .npz file with 'mu' [D] and 'sigma' [D, D] as pytorch-fid writes them"
    try:
        data = np.load(path, allow_pickle=False)
    except (ValueError, OSError, EOFError) as error:
        if isinstance(error, FileNotFoundError):
            raise
        raise ValueError(f"{path}: not a NumPy file ({error}); expected {expected}") from None
    if not isinstance(data, np.lib.npyio.NpzFile):
        raise ValueError(f"{path}: holds a single array of shape {data.shape}; expected "
                         f"{expected}")
    with data:
        if "mu" not in data.files or "sigma" not in data.files:
            raise ValueError(f"{path}: has keys {sorted(data.files)}; expected {expected}")
        mu, sigma = data["mu"][:], data["sigma"][:]
    if mu.ndim != 1 or sigma.shape != (mu.shape[0], mu.shape[0]):
        raise ValueError(f"{path}: has mu of shape {mu.shape} and sigma of shape {sigma.shape}; "
                         f"expected {expected}")
    mu, sigma = mu.astype(np.float64), sigma.astype(np.float64)
    _checks.finite(mu, f"{path}: mu")
    _checks.finite(sigma, f"{path}: sigma")
    return mu, sigma
