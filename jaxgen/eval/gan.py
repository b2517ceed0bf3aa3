"""Scores of a trained GAN from its samples: the classifier's class histogram and the
Frechet distance of its features to held-out images (the diffusion tables' `fd`) on images (and
FID, KID, Inception Score and precision/recall where pytorch-fid's Inception weights are
configured, `jaxgen.eval.fid`), mode coverage on the Gaussian mixtures and, on the helix, the
distance to held-out data and the spread around the curve."""

import time
from pathlib import Path

import jax
import numpy as np

from jaxgen import data, viz
from jaxgen.data import toy
from jaxgen.eval import fid
from jaxgen.eval.classifier import load_or_train
from jaxgen.eval.samples import (
    distance_to_curve,
    energy_distance,
    frechet_distance,
    mode_coverage,
)


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
                    min_confidence: float = 0.9, reference: np.ndarray | None = None) -> dict:
    """How a generator's images spread over the classes, by the library's classifier: counts per
    predicted class, the share recognised with confidence >= `min_confidence`, KL(q ||
    uniform) of the class distribution q (0 when every class is equally common; log K when
    collapsed to one class), its smallest class share, and with `reference` images `fd`, the
    Frechet distance of the classifier's features of the samples to theirs."""
    images = draw(objective, params, num_samples, seed, chunk=500)
    predicted, confidence = classifier.predict(images)
    num_classes = objective.config.model.num_classes or int(classifier.params["out"]["bias"]
                                                            .shape[0])
    counts = np.bincount(predicted, minlength=num_classes)
    q = counts / counts.sum()
    nonzero = q > 0
    scores = {"counts": counts.tolist(),
              "confident": float(np.mean(confidence >= min_confidence)),
              "kl_to_uniform": float(np.sum(q[nonzero] * np.log(q[nonzero] * num_classes))),
              "smallest_class_share": float(q.min()), "num_samples": num_samples,
              "classifier_test_accuracy": classifier.test_accuracy}
    if reference is not None:
        scores["fd"] = frechet_distance(classifier.features(images),
                                        classifier.features(reference))
        scores["num_reference"] = len(reference)
    return scores


def evaluate_run(run, options) -> dict:
    """The scores of a GAN run from `options.num` (or `eval.num_samples`) samples: on images,
    `class_histogram`; on ring8/grid25, `mode_report` (and a scatter of the samples against
    the modes, `modes.png` in `options.out_dir`); on the helix, `helix_report`."""
    cfg, seed = run.config, options.seed
    num = options.num or cfg.eval.num_samples
    t0 = time.perf_counter()
    if len(cfg.model.data_shape) == 3:
        classifier = load_or_train(cfg.data.name, seed=cfg.seed, data_dir=cfg.data.data_dir)
        _, reference, _ = data.load_arrays(cfg.data.name, cfg.eval.get("split", "test"),
                                           seed=cfg.seed, data_dir=cfg.data.data_dir)
        metrics = class_histogram(run.objective, run.params, classifier, num, seed,
                                  reference=reference)
        if fid.configured():  # the field's yardsticks, beside the library's own
            metrics["inception"] = fid.evaluate_run(run, num, seed=seed)
    elif cfg.data.name in ("ring8", "grid25"):
        metrics, samples = mode_report(run.objective, run.params, num, seed)
        if options.out_dir is not None:
            centers, _ = toy.mixture_modes(cfg.data.name)
            viz.scatter_panels([(f"{metrics['modes']} modes, {100 * metrics['high_quality']:.1f}% "
                                 "high quality", samples)], Path(options.out_dir, "modes.png"),
                               reference=centers)
    else:
        samples = draw(run.objective, run.params, num, seed)
        metrics = helix_report(samples, held_out(cfg.data.name, num, cfg.seed))
    metrics.update(step=int(run.state.step), seconds=time.perf_counter() - t0,
                   dataset=cfg.data.name)
    return metrics
