"""jaxgen.metrics against closed forms, float64 references of the published formulas, and (where
torch is installed) pytorch-fid and torchmetrics themselves."""

import importlib

import chex
import jax
import numpy as np
import pytest
from jax.sharding import NamedSharding
from jax.sharding import PartitionSpec as P

from jaxgen import eval as jaxgen_eval
from jaxgen import metrics


def _reference(module: str):
    """`module`, or skip. Like pytest.importorskip, but also skipping when the module is
    installed and fails to import: a torchvision built for another torch raises RuntimeError."""
    try:
        return importlib.import_module(module)
    except Exception as error:  # noqa: BLE001 - any import failure means no reference here
        pytest.skip(f"{module} is not importable: {type(error).__name__}: {error}")


def _inception_like(rng, n, d, shift=0.0):
    """Non-negative features with a mean offset, like Inception's pooled ReLU activations."""
    return np.maximum(rng.normal(0.3 + shift, 0.4, (n, d)), 0.0).astype(np.float32)


def _random_covariance(rng, d):
    a = rng.normal(size=(d, d))
    return a @ a.T / d + 0.05 * np.eye(d)


# Frechet distance ------------------------------------------------------------------------------


def test_frechet_distance_of_diagonal_gaussians_closed_form():
    rng = np.random.default_rng(0)
    mu1, mu2 = rng.normal(size=16), rng.normal(size=16)
    s1, s2 = rng.uniform(0.1, 3.0, 16), rng.uniform(0.1, 3.0, 16)
    expected = np.sum((mu1 - mu2) ** 2) + np.sum(s1 + s2 - 2.0 * np.sqrt(s1 * s2))
    np.testing.assert_allclose(metrics.frechet_distance(mu1, np.diag(s1), mu2, np.diag(s2)),
                               expected, rtol=1e-12)


def test_frechet_distance_of_a_set_with_itself_is_zero():
    x = np.random.default_rng(1).normal(size=(300, 24))
    stats = metrics.FeatureStatistics.from_features(x)
    scale = np.trace(np.cov(x, rowvar=False))
    assert abs(metrics.frechet_distance_from_statistics(stats, stats)) < 1e-10 * scale
    assert abs(jaxgen_eval.frechet_distance(x, x)) < 1e-10 * scale


def test_frechet_distance_matches_scipy_sqrtm_on_non_commuting_covariances():
    scipy_linalg = pytest.importorskip("scipy.linalg")
    rng = np.random.default_rng(2)
    mu1, mu2 = rng.normal(size=48), rng.normal(size=48)
    s1, s2 = _random_covariance(rng, 48), _random_covariance(rng, 48)
    assert not np.allclose(s1 @ s2, s2 @ s1)
    # pytorch-fid's formula: tr of scipy's (non-symmetric) sqrtm of the product.
    root = scipy_linalg.sqrtm(s1 @ s2).real
    expected = np.sum((mu1 - mu2) ** 2) + np.trace(s1) + np.trace(s2) - 2.0 * np.trace(root)
    np.testing.assert_allclose(metrics.frechet_distance(mu1, s1, mu2, s2), expected, rtol=1e-6)


def test_frechet_distance_matches_pytorch_fid():
    fid_score = _reference("pytorch_fid.fid_score")
    rng = np.random.default_rng(3)
    real, fake = _inception_like(rng, 500, 64), _inception_like(rng, 400, 64, shift=0.05)
    mu1, s1 = real.mean(0), np.cov(real, rowvar=False)
    mu2, s2 = fake.mean(0), np.cov(fake, rowvar=False)
    expected = fid_score.calculate_frechet_distance(mu1, s1, mu2, s2)
    np.testing.assert_allclose(metrics.frechet_distance(mu1, s1, mu2, s2), expected, rtol=1e-6)


def test_eval_frechet_distance_of_one_dimensional_samples():
    # In 1-D, FD = (mu_x - mu_y)^2 + (s_x - s_y)^2; y = 2x + 1 has mu_y = 2 mu_x + 1, s_y = 2 s_x.
    x = np.random.default_rng(4).normal(size=(200, 1))
    mu, s = x.mean(), x.std(ddof=1)
    np.testing.assert_allclose(jaxgen_eval.frechet_distance(x, 2.0 * x + 1.0),
                               (mu + 1.0) ** 2 + s**2, rtol=1e-10)


# Streaming statistics --------------------------------------------------------------------------


def _batches(x, sizes):
    edges = np.cumsum([0, *sizes])
    assert edges[-1] == len(x)
    return [x[a:b] for a, b in zip(edges[:-1], edges[1:], strict=True)]


def test_streaming_statistics_equal_one_shot_in_float64():
    x = 1e3 + np.random.default_rng(5).normal(size=(241, 12)) * np.arange(1, 13)
    with jax.enable_x64(True):
        stats = metrics.FeatureStatistics.empty(12)
        for batch in _batches(x, [1, 7, 100, 0, 33, 100]):
            stats = stats.update(batch)
    assert stats.count == 241
    np.testing.assert_allclose(stats.mu, np.mean(x, axis=0), rtol=1e-10)
    np.testing.assert_allclose(stats.sigma, np.cov(x, rowvar=False), rtol=1e-10, atol=1e-10)


def test_streaming_statistics_in_float32_stay_accurate_far_from_the_origin():
    # An offset of 1e3 on unit-variance features: float32's E[x x^T] - mu mu^T would lose
    # six of its seven digits; centred per-batch scatters combined in float64 do not.
    x = (1e3 + np.random.default_rng(6).normal(size=(1000, 8))).astype(np.float32)
    stats = metrics.FeatureStatistics.empty(8)
    for batch in np.split(x, 10):
        stats = stats.update(batch)
    x64 = x.astype(np.float64)
    np.testing.assert_allclose(stats.mu, x64.mean(0), rtol=1e-7)
    np.testing.assert_allclose(stats.sigma, np.cov(x64, rowvar=False), atol=1e-4)


def test_merge_is_order_independent():
    rng = np.random.default_rng(7)
    a, b, c = (metrics.FeatureStatistics.from_features(rng.normal(loc, 1.0, (n, 5)))
               for loc, n in ((0.0, 20), (3.0, 50), (-1.0, 9)))
    for left, right in ((a.merge(b), b.merge(a)),
                        (a.merge(b).merge(c), c.merge(a.merge(b))),
                        (a.merge(b.merge(c)), b.merge(c).merge(a))):
        assert left.count == right.count
        np.testing.assert_allclose(left.mean, right.mean, rtol=1e-12, atol=1e-14)
        np.testing.assert_allclose(left.scatter, right.scatter, rtol=1e-12, atol=1e-12)


class BatchMomentsTest(chex.TestCase):
    @chex.variants(with_jit=True, without_jit=True)
    def test_moments_of_a_batch(self):
        x = np.random.default_rng(8).normal(size=(64, 6)).astype(np.float32)
        count, mean, scatter = self.variant(metrics.batch_moments)(x)
        x64 = x.astype(np.float64)
        assert int(count) == 64
        np.testing.assert_allclose(mean, x64.mean(0), rtol=1e-5, atol=1e-6)
        np.testing.assert_allclose(scatter, 63 * np.cov(x64, rowvar=False), rtol=1e-5,
                                   atol=1e-4)

    def test_sharded_batch_gives_the_unsharded_moments(self):
        assert jax.device_count() == 8
        mesh = jax.make_mesh((8,), ("data",), axis_types=(jax.sharding.AxisType.Auto,))
        x = np.random.default_rng(9).normal(2.0, 1.0, (64, 6)).astype(np.float32)
        sharded = jax.device_put(x, NamedSharding(mesh, P("data")))
        assert len(sharded.sharding.device_set) == 8
        moments = jax.jit(metrics.batch_moments)
        for got, want in zip(moments(sharded), moments(x), strict=True):
            np.testing.assert_allclose(got, want, rtol=1e-5, atol=1e-5)
        stats = metrics.FeatureStatistics.from_features(sharded)
        np.testing.assert_allclose(stats.sigma, np.cov(x.astype(np.float64), rowvar=False),
                                   rtol=1e-5, atol=1e-5)


def test_statistics_round_trip_in_pytorch_fid_layout(tmp_path):
    x = np.random.default_rng(10).normal(size=(50, 4))
    stats = metrics.FeatureStatistics.from_features(x)
    stats.save(tmp_path / "stats.npz")
    with np.load(tmp_path / "stats.npz") as f:  # as pytorch-fid's compute_statistics_of_path
        mu, sigma = f["mu"][:], f["sigma"][:]
    np.testing.assert_array_equal(mu, stats.mu)
    np.testing.assert_array_equal(sigma, stats.sigma)
    loaded = metrics.FeatureStatistics.load(tmp_path / "stats.npz")
    assert loaded.count == 50
    np.testing.assert_allclose(loaded.scatter, stats.scatter, rtol=1e-14)
    more = x[:10] + 1.0  # a loaded accumulator keeps accumulating
    np.testing.assert_allclose(loaded.update(more).sigma, np.cov(np.concatenate([x, more]),
                                                                 rowvar=False), rtol=1e-6)

    # A published file: pytorch-fid's own writer, only mu and sigma.
    np.savez_compressed(tmp_path / "published.npz", mu=stats.mu, sigma=stats.sigma)
    mu, sigma = metrics.load_statistics(tmp_path / "published.npz")
    np.testing.assert_array_equal(sigma, stats.sigma)
    assert metrics.frechet_distance_from_statistics(str(tmp_path / "published.npz"),
                                                    stats) == pytest.approx(0.0, abs=1e-10)
    with pytest.raises(ValueError, match="no 'count'"):
        metrics.FeatureStatistics.load(tmp_path / "published.npz")


@pytest.mark.parametrize("arrays, message", [
    ({"mean": np.zeros(3), "sigma": np.eye(3)}, r"has keys \['mean', 'sigma'\]; expected"),
    ({"mu": np.zeros(3), "sigma": np.eye(4)}, r"mu of shape \(3,\) and sigma of shape \(4, 4\)"),
    ({"mu": np.zeros(3), "sigma": np.zeros((3, 2))}, r"sigma of shape \(3, 2\)"),
    ({"mu": np.zeros((3, 1)), "sigma": np.eye(3)}, r"mu of shape \(3, 1\)"),
    ({"mu": np.zeros(2), "sigma": np.full((2, 2), np.nan)}, "NaN or inf"),
])
def test_loading_the_wrong_layout_names_the_file_and_the_layout(tmp_path, arrays, message):
    path = tmp_path / "bad.npz"
    np.savez(path, **arrays)
    with pytest.raises(ValueError, match=message) as error:
        metrics.load_statistics(path)
    assert str(path) in str(error.value) and "\n" not in str(error.value)


def test_loading_a_single_array_file(tmp_path):
    np.save(tmp_path / "mu.npy", np.zeros(3))
    with pytest.raises(ValueError, match=r"single array of shape \(3,\); expected an .npz"):
        metrics.load_statistics(tmp_path / "mu.npy")


def test_fewer_samples_than_dimensions_warns():
    stats = metrics.FeatureStatistics.from_features(np.random.default_rng(11).normal(size=(5, 8)))
    with pytest.warns(UserWarning, match=r"FID from N < D samples is biased: 5 samples of 8-dim"):
        stats.sigma  # noqa: B018
    with pytest.raises(ValueError, match="at least 2 samples"):
        metrics.FeatureStatistics.from_features(np.ones((1, 8))).sigma  # noqa: B018


# KID -------------------------------------------------------------------------------------------


def _torchmetrics_poly_mmd(f_real, f_fake, degree=3, gamma=None, coef=1.0):
    """torchmetrics' poly_mmd (maximum_mean_discrepancy of poly_kernel) in numpy float64."""
    f_real, f_fake = np.asarray(f_real, np.float64), np.asarray(f_fake, np.float64)

    def poly_kernel(f1, f2):
        return (f1 @ f2.T * (1.0 / f1.shape[1] if gamma is None else gamma) + coef) ** degree

    k_xx, k_xy, k_yy = (poly_kernel(f_real, f_real), poly_kernel(f_real, f_fake),
                        poly_kernel(f_fake, f_fake))
    m = k_xx.shape[0]
    kt_xx_sum = (k_xx.sum(axis=-1) - np.diag(k_xx)).sum()
    kt_yy_sum = (k_yy.sum(axis=-1) - np.diag(k_yy)).sum()
    return (kt_xx_sum + kt_yy_sum) / (m * (m - 1)) - 2.0 * k_xy.sum(axis=0).sum() / m**2


def test_polynomial_mmd_matches_float64_reference():
    rng = np.random.default_rng(12)
    real, fake = _inception_like(rng, 300, 64), _inception_like(rng, 300, 64, shift=0.05)
    expected = _torchmetrics_poly_mmd(real, fake)
    np.testing.assert_allclose(metrics.polynomial_mmd(real, fake), expected, rtol=1e-5)
    np.testing.assert_allclose(metrics.polynomial_mmd(real, fake, degree=2, gamma=0.1, coef=0.5),
                               _torchmetrics_poly_mmd(real, fake, 2, 0.1, 0.5), rtol=1e-5)
    with jax.enable_x64(True):
        exact = metrics.polynomial_mmd(real.astype(np.float64), fake.astype(np.float64))
    np.testing.assert_allclose(exact, expected, rtol=1e-10)


def test_kid_of_whole_sets_is_their_mmd():
    # subset_size = N: every subset is a permutation of the whole set, so each one's estimate
    # is the full-set MMD and the spread is 0.
    rng = np.random.default_rng(13)
    real, fake = _inception_like(rng, 200, 32), _inception_like(rng, 200, 32, shift=0.1)
    mean, std = metrics.kernel_inception_distance(real, fake, jax.random.key(0), subsets=3,
                                                  subset_size=200)
    np.testing.assert_allclose(mean, _torchmetrics_poly_mmd(real, fake), rtol=1e-5)
    assert std < 1e-6 * mean


def test_kid_separates_identical_from_shifted_distributions():
    rng = np.random.default_rng(14)
    real, same, shifted = (_inception_like(rng, 400, 32), _inception_like(rng, 400, 32),
                           _inception_like(rng, 400, 32, shift=0.1))
    key = jax.random.key(1)
    mean, std = metrics.kernel_inception_distance(real, same, key, subsets=20, subset_size=100)
    assert abs(mean) < std
    far, far_std = metrics.kernel_inception_distance(real, shifted, key, subsets=20,
                                                     subset_size=100)
    assert far > 4 * far_std and far > 10 * std
    # The key draws the subsets: the same key repeats them, another draws others.
    assert metrics.kernel_inception_distance(real, same, key, subsets=20,
                                             subset_size=100) == (mean, std)
    other = metrics.kernel_inception_distance(real, same, jax.random.key(2), subsets=20,
                                              subset_size=100)
    assert other != (mean, std)


def test_kid_subset_larger_than_a_set_is_an_error():
    real, fake = np.ones((50, 4)), np.ones((30, 4))
    with pytest.raises(ValueError, match=r"subset_size=40 is larger than the 30 fake samples.*"
                                         r"subset_size <= 30"):
        metrics.kernel_inception_distance(real, fake, jax.random.key(0), subset_size=40)


def test_kid_matches_torchmetrics():
    torch = _reference("torch")
    kid_module = _reference("torchmetrics.image.kid")
    rng = np.random.default_rng(15)
    real, fake = _inception_like(rng, 200, 32), _inception_like(rng, 200, 32, shift=0.1)
    np.testing.assert_allclose(metrics.polynomial_mmd(real, fake),
                               float(kid_module.poly_mmd(torch.from_numpy(real.astype(np.float64)),
                                                         torch.from_numpy(fake.astype(np.float64)))),
                               rtol=1e-5)
    kid = kid_module.KernelInceptionDistance(feature=torch.nn.Identity(), subsets=3,
                                             subset_size=200)
    kid.update(torch.from_numpy(real), real=True)
    kid.update(torch.from_numpy(fake), real=False)
    expected_mean, expected_std = (float(v) for v in kid.compute())
    mean, std = metrics.kernel_inception_distance(real, fake, jax.random.key(0), subsets=3,
                                                  subset_size=200)
    np.testing.assert_allclose(mean, expected_mean, rtol=1e-5)
    assert std < 1e-6 * mean and expected_std < 1e-4 * expected_mean  # theirs: float32 sums


# Inception Score -------------------------------------------------------------------------------


def test_inception_score_of_uniform_predictions_is_one():
    mean, std = metrics.inception_score(np.zeros((100, 7)))
    assert mean == pytest.approx(1.0, abs=1e-12) and std == pytest.approx(0.0, abs=1e-12)


def test_inception_score_of_confident_evenly_spread_predictions_is_the_class_count():
    classes = 8
    labels = np.arange(10 * 4 * classes) % classes  # every split holds each class 4 times
    logits = 50.0 * np.eye(classes)[labels]
    mean, std = metrics.inception_score(logits, splits=10)
    assert mean == pytest.approx(classes, rel=1e-12) and std == pytest.approx(0.0, abs=1e-9)
    # One split scores the whole set, so the permutation a key draws cannot change it.
    single, _ = metrics.inception_score(logits, splits=1, key=jax.random.key(0))
    assert single == pytest.approx(classes, rel=1e-12)


@pytest.mark.parametrize("num", [200, 203])  # 203: torch.chunk's 21-row chunks, the last of 14
def test_inception_score_matches_torchmetrics(num):
    torch = _reference("torch")
    inception = _reference("torchmetrics.image.inception")
    logits = np.random.default_rng(16).normal(0.0, 3.0, (num, 12)).astype(np.float32)
    metric = inception.InceptionScore(feature=torch.nn.Identity(), splits=10)
    metric.update(torch.from_numpy(logits))
    torch.manual_seed(0)
    expected = [float(v) for v in metric.compute()]
    torch.manual_seed(0)
    permutation = torch.randperm(num).numpy()  # the permutation compute() drew
    np.testing.assert_allclose(metrics.inception_score(logits[permutation], splits=10),
                               expected, rtol=1e-5)


# Precision and recall --------------------------------------------------------------------------


def _numpy_precision_recall(real, fake, k):
    def squared_distances(a, b):
        return np.sum((a[:, None, :] - b[None, :, :]) ** 2, axis=-1)

    real_radii = np.sort(squared_distances(real, real), axis=1)[:, k]
    fake_radii = np.sort(squared_distances(fake, fake), axis=1)[:, k]
    precision = np.mean(np.any(squared_distances(fake, real) <= real_radii[None], axis=1))
    recall = np.mean(np.any(squared_distances(real, fake) <= fake_radii[None], axis=1))
    return precision, recall


def test_precision_recall_by_hand():
    # k = 1 on a line. Real radii: 0->1, 1->1, 2->1, 4->2, 10->6. Fake radii: 0.5->2.5,
    # 3.5->0.4, 3.9->0.4, -2->2.5. Inside the real manifold: 0.5 (around 0), 3.5 and 3.9
    # (around 4), not -2. Inside the fake one: 0, 1, 2 (around 0.5), 4 (around 3.9), not 10.
    real = np.array([[0.0], [1.0], [2.0], [4.0], [10.0]])
    fake = np.array([[0.5], [3.5], [3.9], [-2.0]])
    assert metrics.precision_recall(real, fake, k=1) == pytest.approx((3 / 4, 4 / 5))


def test_precision_recall_of_identical_and_of_far_apart_sets():
    rng = np.random.default_rng(17)
    real = rng.normal(size=(200, 16))
    assert metrics.precision_recall(real, real) == (1.0, 1.0)
    assert metrics.precision_recall(real, rng.normal(100.0, 1.0, (150, 16))) == (0.0, 0.0)


def test_precision_recall_in_chunks_match_brute_force():
    # Small integer features: float32 distances are exact, so ties resolve as in numpy.
    rng = np.random.default_rng(18)
    real, fake = rng.integers(0, 6, (90, 4)), rng.integers(1, 7, (70, 4))
    expected = _numpy_precision_recall(real, fake, k=3)
    assert 0.0 < expected[0] < 1.0 and 0.0 < expected[1] < 1.0
    assert metrics.precision_recall(real, fake, row_chunk=16) == pytest.approx(expected)


# Bad input -------------------------------------------------------------------------------------

FEATURE_METRICS = {
    "statistics": lambda a, b: metrics.FeatureStatistics.from_features(a).update(b),
    "kid": lambda a, b: metrics.kernel_inception_distance(a, b, jax.random.key(0), subsets=1,
                                                          subset_size=2),
    "mmd": lambda a, b: metrics.polynomial_mmd(a, b),
    "precision_recall": lambda a, b: metrics.precision_recall(a, b, k=1),
}
GOOD = np.ones((4, 3))


@pytest.mark.parametrize("name", sorted(FEATURE_METRICS))
@pytest.mark.parametrize("real, fake, message", [
    (np.ones((4, 3, 2)), GOOD, r"shape \[N, D\], got shape \(4, 3, 2\)"),
    (GOOD, np.ones(3), r"shape \[N, D\], got shape \(3,\)"),
    (GOOD, np.ones((4, 5)), r"feature dimensions differ \(.*: 3, .*: 5\)"),
    (np.where(np.eye(4, 3) > 0, np.nan, 1.0), GOOD, "NaN or inf"),
    (GOOD, np.where(np.eye(4, 3) > 0, np.inf, 1.0), "NaN or inf"),
])
def test_bad_features_get_one_clear_error(name, real, fake, message):
    with pytest.raises(ValueError, match=message):
        FEATURE_METRICS[name](real, fake)


@pytest.mark.parametrize("args, message", [
    ((np.zeros(3), np.eye(3), np.zeros(4), np.eye(4)), "3 dimensions and the second 4"),
    ((np.zeros(3), np.ones((3, 2)), np.zeros(3), np.eye(3)), r"sigma1 must be .* \[D, D\]"),
    ((np.zeros((3, 1)), np.eye(3), np.zeros(3), np.eye(3)), r"mu1 must be a mean of shape \[D\]"),
    ((np.zeros(3), np.eye(3), np.full(3, np.nan), np.eye(3)), "NaN or inf"),
])
def test_bad_gaussians_get_one_clear_error(args, message):
    with pytest.raises(ValueError, match=message):
        metrics.frechet_distance(*args)


@pytest.mark.parametrize("logits, splits, message", [
    (np.ones((20, 3, 1)), 10, r"shape \[N, C\]"),
    (np.full((20, 3), np.inf), 10, "NaN or inf"),
    (np.ones((5, 3)), 10, "splits must be an integer between 1 and the number of samples"),
])
def test_bad_logits_get_one_clear_error(logits, splits, message):
    with pytest.raises(ValueError, match=message):
        metrics.inception_score(logits, splits)


def test_clip_score_closed_forms():
    """100 * max(cos, 0) per pair, averaged: aligned pairs score 100, orthogonal 0, opposite 0
    (clamped), a 60-degree pair 50; the norms do not matter."""
    from jaxgen.metrics import clip_score

    e = np.eye(4, dtype=np.float32)
    assert clip_score(3 * e, e) == pytest.approx(100.0)
    assert clip_score(e, np.roll(e, 1, axis=0)) == pytest.approx(0.0)
    assert clip_score(e, -e) == pytest.approx(0.0)
    sixty = np.array([[1.0, 0.0]], np.float32), np.array([[0.5, np.sqrt(3) / 2]], np.float32)
    assert clip_score(*sixty) == pytest.approx(50.0, rel=1e-5)
    with pytest.raises(ValueError, match="matched pairs"):
        clip_score(e, e[:2])
