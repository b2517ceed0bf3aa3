"""The command line as a user meets it: help, train, sample, interpolate, eval, and errors."""

import json

import numpy as np
import pytest
from PIL import Image

from jaxgen import cli
from tests import helpers


@pytest.mark.parametrize("command", ["train", "sample", "interpolate", "arith", "eval", "demo"])
def test_every_command_has_help(command, capsys):
    with pytest.raises(SystemExit) as exit_info:
        cli.main([command, "--help"])
    assert exit_info.value.code == 0
    text = capsys.readouterr().out
    assert "usage: python -m jaxgen " + command in text and len(text) > 300


@pytest.fixture(scope="module")
def run_dir(tmp_path_factory):
    workdir = tmp_path_factory.mktemp("run")
    assert cli.main(["train", "--workdir", str(workdir),
                     *helpers.cli_args("steps=20", "sample_every=10")]) == 0
    return workdir


def test_train_writes_what_a_person_looks_at(run_dir):
    assert (run_dir / "samples" / "step_0000010.png").exists()
    assert Image.open(run_dir / "loss_curve.png").size[0] > 300
    records = [json.loads(line) for line in (run_dir / "metrics.jsonl").read_text().splitlines()]
    assert [r["step"] for r in records] == [5, 10, 15, 20]
    assert {"loss", "elbo", "kl", "grad_norm", "steps_per_second"} <= set(records[0])


def test_sample_writes_uint8_images(run_dir, tmp_path):
    out = tmp_path / "s.npz"
    assert cli.main(["sample", "--run", str(run_dir), "--num", "10", "--out", str(out)]) == 0
    with np.load(out) as samples:
        assert set(samples.files) == {"images"}  # an unconditional model has no labels
        assert samples["images"].shape == (10, 28, 28, 1)
        assert samples["images"].dtype == np.uint8
    assert out.with_suffix(".png").exists()


def test_interpolate_writes_strips_and_a_walk(run_dir, tmp_path):
    out = tmp_path / "interp.png"
    assert cli.main(["interpolate", "--run", str(run_dir), "--pairs", "3", "--steps", "5",
                     "--out", str(out)]) == 0
    strip = Image.open(out)
    assert strip.size[0] > strip.size[1]  # 3 rows of 5
    gif = Image.open(out.with_suffix(".gif"))
    assert gif.n_frames > 10


def test_eval_reports_elbo_and_iwae(run_dir, capsys):
    assert cli.main(["eval", "--run", str(run_dir), "--iwae-samples", "20",
                     "--num-examples", "100"]) == 0
    metrics = json.loads((run_dir / "eval.json").read_text())
    assert metrics["num_examples"] == 100 and metrics["iwae_samples"] == 20
    assert metrics["iwae_nll"] <= -metrics["elbo"] + 1e-3  # IWAE bound is at least the ELBO
    assert '"elbo"' in capsys.readouterr().out


def test_errors_are_one_clear_line(tmp_path, capsys):
    assert cli.main(["train", "--workdir", str(tmp_path),
                     *helpers.cli_args("data.name='mnist6k'")]) == 1
    assert "error: Unknown dataset 'mnist6k'. Known names:" in capsys.readouterr().err
    assert cli.main(["sample", "--run", str(tmp_path / "nothing")]) == 1
    assert "is not a training run" in capsys.readouterr().err
    assert cli.main(["train", "--workdir", str(tmp_path),
                     *helpers.cli_args("model.latnt_dim=3")]) == 1
    assert "no such key" in capsys.readouterr().err
    assert cli.main(["train", "--workdir", str(tmp_path), *helpers.cli_args("steps='many'")]) == 1
    assert "expected type int (the config has 30), got str" in capsys.readouterr().err
