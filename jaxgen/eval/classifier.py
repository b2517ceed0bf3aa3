"""The library's own small image classifier, trained on real data: it labels generated images
(class histograms, attribute vectors for GAN latents, guidance accuracy) and its penultimate
layer gives features for Frechet distances.

Trained once per (dataset, seed) and kept under `cache_dir` as an Orbax checkpoint, so every
score that uses it uses the same network.
"""

import itertools
import json
import math
import os
from pathlib import Path

import jax
import jax.numpy as jnp
import numpy as np
import optax
import orbax.checkpoint as ocp
from flax import nnx

from jaxgen import data

DEFAULT_CACHE = Path("runs") / "classifiers"  # JAXGEN_CLASSIFIER_DIR overrides it


class Classifier(nnx.Module):
    """An MLP on the flattened image: `hidden` ReLU layers (the last gives `features`) -> logits.

    An MLP rather than a convnet because it trains in seconds on a CPU and still recognises
    97% of held-out MNIST digits; what matters for scoring is that one fixed network is used.
    """

    def __init__(self, data_shape, num_classes, hidden=(512, 256), *, rngs: nnx.Rngs):
        widths = (math.prod(data_shape), *hidden)
        self.layers = nnx.List([nnx.Linear(a, b, rngs=rngs)
                                for a, b in itertools.pairwise(widths)])
        self.out = nnx.Linear(widths[-1], num_classes, rngs=rngs)

    def features(self, x: jax.Array) -> jax.Array:
        h = x.reshape(x.shape[0], -1)
        for layer in self.layers:
            h = jax.nn.relu(layer(h))
        return h

    def __call__(self, x: jax.Array) -> jax.Array:
        return self.out(self.features(x))


class TrainedClassifier:
    """A classifier's graphdef and parameters, with batched, jitted `logits`/`features`."""

    def __init__(self, graphdef, params, test_accuracy: float):
        self.graphdef, self.params, self.test_accuracy = graphdef, params, test_accuracy
        self._logits = jax.jit(lambda p, x: nnx.merge(graphdef, p)(x))
        self._features = jax.jit(lambda p, x: nnx.merge(graphdef, p).features(x))

    def _batched(self, fn, images, batch_size=500):
        images = np.asarray(images, np.float32)
        return np.concatenate([np.asarray(fn(self.params, images[i:i + batch_size]))
                               for i in range(0, len(images), batch_size)])

    def logits(self, images) -> np.ndarray:
        return self._batched(self._logits, images)

    def features(self, images) -> np.ndarray:
        return self._batched(self._features, images)

    def predict(self, images) -> tuple[np.ndarray, np.ndarray]:
        """(predicted class [N], its softmax probability [N])."""
        probs = jax.nn.softmax(self.logits(images), axis=-1)
        return np.asarray(jnp.argmax(probs, -1)), np.asarray(jnp.max(probs, -1))


def fit(images: np.ndarray, labels: np.ndarray, num_classes: int, key: jax.Array,
        steps: int = 2000, batch_size: int = 100, learning_rate: float = 1e-3):
    """(graphdef, params) of a classifier trained with Adam and cross-entropy; every step is one
    jitted pure update inside a `lax.scan` over pre-drawn batch indices."""
    init_key, data_key = jax.random.split(key)
    model = Classifier(images.shape[1:], num_classes, rngs=nnx.Rngs(init_key))
    graphdef, params = nnx.split(model, nnx.Param)  # exhaustive: an MLP of parameters
    params = params.to_pure_dict()
    tx = optax.adam(learning_rate)
    images, labels = jnp.asarray(images), jnp.asarray(labels)

    def loss(p, x, y):
        logits = nnx.merge(graphdef, p)(x)
        return optax.softmax_cross_entropy_with_integer_labels(logits, y).mean()

    def step(carry, index):
        p, opt_state = carry
        grads = jax.grad(loss)(p, images[index], labels[index])
        updates, opt_state = tx.update(grads, opt_state, p)
        return (optax.apply_updates(p, updates), opt_state), None

    indices = jax.random.randint(data_key, (steps, batch_size), 0, len(images))
    (params, _), _ = jax.jit(lambda p, o: jax.lax.scan(step, (p, o), indices))(
        params, tx.init(params))
    return graphdef, params


def load_or_train(dataset: str, seed: int = 0, cache_dir: str | Path | None = None,
                  data_dir: str | None = None, steps: int = 2000) -> TrainedClassifier:
    """The classifier of `dataset`'s training split, trained on first use (`steps` Adam steps)
    and cached in `cache_dir` (default: $JAXGEN_CLASSIFIER_DIR, else runs/classifiers)."""
    cache_dir = cache_dir or os.environ.get("JAXGEN_CLASSIFIER_DIR") or DEFAULT_CACHE
    info, images, labels = data.load_arrays(dataset, "train", seed=seed, data_dir=data_dir)
    if len(info.shape) != 3:
        raise ValueError(f"the classifier takes images; {dataset} holds points")
    key = jax.random.PRNGKey(seed)
    path = Path(cache_dir).resolve() / f"{dataset.replace(':', '_')}_seed{seed}"
    graphdef, abstract = nnx.split(
        nnx.eval_shape(lambda: Classifier(info.shape, info.num_classes, rngs=nnx.Rngs(0))),
        nnx.Param)
    abstract = abstract.to_pure_dict()
    meta = path / "accuracy.json"
    if meta.exists():
        params = ocp.StandardCheckpointer().restore(path / "params", abstract)
        return TrainedClassifier(graphdef, params, json.loads(meta.read_text())["test_accuracy"])
    graphdef, params = fit(images, labels, info.num_classes, key, steps=steps)
    classifier = TrainedClassifier(graphdef, params, 0.0)
    _, test_images, test_labels = data.load_arrays(dataset, "test", seed=seed, data_dir=data_dir)
    classifier.test_accuracy = float(np.mean(classifier.predict(test_images)[0] == test_labels))
    checkpointer = ocp.StandardCheckpointer()
    checkpointer.save(path / "params", params, force=True)
    checkpointer.wait_until_finished()
    meta.write_text(json.dumps({"test_accuracy": classifier.test_accuracy,
                                "num_test": len(test_labels), "steps": steps}))
    return classifier
