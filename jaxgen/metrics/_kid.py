"""Kernel Inception Distance (Binkowski et al. 2018, "Demystifying MMD GANs", section 4): the
unbiased estimate of the squared MMD between real and generated features with the cubic
polynomial kernel k(x, y) = (x . y / d + 1)^3, averaged over random subsets.

Formulas as torchmetrics' `KernelInceptionDistance` (`maximum_mean_discrepancy`, `poly_kernel`,
`poly_mmd` in `torchmetrics/image/kid.py`), defaults included: 100 subsets of 1000 samples,
each drawn without replacement, and the population standard deviation over subsets. The kernel
matrices are built in float32 (float64 under x64) on the device; their per-row sums come to the
host and the estimate is finished in float64, where the large kernel means cancel.
"""

import functools

import jax
import jax.numpy as jnp
import numpy as np

from jaxgen.metrics import _checks


def _kernel(x, y, gamma, coef, degree: int):
    return (jnp.matmul(x, y.T, precision=jax.lax.Precision.HIGHEST) * gamma + coef) ** degree


def _kernel_row_sums(x, y, gamma, coef, degree: int):
    """Row sums of k(x, x) and k(y, y) without their diagonals, and of k(x, y): [N], [M], [N]."""
    def off_diagonal_row_sums(k):
        return jnp.sum(jnp.where(jnp.eye(k.shape[0], dtype=bool), 0.0, k), axis=1)

    return (off_diagonal_row_sums(_kernel(x, x, gamma, coef, degree)),
            off_diagonal_row_sums(_kernel(y, y, gamma, coef, degree)),
            jnp.sum(_kernel(x, y, gamma, coef, degree), axis=1))


_full_row_sums = jax.jit(_kernel_row_sums, static_argnames="degree")


@functools.partial(jax.jit, static_argnames="degree")
def _subset_row_sums(real, fake, real_indices, fake_indices, gamma, coef, degree: int):
    # One subset at a time: 100 subsets of three 1000 x 1000 kernels at once would not fit.
    return jax.lax.map(
        lambda indices: _kernel_row_sums(real[indices[0]], fake[indices[1]], gamma, coef, degree),
        (real_indices, fake_indices))


def _unbiased_mmd(xx_sums, yy_sums, xy_sums) -> np.ndarray:
    # The unbiased MMD^2 (Gretton et al. 2012, "A Kernel Two-Sample Test", eq. 3), which
    # Binkowski et al. 2018 average for KID; for N = M it is torchmetrics'
    # maximum_mean_discrepancy.
    xx_sums, yy_sums, xy_sums = (np.asarray(s, np.float64) for s in (xx_sums, yy_sums, xy_sums))
    n, m = xx_sums.shape[-1], yy_sums.shape[-1]
    return (xx_sums.sum(-1) / (n * (n - 1)) + yy_sums.sum(-1) / (m * (m - 1))
            - 2.0 * xy_sums.sum(-1) / (n * m))


def _kernel_parameters(dim: int, degree: int, gamma, coef):
    if not (isinstance(degree, int) and degree > 0):
        raise ValueError(f"degree must be a positive integer, got {degree!r}")
    # Python floats: traced as the features' float type, so x64 runs keep gamma = 1/3 exact.
    return float(1.0 / dim if gamma is None else gamma), float(coef)


def polynomial_mmd(x, y, *, degree: int = 3, gamma: float | None = None,
                   coef: float = 1.0) -> float:
    """Unbiased squared MMD between all of x and all of y with the polynomial kernel
    k(a, b) = (gamma a . b + coef)^degree: KID on a single subset (torchmetrics' `poly_mmd`).

    Args:
      x: [N, D] features, N >= 2.
      y: [M, D] features, M >= 2.
      degree, gamma, coef: the kernel; gamma defaults to 1 / D.

    Returns:
      the estimate, a float (can be slightly negative when the distributions agree).
    """
    x, y = _checks.features_array(x, "x"), _checks.features_array(y, "y")
    _checks.same_dim(x, y, "x", "y")
    if min(x.shape[0], y.shape[0]) < 2:
        raise ValueError(f"the unbiased MMD needs at least 2 samples in each set, got "
                         f"{x.shape[0]} and {y.shape[0]}")
    gamma, coef = _kernel_parameters(x.shape[1], degree, gamma, coef)
    return float(_unbiased_mmd(*_full_row_sums(x, y, gamma, coef, degree=degree)))


def kernel_inception_distance(real_features, fake_features, key: jax.Array, *,
                              subsets: int = 100, subset_size: int = 1000, degree: int = 3,
                              gamma: float | None = None,
                              coef: float = 1.0) -> tuple[float, float]:
    """KID: `polynomial_mmd` averaged over random subsets of both sets.

    Args:
      real_features: [N, D].
      fake_features: [M, D].
      key: a `jax.random` key; it draws every subset (each without replacement).
      subsets: number of subsets (torchmetrics' default 100).
      subset_size: samples per subset (torchmetrics' default 1000), at most min(N, M).
      degree, gamma, coef: the kernel (gamma defaults to 1 / D); the defaults are KID's.

    Returns:
      (mean, std) over subsets, floats; std is the population standard deviation (ddof=0), as
      torchmetrics reports it.
    """
    real = _checks.features_array(real_features, "real_features")
    fake = _checks.features_array(fake_features, "fake_features")
    _checks.same_dim(real, fake, "real_features", "fake_features")
    if not (isinstance(subsets, int) and subsets > 0):
        raise ValueError(f"subsets must be a positive integer, got {subsets!r}")
    if not (isinstance(subset_size, int) and subset_size >= 2):
        raise ValueError(f"subset_size must be an integer >= 2, got {subset_size!r}")
    for name, count in (("real", real.shape[0]), ("fake", fake.shape[0])):
        if subset_size > count:
            raise ValueError(f"subset_size={subset_size} is larger than the {count} {name} "
                             "samples; KID draws subsets without replacement, so pass "
                             f"subset_size <= {min(real.shape[0], fake.shape[0])} or more "
                             "samples")
    gamma, coef = _kernel_parameters(real.shape[1], degree, gamma, coef)

    real_key, fake_key = jax.random.split(key)

    def draw(key, count):
        keys = jax.random.split(key, subsets)
        return jax.vmap(lambda k: jax.random.permutation(k, count)[:subset_size])(keys)

    sums = _subset_row_sums(real, fake, draw(real_key, real.shape[0]),
                            draw(fake_key, fake.shape[0]), gamma, coef, degree=degree)
    scores = _unbiased_mmd(*sums)
    return float(np.mean(scores)), float(np.std(scores))
