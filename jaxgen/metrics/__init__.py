"""Generative-model metrics as pure functions of features: FID's statistics and Frechet
distance, KID, Inception Score, improved precision and recall, and CLIP score.

Import freely: nothing here depends on models, training or evaluation code (numpy, JAX and the
standard library only). Features come from whichever extractor the caller runs.
"""

from jaxgen.metrics._clip_score import clip_score
from jaxgen.metrics._frechet import frechet_distance, frechet_distance_from_statistics
from jaxgen.metrics._inception_score import inception_score
from jaxgen.metrics._kid import kernel_inception_distance, polynomial_mmd
from jaxgen.metrics._precision_recall import precision_recall
from jaxgen.metrics._statistics import FeatureStatistics, batch_moments, load_statistics

__all__ = [
    "FeatureStatistics",
    "batch_moments",
    "clip_score",
    "frechet_distance",
    "frechet_distance_from_statistics",
    "inception_score",
    "kernel_inception_distance",
    "load_statistics",
    "polynomial_mmd",
    "precision_recall",
]
