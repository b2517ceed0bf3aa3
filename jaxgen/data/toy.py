"""Toy point sets: the noisy 3-D helix and the 2-D Gaussian mixtures used to measure mode collapse.

Each maker takes a numpy Generator and a count and returns (points float32 [N, D], labels int32
[N]); the label names the mixture component (or helix turn), so mode coverage can be scored.
"""

import numpy as np

HELIX_TURNS = 3
HELIX_NOISE = 0.05


def helix_points(t: np.ndarray) -> np.ndarray:
    """The noiseless helix at parameters t in [0, 2 pi HELIX_TURNS): [len(t), 3]."""
    return np.stack([np.cos(t), np.sin(t), 0.5 * t / (2 * np.pi) - 0.25 * HELIX_TURNS], -1)


def helix_curve(num: int = 20_000) -> np.ndarray:
    """The noiseless curve, densely sampled (vertex spacing about 1e-3)."""
    return helix_points(np.linspace(0.0, 2.0 * np.pi * HELIX_TURNS, num)).astype(np.float32)


def helix_with_parameter(rng: np.random.Generator, n: int, noise: float = HELIX_NOISE):
    """(t [N], points [N, 3]): noisy helix points with the curve parameter each was drawn at,
    the (input, target) pairs of a regression network."""
    t = rng.uniform(0.0, 2.0 * np.pi * HELIX_TURNS, size=n)
    return t.astype(np.float32), (helix_points(t) + noise * rng.standard_normal((n, 3)))


def helix(rng: np.random.Generator, n: int, noise: float = HELIX_NOISE):
    """Points on a circular helix of radius 1 and pitch 0.5 over `HELIX_TURNS` turns, plus
    isotropic Gaussian noise of std `noise` on each coordinate; labels are the turn index."""
    t, points = helix_with_parameter(rng, n, noise)
    return points.astype(np.float32), (t // (2 * np.pi)).astype(np.int32)


def _mixture(rng, centers: np.ndarray, std: float, n: int):
    labels = rng.integers(len(centers), size=n)
    points = centers[labels] + std * rng.standard_normal((n, centers.shape[1]))
    return points.astype(np.float32), labels.astype(np.int32)


def ring8_centers(radius: float = 1.0) -> np.ndarray:
    angles = 2 * np.pi * np.arange(8) / 8
    return radius * np.stack([np.cos(angles), np.sin(angles)], -1)


def grid25_centers() -> np.ndarray:
    ticks = np.arange(-4.0, 5.0, 2.0)
    return np.stack(np.meshgrid(ticks, ticks, indexing="ij"), -1).reshape(-1, 2)


RING8_STD = 0.01
GRID25_STD = 0.05


def ring8(rng: np.random.Generator, n: int, std: float = RING8_STD):
    """8 equally weighted Gaussians of std 0.01 on the unit circle: the 2D-ring of VEEGAN
    (Srivastava et al. 2017) and PacGAN (Lin et al. 2018)."""
    return _mixture(rng, ring8_centers(), std, n)


def grid25(rng: np.random.Generator, n: int, std: float = GRID25_STD):
    """25 equally weighted Gaussians of std 0.05 on the grid {-4, -2, 0, 2, 4}^2: the 2D-grid of
    VEEGAN and PacGAN."""
    return _mixture(rng, grid25_centers(), std, n)


def mixture_modes(name: str) -> tuple[np.ndarray, float]:
    """(centers [K, 2], std) of the named Gaussian mixture, for scoring mode coverage."""
    if name == "ring8":
        return ring8_centers(), RING8_STD
    if name == "grid25":
        return grid25_centers(), GRID25_STD
    raise ValueError(f"{name!r} is not a Gaussian mixture with known modes; use ring8 or grid25")
