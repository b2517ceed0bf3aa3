"""Scores of a class-conditional diffusion model: for each guidance scale (and sampler), the
accuracy with which the library's classifier recognises the requested class in the samples, and
the Frechet distance of the classifier's features of the samples to those of held-out data
(Ho & Salimans 2022's trade-off: guidance buys class fidelity with diversity); and, where
pytorch-fid's Inception weights are configured, FID, KID, Inception Score and precision/recall
(`jaxgen.eval.fid`), which also score unconditional runs."""

import time

import jax
import jax.numpy as jnp
import numpy as np

from jaxgen import data
from jaxgen.eval import fid
from jaxgen.eval.classifier import load_or_train
from jaxgen.eval.samples import frechet_distance


def scorer(config, split: str = "test"):
    """(the library's classifier for a run's dataset, trained on its real training images and
    cached; the `split` images that samples are compared with)."""
    classifier = load_or_train(config.data.name, seed=config.seed,
                               data_dir=config.data.data_dir)
    _, reference, _ = data.load_arrays(config.data.name, split, seed=config.seed,
                                       data_dir=config.data.data_dir)
    return classifier, reference


def conditional_samples(objective, params, num: int, seed: int = 0, guidance=None,
                        sampler=None, steps=None, chunk: int = 500):
    """(images [num, H, W, C] in [-1, 1], requested labels [num]: 0, 1, ..., K-1 in turn). The
    noise and sampler keys depend only on `seed` and the chunk index, so two settings compared
    at the same seed start from the same noise."""
    generate = jax.jit(objective.generate, static_argnames=("sampler", "steps"))
    labels = np.arange(num) % objective.num_classes
    images = []
    for index, start in enumerate(range(0, num, chunk)):
        key = jax.random.fold_in(jax.random.PRNGKey(seed), index)
        noise_key, sampler_key = jax.random.split(key)
        n = min(chunk, num - start)
        x_T = jax.random.normal(noise_key, (n, *objective.data_shape))
        out = generate(params, x_T, sampler_key, jnp.asarray(labels[start:start + n]),
                       guidance, None, sampler=sampler, steps=steps)
        images.append(np.clip(np.asarray(out), -1.0, 1.0))
    return np.concatenate(images), labels


def guidance_table(objective, params, classifier, reference: np.ndarray, scales,
                   samplers=(("ddim", 50),), num: int = 1000, seed: int = 0) -> list[dict]:
    """One row per (sampler, steps, guidance w): `accuracy` (the classifier's prediction equals
    the requested class), `fd` (Frechet distance of classifier features to `reference` images),
    `seconds` (sampling time)."""
    reference_features = classifier.features(reference)
    rows = []
    for sampler, steps in samplers:
        for scale in scales:
            t0 = time.perf_counter()
            images, labels = conditional_samples(objective, params, num, seed, float(scale),
                                                 sampler, steps)
            seconds = time.perf_counter() - t0
            predicted, _ = classifier.predict(images)
            rows.append({"sampler": sampler, "steps": steps, "guidance": float(scale),
                         "accuracy": float(np.mean(predicted == labels)),
                         "fd": frechet_distance(classifier.features(images), reference_features),
                         "num_samples": num, "seconds": seconds})
    return rows


def evaluate_run(run, options) -> dict:
    """`guidance_table` of a class-conditional run: one row per guidance scale of
    `eval.guidance`, with the config's sampler, from `options.num` (or `eval.num_samples`)
    samples scored against the `eval.split` images."""
    cfg = run.config
    num = options.num or cfg.eval.num_samples
    if not cfg.model.num_classes:
        if not fid.configured():
            raise ValueError("eval scores an unconditional diffusion run by FID, which needs "
                             f"pytorch-fid's Inception weights: set ${fid.WEIGHTS_ENV} (see "
                             "`python -m jaxgen fid --help`); without them it scores "
                             "class-conditional runs (accuracy of the requested class)")
        return {"inception": fid.evaluate_run(run, num, seed=options.seed, split=cfg.eval.split),
                "step": int(run.state.step), "dataset": cfg.data.name}
    classifier, reference = scorer(cfg, cfg.eval.split)
    t0 = time.perf_counter()
    rows = guidance_table(run.objective, run.params, classifier, reference,
                          list(cfg.eval.guidance), [(cfg.sample.sampler, cfg.sample.steps)],
                          num, options.seed)
    result = {"rows": rows, "step": int(run.state.step), "seconds": time.perf_counter() - t0,
              "dataset": cfg.data.name, "classifier_test_accuracy": classifier.test_accuracy}
    if fid.configured():  # the field's yardsticks, beside the library's own
        result["inception"] = fid.evaluate_run(run, num, seed=options.seed,
                                               split=cfg.eval.split)
    return result
