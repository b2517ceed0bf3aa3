"""Scores of a trained GAN from its samples: mode coverage on the Gaussian mixtures and, on the
helix, the distance to held-out data and the spread around the curve."""

import jax
import numpy as np

from jaxgen import data
from jaxgen.data import toy
from jaxgen.eval.samples import distance_to_curve, energy_distance, mode_coverage


def draw(objective, params, num: int, seed: int = 0, chunk: int = 2500) -> np.ndarray:
    """`num` samples as numpy, drawn in chunks of one jitted sampler."""
    sample = jax.jit(objective.sample, static_argnums=2)
    keys = jax.random.split(jax.random.PRNGKey(seed), -(-num // chunk))
    return np.concatenate([np.asarray(sample(params, k, chunk)) for k in keys])[:num]


def mode_report(objective, params, num_samples: int = 2500,
                seed: int = 0) -> tuple[dict, np.ndarray]:
    """(`mode_coverage` of `num_samples` generated points, the points) for a ring8/grid25 run."""
    centers, std = toy.mixture_modes(objective.config.data.name)
    samples = draw(objective, params, num_samples, seed)
    return mode_coverage(samples, centers, std), samples


def helix_report(points: np.ndarray, held_out: np.ndarray) -> dict:
    """How well `points` [N, 3] match held-out helix data: energy distance to it, and the root
    mean square distance to the noiseless curve next to the data's own."""
    curve = toy.helix_curve()
    spread = np.sqrt(np.mean(distance_to_curve(points, curve) ** 2))
    true_spread = np.sqrt(np.mean(distance_to_curve(held_out, curve) ** 2))
    return {"energy_distance": energy_distance(points, held_out), "rms_distance_to_curve": float(
        spread), "data_rms_distance_to_curve": float(true_spread)}


def held_out(name: str, num: int, seed: int = 0) -> np.ndarray:
    _, points, _ = data.load_arrays(name, "test", seed=seed)
    return points[:num]


def class_histogram(objective, params, classifier, num_samples: int = 2000, seed: int = 0,
                    min_confidence: float = 0.9) -> dict:
    """How a generator's images spread over the classes, by the library's classifier: counts per
    predicted class, the share recognised with confidence >= `min_confidence`, and KL(q ||
    uniform) of the class distribution q (0 when every class is equally common; log K when
    collapsed to one class)."""
    images = draw(objective, params, num_samples, seed, chunk=500)
    predicted, confidence = classifier.predict(images)
    num_classes = objective.config.model.num_classes or int(classifier.params["out"]["bias"]
                                                            .shape[0])
    counts = np.bincount(predicted, minlength=num_classes)
    q = counts / counts.sum()
    nonzero = q > 0
    return {"counts": counts.tolist(), "confident": float(np.mean(confidence >= min_confidence)),
            "kl_to_uniform": float(np.sum(q[nonzero] * np.log(q[nonzero] * num_classes))),
            "num_samples": num_samples, "classifier_test_accuracy": classifier.test_accuracy}
