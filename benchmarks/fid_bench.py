"""FID's cost on a device (`python -m benchmarks fid`): pytorch-fid's Inception-v3 featurising
uint8 images, the streaming statistics, the Frechet distance, and from these what a whole FID
of `num` samples costs.

Featurisation is one jitted program over a uint8 batch [B, S, S, 3] split over the devices'
batch axis: the bilinear resize to 299 x 299 and the network, pool features [B, 2048] and
logits [B, 1008] out, with random weights replicated (nothing is downloaded; the speed does not
depend on the values). Its FLOPs are XLA's count of that program (resize included). Float32
convolutions run at full float32 precision, as `FIDInceptionV3` does by default so that its
features match pytorch-fid's; on a GPU the float32 peaks MFU is read against (datasheet and
measured matmul) are TF32's, so fp32 MFU there reads low by design.

`FeatureStatistics.update` is timed on a [B, 2048] batch sharded as the features come out
(the batch's moments on the devices, the float64 merge on the host); `frechet_distance` at
D = 2048 on the host in float64, as FID computes it against precomputed reference statistics.
The estimate adds the measured rows: num / (images/s) + ceil(num / B) updates + one distance,
one after the other (a loop that overlapped the host's merge with the next batch's features
would take less).
"""

import math

import jax
import jax.numpy as jnp
import numpy as np
from flax import nnx

from benchmarks import harness
from benchmarks.jaxgen_bench import DTYPES, device_mesh, parameter_count
from jaxgen import metrics, parallel
from jaxgen.models.inception import FEATURES, FIDInceptionV3

KID_SUBSETS, KID_SUBSET_SIZE = 100, 1000  # torchmetrics' defaults, and kernel_inception_distance's
NEIGHBOURS = 3  # precision/recall's k (Kynkaanniemi et al. 2019)


def check_request(batch: int, size: int, num: int, metric_samples: int, devices: int | None):
    """The mesh of the first `devices` devices, once every argument is known to be valid: one
    ValueError naming the flag otherwise, before anything is compiled."""
    for flag, value in (("--batch", batch), ("--size", size), ("--num", num)):
        if value < 1:
            raise ValueError(f"{flag} must be a positive integer, got {value}")
    if metric_samples and metric_samples < KID_SUBSET_SIZE:
        raise ValueError(f"--metric-samples {metric_samples}: KID at its defaults draws "
                         f"subsets of {KID_SUBSET_SIZE} samples without replacement; use 0 (skip "
                         f"KID and precision/recall) or at least {KID_SUBSET_SIZE}")
    mesh = device_mesh(devices)
    parallel.check_batch_size(batch, mesh)
    return mesh


def _host(result):
    return result  # numpy results: nothing left running to wait for


def _random_weights(abstract: dict) -> dict:
    """Values for the network's variables as nnx's initialisers give them (kernels of variance
    1 / fan-in, BatchNorm at mean 0, variance 1, scale 1, bias 0), drawn on the host: placed on
    the devices as `load_inception` places the weight file's. Drawn under jit instead, they
    would cost a compile of ~35 s on XLA:CPU (~100 truncated-normal draws) for nothing."""
    rng = np.random.default_rng(0)

    def fill(path, leaf):
        name = path[-1].key
        if name == "kernel":
            fan_in = math.prod(leaf.shape[:-1])
            return (rng.standard_normal(leaf.shape) / math.sqrt(fan_in)).astype(leaf.dtype)
        return np.full(leaf.shape, name in ("scale", "var"), leaf.dtype)

    return jax.tree_util.tree_map_with_path(fill, abstract)


def bench_features(mesh, batch: int, size: int, dtype: str = "fp32", repeats: int = 5) -> dict:
    """Images/s of featurising uint8 images [batch, size, size, 3] (resize and network) in one
    jitted program, the batch split over `mesh`, the weights replicated."""
    compute = jnp.dtype(DTYPES[dtype])

    def build():
        return FIDInceptionV3(dtype=compute, rngs=nnx.Rngs(0))

    model = nnx.eval_shape(build)
    graphdef, abstract = nnx.graphdef(model), nnx.state(model).to_pure_dict()
    state = jax.device_put(_random_weights(abstract), parallel.replicated(mesh))
    data = parallel.batch_sharding(mesh)
    shape = (batch, size, size, 3)
    images = jax.device_put(np.random.default_rng(0).integers(0, 256, shape, np.uint8), data)

    def featurise(state, images):
        return nnx.merge(graphdef, state)(images)

    compiled, compile_s = harness.compile_timed(jax.jit(featurise, out_shardings=data), state,
                                                images)
    timing = harness.timed(lambda: compiled(state, images), repeats)
    flops = harness.flops(featurise, abstract, jax.ShapeDtypeStruct(shape, jnp.uint8))
    peak = harness.device_peak_bytes()
    return {"task": "fid-features", "model": "inception-v3", "dtype": dtype, "height": size,
            "batch": batch, "devices": mesh.size, **timing,
            "compile_seconds": compile_s,
            "images_per_second": batch / timing["seconds_median"],
            "flops_per_call": flops, "flops_per_image": flops / batch,
            "compiled_bytes": harness.compiled_bytes(compiled),
            **({"device_peak_bytes": peak} if peak else {}),
            "parameters": parameter_count(nnx.state(model, nnx.Param))}


def bench_update(mesh, batch: int, repeats: int = 5) -> dict:
    """Seconds of one `FeatureStatistics.update` by a [batch, 2048] batch of features sharded
    over `mesh`, into statistics that already hold a batch (so the merge runs in full)."""
    features = np.random.default_rng(1).standard_normal((batch, FEATURES), np.float32)
    features = jax.device_put(features, parallel.batch_sharding(mesh))
    start = metrics.FeatureStatistics.from_features(features)  # compiles the batch's moments
    timing = harness.timed(lambda: start.update(features), repeats, wait=_host)
    return {"task": "fid-update", "batch": batch, "devices": mesh.size, "dim": FEATURES,
            **timing, "images_per_second": batch / timing["seconds_median"]}


def _gaussian(rng, dim: int):
    root = rng.standard_normal((dim, dim))
    return rng.standard_normal(dim), root @ root.T / dim  # full-rank covariance


def bench_distance(repeats: int = 5, dim: int = FEATURES) -> dict:
    """Seconds of `frechet_distance` between two D-dimensional Gaussians (host, float64)."""
    rng = np.random.default_rng(2)
    (mu1, sigma1), (mu2, sigma2) = _gaussian(rng, dim), _gaussian(rng, dim)
    timing = harness.timed(lambda: metrics.frechet_distance(mu1, sigma1, mu2, sigma2), repeats,
                           wait=_host)
    return {"task": "fid-distance", "dim": dim, **timing}


def estimate(features: dict, update: dict, distance: dict, num: int) -> dict:
    """A `num`-sample FID's cost from measured rows: featurising num images at the measured
    images/s, one update per batch of the featurised batch size, one distance."""
    if update["batch"] != features["batch"]:
        raise ValueError(f"the update row's batch {update['batch']} is not the featurised batch "
                         f"{features['batch']}")
    batches = math.ceil(num / features["batch"])
    parts = {"featurise_seconds": num / features["images_per_second"],
             "statistics_seconds": batches * update["seconds_median"],
             "distance_seconds": distance["seconds_median"]}
    return {"task": "fid-estimate", "derived": True, "num": num, "batches": batches,
            **{k: features[k] for k in ("model", "dtype", "height", "batch", "devices")},
            **parts, "estimate_seconds": sum(parts.values())}


def _random_features(samples: int):
    rng = np.random.default_rng(3)
    return (jnp.asarray(rng.standard_normal((samples, FEATURES), np.float32)),
            jnp.asarray(rng.standard_normal((samples, FEATURES), np.float32) + 0.1))


def bench_kid(samples: int, repeats: int = 5, subsets: int = KID_SUBSETS,
              subset_size: int = KID_SUBSET_SIZE) -> dict:
    """Seconds of `kernel_inception_distance` between two sets of [samples, 2048] features."""
    real, fake = _random_features(samples)
    key = jax.random.PRNGKey(0)
    timing = harness.timed(lambda: metrics.kernel_inception_distance(
        real, fake, key, subsets=subsets, subset_size=subset_size), repeats, wait=_host)
    return {"task": "kid", "samples": samples, "dim": FEATURES, "subsets": subsets,
            "subset_size": subset_size, **timing}


def bench_precision_recall(samples: int, repeats: int = 5, k: int = NEIGHBOURS) -> dict:
    """Seconds of `precision_recall` between two sets of [samples, 2048] features."""
    real, fake = _random_features(samples)
    timing = harness.timed(lambda: metrics.precision_recall(real, fake, k=k), repeats,
                           wait=_host)
    return {"task": "precision-recall", "samples": samples, "dim": FEATURES, "k": k, **timing}


def fid_rows(batch: int, size: int, dtype: str = "fp32", devices: int | None = None,
             repeats: int = 5, num: int = 50_000, metric_samples: int = 0) -> list[dict]:
    """The rows of one `python -m benchmarks fid`: featurisation, update, distance, the
    estimate derived from them, and (with `metric_samples`) KID and precision/recall."""
    mesh = check_request(batch, size, num, metric_samples, devices)
    features = bench_features(mesh, batch, size, dtype, repeats)
    update = bench_update(mesh, batch, repeats)
    distance = bench_distance(repeats)
    rows = [features, update, distance, estimate(features, update, distance, num)]
    if metric_samples:
        rows += [bench_kid(metric_samples, repeats),
                 bench_precision_recall(metric_samples, repeats)]
    return [{"framework": "jaxgen", **row} for row in rows]
