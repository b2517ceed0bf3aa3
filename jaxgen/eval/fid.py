"""The field's yardsticks on images: FID (Heusel et al. 2017), KID (Binkowski et al. 2018),
Inception Score (Salimans et al. 2016) and precision/recall (Kynkaanniemi et al. 2019), all on
pytorch-fid's Inception-v3 (`jaxgen.models.inception`), so the figures are pytorch-fid's.

Images go in as they would be saved: samples in [-1, 1] are rounded to uint8 as a PNG holds
them, grey images are repeated to RGB (the convention of FID on MNIST), and the network resizes
them to 299x299. Featurisation is one jitted program per batch shape, the batch sharded over the
mesh; the 2048-d features are reduced on the devices to a batch mean and scatter and combined
on the host in float64 (`jaxgen.metrics.FeatureStatistics`), so 50,000 samples never sit in
memory. Up to `KEEP` features are kept for KID and precision/recall, and every sample's logits
for the Inception Score.

The weights are pytorch-fid's file, passed by path or found through $JAXGEN_INCEPTION_WEIGHTS
(`jaxgen.pretrained.inception`); without them, `eval` keeps the library's own MNIST feature
distance.
"""

import dataclasses
import math
import os
import time
from collections.abc import Iterable, Iterator
from pathlib import Path

import jax
import jax.numpy as jnp
import numpy as np
from flax import nnx
from tqdm import tqdm

from jaxgen import data, metrics, parallel, viz
from jaxgen.models.inception import FEATURES
from jaxgen.pretrained.inception import WEIGHTS_ENV, load_inception

KEEP = 10_000  # features kept for KID and precision/recall (their usual sample size)
KID_SUBSET = 1000  # Binkowski et al.'s subset size, when both sets hold that many


def configured() -> bool:
    """Whether the Inception weights are configured ($JAXGEN_INCEPTION_WEIGHTS is set)."""
    return bool(os.environ.get(WEIGHTS_ENV))


def as_uint8_rgb(images) -> np.ndarray:
    """uint8 [N, H, W, 3] of images given as uint8 or as floats in [-1, 1], with 1 or 3
    channels."""
    images = np.asarray(images)
    if images.ndim != 4 or images.shape[-1] not in (1, 3):
        raise ValueError(f"FID takes images [N, H, W, 1 or 3], got shape {list(images.shape)}")
    if images.dtype != np.uint8:
        if not np.issubdtype(images.dtype, np.floating):
            raise ValueError(f"FID takes uint8 images or floats in [-1, 1], got {images.dtype}")
        low, high = float(images.min()), float(images.max())
        if not (np.isfinite(low) and np.isfinite(high)) or low < -1.001 or high > 1.001:
            raise ValueError(f"FID takes float images in [-1, 1] (jaxgen's range), got values "
                             f"in [{low:.3g}, {high:.3g}]")
        images = viz.to_uint8(images)
    return np.repeat(images, 3, axis=-1) if images.shape[-1] == 1 else images


class Featurizer:
    """pytorch-fid's Inception-v3 as one jitted program per batch shape, the batch sharded over
    `mesh` (padded to a multiple of its size). `featurizer(images)` is (pool [N, 2048], logits
    [N, 1008]) as device arrays."""

    def __init__(self, model, mesh=None):
        self.mesh = mesh or parallel.make_mesh(1)
        graphdef, state = nnx.split(model)
        self.state = jax.device_put(state, parallel.replicated(self.mesh))
        self._apply = jax.jit(lambda state, x: nnx.merge(graphdef, state)(x))

    @classmethod
    def load(cls, path=None, *, mesh=None, dtype=jnp.float32) -> "Featurizer":
        """From pytorch-fid's weight file (`path`, else $JAXGEN_INCEPTION_WEIGHTS), checked."""
        mesh = mesh or parallel.make_mesh(1)
        return cls(load_inception(path, dtype=dtype, mesh=mesh), mesh)

    def __call__(self, images) -> tuple[jax.Array, jax.Array]:
        images = as_uint8_rgb(images)
        num, pad = len(images), -len(images) % self.mesh.size
        if pad:
            images = np.concatenate([images, np.zeros((pad, *images.shape[1:]), np.uint8)])
        pool, logits = self._apply(self.state, jax.device_put(
            images, parallel.batch_sharding(self.mesh)))
        return (pool, logits) if not pad else (pool[:num], logits[:num])


@dataclasses.dataclass(frozen=True)
class FeatureSet:
    """What the metrics need of one set of images: the features' streaming statistics, the
    first `KEEP` features (KID, precision/recall) and every logit row (Inception Score); a
    published statistics file has only `mu` and `sigma`."""

    mu: np.ndarray
    sigma: np.ndarray
    count: int | None
    features: np.ndarray | None = None
    logits: np.ndarray | None = None

    def save(self, path) -> Path:
        """pytorch-fid's layout (`mu`, `sigma`), plus `count` and the kept `features`."""
        path = Path(path)
        path.parent.mkdir(parents=True, exist_ok=True)
        extra = {} if self.features is None else {"features": self.features}
        np.savez(path, mu=self.mu, sigma=self.sigma, count=self.count, **extra)
        return path


def load_reference(path) -> FeatureSet:
    """A statistics file: pytorch-fid's (`mu`, `sigma`) or jaxgen's (also `count` and kept
    `features`); a file of another layout is a ValueError naming it."""
    mu, sigma = metrics.load_statistics(path)
    with np.load(path) as stored:
        count = int(stored["count"]) if "count" in stored.files else None
        features = stored["features"] if "features" in stored.files else None
    if features is not None and (features.ndim != 2 or features.shape[1] != len(mu)):
        raise ValueError(f"{path}: features of shape {list(features.shape)} do not match mu "
                         f"[{len(mu)}]")
    return FeatureSet(mu, sigma, count, features)


def featurize(featurizer: Featurizer, batches: Iterable, *, total: int | None = None,
              keep: int = KEEP, desc: str = "features") -> FeatureSet:
    """The `FeatureSet` of image batches (each [B, H, W, C], uint8 or in [-1, 1]), with a
    progress bar counting images."""
    statistics = metrics.FeatureStatistics.empty(FEATURES)
    kept, logits = [], []
    with tqdm(total=total, desc=desc, unit="img", dynamic_ncols=True) as bar:
        for images in batches:
            pool, batch_logits = featurizer(images)
            statistics = statistics.update(pool)
            room = keep - sum(len(k) for k in kept)
            if room > 0:
                kept.append(np.asarray(pool[:room]))
            logits.append(np.asarray(batch_logits))
            bar.update(len(images))
    if statistics.count < 2:
        raise ValueError(f"FID needs at least 2 images, got {statistics.count}")
    return FeatureSet(statistics.mu, statistics.sigma, statistics.count,
                      np.concatenate(kept), np.concatenate(logits))


def dataset_batches(name: str, split: str, *, batch: int, num: int | None = None,
                    seed: int = 0, data_dir=None) -> tuple[int, Iterator[np.ndarray]]:
    """(the number of images, an iterator of uint8 batches) of a dataset split, the first
    `num` images (all when None), read record by record."""
    _, source, transform = data.load(name, split, seed=seed, data_dir=data_dir)
    total = len(source) if num is None else min(num, len(source))

    def batches():
        for start in range(0, total, batch):
            records = [source[i] for i in range(start, min(start + batch, total))]
            if transform is not None:
                records = [transform(r) for r in records]
            yield viz.to_uint8(np.stack([r["image"] for r in records]))

    return total, batches()


def sample_batches(run, num: int, *, batch: int, seed: int = 0,
                   options=None) -> Iterator[np.ndarray]:
    """`num` samples of a run (the family's sharded `draw` with the `sample` options), a batch
    at a time; batch i draws from fold_in(PRNGKey(seed), i)."""
    from jaxgen.train.objectives import SampleOptions

    options = options or SampleOptions()
    for index in range(math.ceil(num / batch)):
        size = min(batch, num - index * batch)
        key = jax.random.fold_in(jax.random.PRNGKey(seed), index)
        images, _ = run.objective.draw(run.params, key, size, options, run.mesh)
        yield np.asarray(images)


def scores(samples: FeatureSet, reference: FeatureSet, *, seed: int = 0) -> dict:
    """FID of `samples` against `reference`; KID (mean, std) and precision/recall (k = 3) where
    both kept features; the Inception Score where `samples` has logits."""
    result = {"fid": metrics.frechet_distance(samples.mu, samples.sigma, reference.mu,
                                              reference.sigma),
              "num_samples": samples.count, "num_reference": reference.count}
    if samples.features is not None and reference.features is not None:
        subset = min(KID_SUBSET, len(samples.features), len(reference.features))
        kid, kid_std = metrics.kernel_inception_distance(
            reference.features, samples.features, jax.random.PRNGKey(seed),
            subset_size=subset)
        precision, recall = metrics.precision_recall(reference.features, samples.features)
        result.update(kid=kid, kid_std=kid_std, kid_subset=subset, precision=precision,
                      recall=recall, num_kept=int(min(len(samples.features),
                                                      len(reference.features))))
    if samples.logits is not None and len(samples.logits) >= 10:
        result["inception_score"], result["inception_score_std"] = metrics.inception_score(
            samples.logits)
    return result


def run_scores(run, featurizer: Featurizer, reference: FeatureSet, num: int, *,
               batch: int = 250, seed: int = 0, options=None) -> dict:
    """`scores` of `num` samples of a run against `reference`, with the sampling and
    featurisation time."""
    start = time.perf_counter()
    samples = featurize(featurizer, sample_batches(run, num, batch=batch, seed=seed,
                                                   options=options), total=num, desc="fid")
    return {**scores(samples, reference, seed=seed), "seconds": time.perf_counter() - start}


def split_reference(featurizer: Featurizer, config, split: str = "test", *,
                    batch: int = 250) -> FeatureSet:
    """The `FeatureSet` of a run's dataset split (what `eval` compares samples with)."""
    total, batches = dataset_batches(config.data.name, split, batch=batch, seed=config.seed,
                                     data_dir=config.data.data_dir)
    return featurize(featurizer, batches, total=total, desc=f"{split} features")


def evaluate_run(run, num: int, *, seed: int = 0, split: str = "test") -> dict:
    """`eval`'s Inception block: `run_scores` of `num` samples (the run's default sampling)
    against its dataset's `split`, with pytorch-fid's weights from $JAXGEN_INCEPTION_WEIGHTS."""
    featurizer = Featurizer.load(mesh=run.mesh)
    reference = split_reference(featurizer, run.config, split)
    return {**run_scores(run, featurizer, reference, num, seed=seed), "reference_split": split}
