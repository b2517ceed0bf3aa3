"""Scores of a CLIP run on held-out images: zero-shot classification from prompts, a linear
probe on the same image features, and whether the shared space also carries the attributes the
captions state (thick vs thin, small vs large, upright vs slanted).

Zero-shot follows CLIP (Radford et al. 2021, section 3.1.4): each class is the normalised mean
of its prompts' embeddings (a prompt ensemble over the caption templates without adjectives),
and an image takes the class whose embedding is nearest. The linear probe is their section 3.2
protocol at small scale: L2-regularised logistic regression on the image tower's pooled
features, C chosen on a validation fifth of the training split, then refitted on all of it.
"""

import time

import jax
import jax.numpy as jnp
import numpy as np

from jaxgen.data import captions as captions_lib
from jaxgen.data.text import tokenize

ZERO_SHOT_TEMPLATES = ("a {name}", "the digit {digit}", "a handwritten {name}", "a {digit}")
PROBE_C = (0.01, 0.1, 1.0, 10.0, 100.0)


def _batched(fn, array: np.ndarray, batch: int = 500) -> np.ndarray:
    jitted = jax.jit(fn)
    return np.concatenate([np.asarray(jitted(jnp.asarray(array[i:i + batch])))
                           for i in range(0, len(array), batch)])


def class_prompts(num_classes: int = 10) -> list[list[str]]:
    """The prompts of each class: every template, without adjectives."""
    return [[captions_lib._with_articles(t.format(name=captions_lib.NUMBER_WORDS[k], digit=k))
             for t in ZERO_SHOT_TEMPLATES] for k in range(num_classes)]


def embed_prompts(objective, params, prompts: list[list[str]]) -> np.ndarray:
    """[K, D] unit vectors: the normalised mean embedding of each group of prompts."""
    flat = [p for group in prompts for p in group]
    tokens = tokenize(flat, objective.text_length)
    embeddings = _batched(lambda t: objective.embed_texts(params, t), tokens)
    sizes = np.cumsum([0] + [len(g) for g in prompts])
    means = np.stack([embeddings[a:b].mean(axis=0) for a, b in zip(sizes[:-1], sizes[1:],
                                                                   strict=True)])
    return means / np.linalg.norm(means, axis=1, keepdims=True)


def zero_shot_accuracy(objective, params, images: np.ndarray, labels: np.ndarray) -> float:
    classes = embed_prompts(objective, params, class_prompts())
    image_embeddings = _batched(lambda x: objective.embed_images(params, x), images)
    return float(np.mean(np.argmax(image_embeddings @ classes.T, axis=1) == labels))


def attribute_accuracy(objective, params, images: np.ndarray, labels: np.ndarray,
                       levels: np.ndarray) -> dict[str, dict]:
    """For each attribute, over the images in its outer thirds: how often the image is nearer
    the caption with its own level ("a thick seven") than the opposite one ("a thin seven"),
    the class named right in both. Chance is 50%."""
    image_embeddings = _batched(lambda x: objective.embed_images(params, x), images)
    report = {}
    for a, name in enumerate(captions_lib.ATTRIBUTES):
        outer = np.flatnonzero(levels[:, a] != 1)
        prompts = [[captions_lib.caption(int(labels[i]), {name: level}, template=0)
                    for level in (0, 2)] for i in outer]
        pairs = embed_prompts(objective, params, [[p] for pair in prompts for p in pair])
        pairs = pairs.reshape(len(outer), 2, -1)
        nearer = np.einsum("nd,nkd->nk", image_embeddings[outer], pairs).argmax(axis=1)
        report[name] = {"accuracy": float(np.mean(2 * nearer == levels[outer, a])),
                        "num_images": len(outer),
                        "words": [w for w in captions_lib.WORDS[name] if w]}
    return report


def linear_probe(train_features: np.ndarray, train_labels: np.ndarray,
                 test_features: np.ndarray, test_labels: np.ndarray, seed: int = 0) -> dict:
    """Held-out accuracy of logistic regression on standardised features; C picked on a
    stratified validation fifth of the training features."""
    from sklearn.linear_model import LogisticRegression
    from sklearn.model_selection import train_test_split
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler

    def fit(c, x, y):
        return make_pipeline(StandardScaler(), LogisticRegression(C=c, max_iter=2000)).fit(x, y)

    x_fit, x_val, y_fit, y_val = train_test_split(train_features, train_labels, test_size=0.2,
                                                  stratify=train_labels, random_state=seed)
    scores = {c: fit(c, x_fit, y_fit).score(x_val, y_val) for c in PROBE_C}
    best = max(scores, key=scores.get)
    model = fit(best, train_features, train_labels)
    return {"accuracy": float(model.score(test_features, test_labels)), "C": best,
            "validation_accuracy": float(scores[best])}


def evaluate(objective, params, dataset: str, split: str = "test", seed: int = 0,
             data_dir: str | None = None) -> dict:
    """Zero-shot and linear-probe accuracy (and a raw-pixel probe for reference) on `split`,
    plus the attribute agreement, for a CLIP run on a digit dataset."""
    train_images, train_labels, _, _ = captions_lib.digit_captions(dataset, "train", seed=seed,
                                                                   data_dir=data_dir)
    images, labels, _, levels = captions_lib.digit_captions(dataset, split, seed=seed,
                                                            data_dir=data_dir)
    features = lambda x: objective.image_features(params, x)  # noqa: E731
    probe = linear_probe(_batched(features, train_images), train_labels,
                         _batched(features, images), labels, seed)
    pixels = linear_probe(train_images.reshape(len(train_images), -1), train_labels,
                          images.reshape(len(images), -1), labels, seed)
    return {"zero_shot_accuracy": zero_shot_accuracy(objective, params, images, labels),
            "linear_probe": probe, "pixel_linear_probe": pixels,
            "attributes": attribute_accuracy(objective, params, images, labels, levels),
            "num_test_images": len(images), "num_train_images": len(train_images),
            "prompts": class_prompts()[7]}


def evaluate_run(run, options) -> dict:
    """`evaluate` on the run's dataset and `eval.split`."""
    del options  # every test image, no sampling
    cfg = run.config
    t0 = time.perf_counter()
    metrics = evaluate(run.objective, run.params, cfg.data.name, cfg.eval.split, seed=cfg.seed,
                       data_dir=cfg.data.data_dir)
    metrics.update(step=int(run.state.step), seconds=time.perf_counter() - t0,
                   dataset=cfg.data.name, split=cfg.eval.split, loss=cfg.model.loss)
    return metrics
