"""Toy point sets: the noisy 3-D helix and the 2-D Gaussian mixtures used to measure mode collapse.

Each maker takes a numpy Generator and a count and returns (points float32 [N, D], labels int32
[N]); the label names the mixture component (or helix turn), so mode coverage can be scored.
"""

import numpy as np

HELIX_TURNS = 3


def helix(rng: np.random.Generator, n: int, noise: float = 0.05) -> tuple[np.ndarray, np.ndarray]:
    """Points on a circular helix of radius 1 and pitch 0.5 over `HELIX_TURNS` turns, plus noise."""
    t = rng.uniform(0.0, 2.0 * np.pi * HELIX_TURNS, size=n)
    points = np.stack([np.cos(t), np.sin(t), 0.5 * t / (2 * np.pi) - 0.25 * HELIX_TURNS], -1)
    points += noise * rng.standard_normal(points.shape)
    return points.astype(np.float32), (t // (2 * np.pi)).astype(np.int32)


def _mixture(rng, centers: np.ndarray, std: float, n: int):
    labels = rng.integers(len(centers), size=n)
    points = centers[labels] + std * rng.standard_normal((n, centers.shape[1]))
    return points.astype(np.float32), labels.astype(np.int32)


def ring8_centers(radius: float = 2.0) -> np.ndarray:
    angles = 2 * np.pi * np.arange(8) / 8
    return radius * np.stack([np.cos(angles), np.sin(angles)], -1)


def grid25_centers() -> np.ndarray:
    ticks = np.arange(-4.0, 5.0, 2.0)
    return np.stack(np.meshgrid(ticks, ticks, indexing="ij"), -1).reshape(-1, 2)


def ring8(rng: np.random.Generator, n: int, std: float = 0.02):
    """8 Gaussians on a circle of radius 2, std 0.02 (Unrolled GAN, Metz et al. 2017)."""
    return _mixture(rng, ring8_centers(), std, n)


def grid25(rng: np.random.Generator, n: int, std: float = 0.05):
    """25 Gaussians on the grid {-4, -2, 0, 2, 4}^2, std 0.05 (Srivastava et al. 2017, VEEGAN)."""
    return _mixture(rng, grid25_centers(), std, n)
