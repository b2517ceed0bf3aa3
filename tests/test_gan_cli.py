"""GANs from the command line: train, sample, interpolate, arith and eval, as a user runs them."""

import json

import numpy as np
import pytest
from PIL import Image

from jaxgen import cli
from tests import helpers


def _args(*overrides):
    return helpers.cli_args(*overrides, config=helpers.GAN_IMAGES_CONFIG,
                            tiny=helpers.TINY_GAN_IMAGES)


@pytest.fixture(scope="module")
def gan_run(tmp_path_factory):
    workdir = tmp_path_factory.mktemp("gan")
    assert cli.main(["train", "--workdir", str(workdir),
                     *_args("model.num_classes=10", "sample_every=10")]) == 0
    return workdir


def test_arith_has_help(capsys):
    with pytest.raises(SystemExit):
        cli.main(["arith", "--help"])
    assert "WH - W + M" in capsys.readouterr().out


def test_train_logs_both_players(gan_run):
    records = [json.loads(line) for line in (gan_run / "metrics.jsonl").read_text().splitlines()]
    assert {"d_loss", "g_loss", "d_grad_norm", "g_grad_norm", "real_score", "fake_score"} <= set(
        records[-1])
    assert (gan_run / "samples" / "step_0000010.png").exists()


def test_sample_saves_images_and_their_classes(gan_run, tmp_path):
    out = tmp_path / "s.npz"
    assert cli.main(["sample", "--run", str(gan_run), "--num", "12", "--out", str(out)]) == 0
    with np.load(out) as samples:
        assert samples["images"].shape == (12, 28, 28, 1) and samples["images"].dtype == np.uint8
        np.testing.assert_array_equal(samples["labels"], np.arange(12) % 10)


def test_interpolate_between_random_latents(gan_run, tmp_path):
    out = tmp_path / "i.png"
    assert cli.main(["interpolate", "--run", str(gan_run), "--pairs", "2", "--steps", "4",
                     "--out", str(out)]) == 0
    assert Image.open(out).size[0] > Image.open(out).size[1]
    assert Image.open(out.with_suffix(".gif")).n_frames > 10


def test_arith_and_eval_use_the_classifier(gan_run, tmp_path, classifier_dir, monkeypatch,
                                           capsys):
    monkeypatch.setenv("JAXGEN_CLASSIFIER_DIR", str(classifier_dir))
    out = tmp_path / "a.png"
    # An untrained generator's images are rarely recognised: label many latents.
    code = cli.main(["arith", "--run", str(gan_run), "--num", "2048", "--out", str(out)])
    if code == 0:
        assert out.exists() and Image.open(out.with_name("a_walk.gif")).n_frames > 1
    else:  # too few confident classes is reported as one clear line, not a traceback
        assert "need two" in capsys.readouterr().err
    assert cli.main(["eval", "--run", str(gan_run), "--num-examples", "200"]) == 0
    report = json.loads((gan_run / "eval.json").read_text())
    assert sum(report["counts"]) == 200 and len(report["counts"]) == 10
    assert 0.0 <= report["kl_to_uniform"] <= np.log(10) + 1e-6


def test_points_eval_scores_mode_coverage(tmp_path):
    workdir = tmp_path / "ring"
    args = ["--config", str(helpers.GAN_POINTS_CONFIG)]
    for item in (*helpers.TINY_GAN_POINTS, "steps=10"):
        args += ["--set", item]
    assert cli.main(["train", "--workdir", str(workdir), *args]) == 0
    assert cli.main(["eval", "--run", str(workdir), "--num-examples", "500"]) == 0
    report = json.loads((workdir / "eval.json").read_text())
    assert 0 <= report["modes"] <= 8 and 0.0 <= report["high_quality"] <= 1.0
    assert (workdir / "modes.png").exists()
    assert cli.main(["sample", "--run", str(workdir), "--num", "50"]) == 0
    with np.load(workdir / "samples.npz") as samples:
        assert samples["points"].shape == (50, 2)
