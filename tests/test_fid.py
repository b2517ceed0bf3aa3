"""FID inside jaxgen (`jaxgen.eval.fid`, the `fid-stats` and `fid` commands, `eval`): images in as
a PNG holds them, statistics independent of the batch size and device count, files in
pytorch-fid's layout, a run's samples scored against a dataset's statistics, and one clear line
for each bad input. The network has random weights in pytorch-fid's layout (its parity with
pytorch-fid is test_inception.py's); the metrics' parity is test_metrics.py's."""

import json

import jax
import numpy as np
import pytest

from jaxgen import commands, metrics, parallel
from jaxgen.eval import fid
from jaxgen.pretrained.inception import WEIGHTS_ENV, inception_from_state_dict
from tests import helpers
from tests import inception_fixtures as fixtures


@pytest.fixture(scope="module")
def model():
    return inception_from_state_dict(fixtures.random_state_dict(fixtures.SEED))


@pytest.fixture
def loads_random_weights(model, monkeypatch):
    """`Featurizer.load` returns the random-weight network on the mesh asked for."""
    monkeypatch.setattr(fid.Featurizer, "load",
                        classmethod(lambda cls, path=None, *, mesh=None, dtype=None:
                                    cls(model, mesh)))


def _images(num, seed=0, channels=1):
    return np.random.default_rng(seed).uniform(-1, 1, (num, 28, 28, channels)).astype(
        np.float32)


def test_images_enter_as_a_png_holds_them():
    grey = _images(3)
    rgb = fid.as_uint8_rgb(grey)
    assert rgb.shape == (3, 28, 28, 3) and rgb.dtype == np.uint8
    np.testing.assert_array_equal(rgb[..., 0], np.round((grey[..., 0] + 1) * 127.5))
    np.testing.assert_array_equal(rgb[..., 0], rgb[..., 2])
    np.testing.assert_array_equal(fid.as_uint8_rgb(rgb), rgb)
    with pytest.raises(ValueError, match=r"float images in \[-1, 1\]"):
        fid.as_uint8_rgb(grey * 255)
    with pytest.raises(ValueError, match=r"images \[N, H, W, 1 or 3\]"):
        fid.as_uint8_rgb(np.zeros((4, 2), np.float32))


def test_statistics_do_not_depend_on_batch_or_devices(model):
    """The same 12 images featurised 4 at a time on one device and 8 at a time (padded) over 8
    devices: the same features, the same statistics."""
    images = _images(12, channels=3)
    one = fid.featurize(fid.Featurizer(model, parallel.make_mesh(1, jax.devices()[:1])),
                        (images[i:i + 4] for i in range(0, 12, 4)))
    eight = fid.featurize(fid.Featurizer(model, parallel.make_mesh(1)),
                          (images[i:i + 8] for i in range(0, 12, 8)))
    assert one.count == eight.count == 12 and one.logits.shape == (12, 1008)
    np.testing.assert_allclose(eight.features, one.features, rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(eight.mu, one.mu, rtol=1e-5, atol=1e-7)
    scale = np.abs(one.sigma).max()
    np.testing.assert_allclose(eight.sigma, one.sigma, atol=1e-5 * scale)
    # One batch of the kept features: each batch's scatter is float32, so within its rounding.
    direct = metrics.FeatureStatistics.from_features(one.features)
    np.testing.assert_allclose(one.sigma, direct.sigma, atol=1e-5 * scale)


def test_two_statistics_files(tmp_path):
    """`fid A B` of two statistics files (pytorch-fid's layout, no Inception needed) is the
    closed-form distance of their Gaussians."""
    dim = 5
    a, b = tmp_path / "a.npz", tmp_path / "b.npz"
    np.savez(a, mu=np.zeros(dim), sigma=np.eye(dim))
    np.savez(b, mu=np.ones(dim), sigma=4 * np.eye(dim))
    # ||mu||^2 + tr(I + 4I - 2 * 2I) = 5 + 5
    assert commands.fid([a, b])["fid"] == pytest.approx(10.0)
    result = helpers.run_cli(["fid", str(a), str(b)], devices=1)
    assert result.returncode == 0, result.stderr
    assert json.loads(result.stdout)["fid"] == pytest.approx(10.0)
    np.savez(b, mean=np.ones(dim))
    result = helpers.run_cli(["fid", str(a), str(b)], devices=1)
    assert result.returncode == 1 and "expected an .npz file with 'mu'" in result.stderr
    result = helpers.run_cli(["fid", str(a)], devices=1)
    assert result.returncode == 1 and "fid takes two files" in result.stderr


def test_missing_weights_name_the_file_and_the_variable(tmp_path, monkeypatch):
    monkeypatch.setenv(WEIGHTS_ENV, str(tmp_path / "nowhere.pth"))
    result = helpers.run_cli(["fid-stats", "--data", "mnist5k", "--out",
                              str(tmp_path / "s.npz")], devices=1)
    assert result.returncode == 1
    line = result.stderr.strip().splitlines()[-1]
    assert "pt_inception-2015-12-05-6726825d.pth" in line and WEIGHTS_ENV in line
    assert not (tmp_path / "s.npz").exists()


@pytest.fixture(scope="module")
def gan_run(tmp_path_factory):
    workdir = tmp_path_factory.mktemp("runs") / "dcgan"
    result = helpers.run_cli(["train", *helpers.cli_args(
        "steps=2", "checkpoint_every=2", config=helpers.GAN_IMAGES_CONFIG,
        tiny=helpers.TINY_GAN_IMAGES), "--workdir", str(workdir)])
    assert result.returncode == 0, result.stderr
    return workdir


def test_a_run_against_dataset_statistics(tmp_path, gan_run, loads_random_weights):
    """fid-stats of 10 test digits, then 10 samples of a run against them: every score, the
    warning that N < 2048 biases FID, and fid.json beside the run (10 samples: the Inception
    Score takes 10 splits)."""
    ref = commands.fid_stats("mnist5k", "test", tmp_path / "ref.npz", num=10, batch=8)
    reference = fid.load_reference(ref)
    assert reference.count == 10 and reference.features.shape == (10, 2048)
    with np.load(ref) as stored:  # pytorch-fid reads these two
        assert stored["mu"].shape == (2048,) and stored["sigma"].shape == (2048, 2048)
    with pytest.warns(UserWarning, match="FID from N < D samples is biased"):
        result = commands.fid(workdir=gan_run, ref=ref, num=10, batch=8)
    assert set(result) >= {"fid", "kid", "kid_std", "precision", "recall", "inception_score"}
    assert result["fid"] > 0 and 0 <= result["precision"] <= 1 and result["kid_subset"] == 10
    assert json.loads((gan_run / "fid.json").read_text())["fid"] == result["fid"]
    again = commands.fid(workdir=gan_run, ref=ref, num=10, batch=8)
    assert again["fid"] == result["fid"]  # same seed, same samples, same score

    samples = tmp_path / "samples.npz"
    commands.sample(gan_run, 10, out=samples)
    from_file = commands.fid([samples, ref])
    assert from_file["num_samples"] == 10 and np.isfinite(from_file["fid"])


def test_eval_adds_the_inception_block(gan_run, loads_random_weights, classifier_dir,
                                       monkeypatch):
    """With the weights configured, a GAN's eval carries FID and its companions beside the
    classifier's histogram (the reference cut to 16 test digits to keep the test short)."""
    from jaxgen.eval import gan as gan_eval
    from jaxgen.train.objectives import EvalOptions
    from jaxgen.train.run import load_run

    def short_reference(featurizer, config, split="test", **_):
        return fid.featurize(featurizer, fid.dataset_batches(config.data.name, split, batch=8,
                                                             num=16)[1])

    monkeypatch.setenv("JAXGEN_CLASSIFIER_DIR", str(classifier_dir))
    monkeypatch.setattr(fid, "split_reference", short_reference)
    run = load_run(gan_run)
    monkeypatch.delenv(WEIGHTS_ENV, raising=False)
    assert "inception" not in gan_eval.evaluate_run(run, EvalOptions(num=16))
    monkeypatch.setenv(WEIGHTS_ENV, "pt_inception-2015-12-05-6726825d.pth")
    scores = gan_eval.evaluate_run(run, EvalOptions(num=16))
    assert len(scores["counts"]) == 10 and scores["inception"]["num_samples"] == 16
    assert scores["inception"]["num_reference"] == 16 and scores["inception"]["fid"] > 0
