"""Evaluation metrics."""

from jaxgen.eval.samples import (
    distance_to_curve,
    energy_distance,
    frechet_distance,
    mode_coverage,
)
from jaxgen.eval.vae import evaluate as evaluate_vae

__all__ = [
    "distance_to_curve",
    "energy_distance",
    "evaluate_vae",
    "frechet_distance",
    "mode_coverage",
]
