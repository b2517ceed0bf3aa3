"""Text-to-image latent diffusion: the frozen autoencoder and text tower come from their runs
and stay frozen, the latent scale is measured, the U-Net trains on the engine, and the pipeline
(Python and `generate`) is seeded, batch-independent and guided against the empty prompt."""

import jax
import numpy as np
import pytest
from PIL import Image

from jaxgen import cli, data, train, viz
from jaxgen.eval import ldm as ldm_eval
from jaxgen.pipeline import TextToImage
from jaxgen.train import latent_diffusion as ldm_module
from jaxgen.train import make_objective
from jaxgen.train.run import load_frozen, load_run
from tests import helpers

# 3 min with two workers: the module trains three runs (autoencoder, CLIP, then the U-Net on
# their frozen weights), and every test compiles the text-to-image pipeline anew.
pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def runs(tmp_path_factory):
    root = tmp_path_factory.mktemp("ldm")
    train.train(helpers.tiny_autoencoder_config("steps=20", "log_every=5",
                                                "checkpoint_every=20",
                                                "optim.learning_rate=3e-3",
                                                "optim.warmup_steps=5"), root / "ae")
    train.train(helpers.tiny_clip_config("steps=2", "checkpoint_every=2"), root / "clip")
    config = helpers.tiny_ldm_config(root / "ae", root / "clip")
    result = train.train(config, root / "ldm")
    return root, result


def test_autoencoder_trained_on_the_engine(runs):
    root, result = runs
    records = train.run.MetricsLog(root / "ae" / "metrics.jsonl").records()
    # Bernoulli reconstruction of 784 grey levels: about 543 nats (784 log 2) at chance.
    assert records[0]["loss"] > 400 and records[-1]["loss"] < 0.75 * records[0]["loss"], records
    autoencoder = result.objective.autoencoder
    assert autoencoder.latent_shape == (7, 7, 2) and autoencoder.latent_dim == 98


def test_frozen_parts_are_the_trained_runs_and_stay_frozen(runs):
    root, result = runs
    autoencoder = jax.device_get(load_run(root / "ae").state.eval_params)
    text = jax.device_get(load_run(root / "clip").state.eval_params["text"])
    state = jax.device_get(result.state)
    for tree in (state.params, state.ema_params):  # after 20 steps of training the U-Net
        assert helpers.max_abs_diff(tree["autoencoder"], autoencoder) == 0.0
        assert helpers.max_abs_diff(tree["text"], text) == 0.0
    assert float(state.params["latent_scale"]) == float(state.ema_params["latent_scale"])


def test_latent_scale_gives_unit_variance_latents(runs):
    _, result = runs
    objective, params = result.objective, result.state.params
    _, images, _ = data.load_arrays("mnist5k", "train")
    mean = jax.jit(lambda x: objective.autoencoder.model(params["autoencoder"]).encode_grid(x)[0])
    latents = np.asarray(mean(images[:1000])) * float(params["latent_scale"])
    assert abs(latents.std() - 1.0) < 1e-3


def test_loss_is_finite_and_metrics_logged(runs):
    root, _ = runs
    records = train.run.MetricsLog(root / "ldm" / "metrics.jsonl").records()
    assert [r["step"] for r in records] == [5, 10, 15, 20]
    assert all(np.isfinite(r["loss"]) and r["grad_norm"] > 0 for r in records)  # the U-Net's


def test_pipeline_is_seeded_batch_independent_and_guided(runs):
    root, _ = runs
    pipe = TextToImage.from_run(root / "ldm")
    prompts = ["a thin seven", "a thick two"]
    images = pipe(prompts, 4, guidance=2.0, seed=3)
    assert images.shape == (4, 28, 28, 1) and images.dtype == np.uint8
    np.testing.assert_array_equal(images, pipe(prompts, 4, guidance=2.0, seed=3, batch_size=2))
    # 8 images at batch 8 are sharded over the 8 devices; at batch 4 they are not
    sharded = pipe(prompts, 8, guidance=2.0, seed=3).astype(int)
    np.testing.assert_allclose(sharded, pipe(prompts, 8, guidance=2.0, seed=3,
                                             batch_size=4).astype(int), atol=1)
    np.testing.assert_allclose(sharded[:4], images.astype(int), atol=1)
    assert not np.array_equal(images, pipe(prompts, 4, guidance=2.0, seed=4))
    assert not np.array_equal(images, pipe(prompts, 4, guidance=0.0, seed=3))
    with pytest.raises(ValueError, match="samples with one of"):
        pipe(prompts, sampler="heun")
    with pytest.raises(ValueError, match="the text tower reads at most 54"):
        pipe(["a seven", "x" * 55])  # 56 tokens less BOS and EOS: not cut silently


def test_generate_cli(runs, tmp_path):
    root, _ = runs
    out = tmp_path / "seven.png"
    result = helpers.run_cli(["generate", "a thin seven", "a large one", "--run",
                              str(root / "ldm"), "--guidance", "4", "--num", "4", "--out",
                              str(out)], devices=1)
    assert result.returncode == 0, result.stderr
    saved = np.load(out.with_suffix(".npz"))
    assert saved["images"].shape == (4, 28, 28, 1)
    assert list(saved["prompts"]) == ["a thin seven", "a large one"] * 2
    assert Image.open(out).size == (2 * (2 * 30 + 2), 2 * (2 * 30 + 2))  # 2 columns x 2 rows
    bad = helpers.run_cli(["generate", "a seven", "--run", str(root / "ae")], devices=1)
    assert bad.returncode == 2, bad.stderr
    assert bad.stderr.strip().splitlines()[-1] == (
        "error: generate needs a text-to-image model, which ldm runs have; this is a vae run")


def test_sample_cli_draws_the_config_prompts_with_sampler_options(runs, tmp_path, capsys):
    root, result = runs
    out = tmp_path / "s.npz"
    assert cli.main(["sample", "--run", str(root / "ldm"), "--num", "4", "--out", str(out)]) == 0
    objective, params = result.objective, jax.device_get(result.state.eval_params)
    expected = objective.sample(params, jax.random.PRNGKey(0), 4)  # the CLI's default seed
    np.testing.assert_allclose(np.load(out)["images"].astype(int),
                               viz.to_uint8(np.asarray(expected)).astype(int), atol=1)
    assert cli.main(["sample", "--run", str(root / "ldm"), "--num", "4", "--guidance", "0",
                     "--steps", "2", "--sampler", "dpm_solver", "--out", str(out)]) == 0
    assert np.load(out)["images"].shape == (4, 28, 28, 1)
    capsys.readouterr()
    assert cli.main(["sample", "--run", str(root / "ldm"), "--labels", "3"]) == 2
    assert "--labels does not apply to ldm runs (their sampling takes --sampler, --steps, " \
        "--guidance, --interval)" in capsys.readouterr().err


def test_mismatched_or_missing_pretrained_runs_are_clear_errors(runs, tmp_path):
    root, _ = runs
    config = helpers.tiny_ldm_config(root / "ae", root / "clip",
                                     "ldm.autoencoder.model.channels=(8, 8)")
    with pytest.raises(ValueError, match="ldm.autoencoder_run: .* was trained with model"):
        load_frozen(make_objective(config).frozen_runs()["autoencoder"])
    config = helpers.tiny_ldm_config(tmp_path / "nothing", root / "clip")
    with pytest.raises(FileNotFoundError, match="ldm.autoencoder_run: .* is not a training run"):
        load_frozen(make_objective(config).frozen_runs()["autoencoder"])
    # a text tower of another context length: its position table would not fit
    config = helpers.tiny_ldm_config(root / "ae", root / "clip", "ldm.text.data.text_length=48",
                                     "data.text_length=48")
    with pytest.raises(ValueError, match="was trained with data.text_length 56"):
        load_frozen(make_objective(config).frozen_runs()["text"])
    with pytest.raises(ValueError, match="binarised digits"):
        make_objective(helpers.tiny_ldm_config(root / "ae", root / "clip",
                                               "ldm.autoencoder.model.binarize=True"))
    with pytest.raises(ValueError, match="latent grid"):
        make_objective(helpers.tiny_ldm_config(root / "ae", root / "clip",
                                               "model.data_shape=(7, 7, 4)"))


def test_loaded_weights_are_checked_leaf_by_leaf():
    expected = {"a": jax.ShapeDtypeStruct((2, 3), np.float32),
                "b": {"c": jax.ShapeDtypeStruct((4,), np.float32)}}
    ldm_module._check_shapes({"a": np.zeros((2, 3)), "b": {"c": np.zeros(4)}}, expected, "run")
    with pytest.raises(ValueError, match=r"run: \['b'\]\['c'\] has shape \(5,\), this config "
                       r"expects \(4,\)"):
        ldm_module._check_shapes({"a": np.zeros((2, 3)), "b": {"c": np.zeros(5)}}, expected, "run")
    with pytest.raises(ValueError, match="structure"):
        ldm_module._check_shapes({"a": np.zeros((2, 3))}, expected, "run")


def test_prompt_set_and_separation():
    rows = ldm_eval.prompt_set()
    assert len(rows) == 50 and rows[:3] == [("a zero", 0, None, None),
                                            ("a thin zero", 0, "thickness", 0),
                                            ("a thick zero", 0, "thickness", 2)]
    assert ("an eight", 8, None, None) in rows and ("a large eight", 8, "size", 2) in rows
    assert ldm_eval._separation(np.array([2.0, 3.0]), np.array([1.0, 1.5])) == 1.0
    assert ldm_eval._separation(np.array([1.0]), np.array([1.0])) == 0.5
    same = np.ones((3, 4, 4, 1))
    assert ldm_eval.spread(same) == 0.0
    two = np.stack([np.zeros((4, 4, 1)), np.ones((4, 4, 1))])  # per-pixel variance 1/2
    assert ldm_eval.spread(two) == pytest.approx(np.sqrt(0.5))
    labels = np.array([0, 0, 1, 1])
    assert ldm_eval.real_spread(np.concatenate([same[:2], two]), labels) == pytest.approx(
        np.sqrt(0.5) / 2)


def test_prompt_following_table(runs, classifier_dir):
    root, _ = runs
    from jaxgen.eval.classifier import load_or_train

    classifier = load_or_train("mnist5k", cache_dir=classifier_dir, steps=300)
    table = ldm_eval.prompt_following(TextToImage.from_run(root / "ldm"), classifier,
                                      [0.0, 2.0], num_per_prompt=1)
    assert [row["guidance"] for row in table] == [0.0, 2.0]
    for row in table:
        assert row["num_images"] == 50 and float(row["class_accuracy"] * 50).is_integer()
        for name in ldm_eval.ATTRIBUTES:
            assert float(row[f"{name}_agreement"] * 20).is_integer()  # 20 attribute prompts
            assert 0.0 <= row[f"{name}_separation"] <= 1.0
        assert np.isnan(row["spread"])  # one image per prompt: no spread to measure


def test_eval_reports_the_clip_score(runs, classifier_dir, monkeypatch, capsys):
    """eval reads the whole CLIP run (its image tower too) for each row's CLIP score; with that
    run moved away it notes so and reports the rest."""
    from jaxgen import commands
    from jaxgen.train.objectives import EvalOptions

    root, _ = runs
    monkeypatch.setenv("JAXGEN_CLASSIFIER_DIR", str(classifier_dir))
    rows = commands.evaluate(root / "ldm", EvalOptions(num=1))["rows"]
    assert [row["guidance"] for row in rows] == [0.0, 2.0, 4.0]
    assert all(0.0 <= row["clip_score"] <= 100.0 for row in rows)
    (root / "clip").rename(root / "clip_moved")
    try:
        rows = commands.evaluate(root / "ldm", EvalOptions(num=1))["rows"]
    finally:
        (root / "clip_moved").rename(root / "clip")
    assert all("clip_score" not in row and "class_accuracy" in row for row in rows)
    assert "note: ldm.text_run" in capsys.readouterr().err
