"""CLIP score with a pretrained transformers `CLIPModel` (`jaxgen.eval.clip_pretrained`):
parity with transformers and torchmetrics' recipe on a fixture saved by transformers
(`tests/clip_fixtures.py` regenerates it), preprocessing and tokenization included;
strictness about every tensor and option; and a live comparison where torch is installed."""

import json
import shutil
from pathlib import Path

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from safetensors.numpy import load_file, save_file

from jaxgen.eval.clip_pretrained import PretrainedCLIP
from jaxgen.pretrained import PretrainedError
from jaxgen.pretrained.clip_model import (
    LEGACY,
    ImageProcessing,
    image_processing,
    load_clip_model,
    preprocess,
)
from tests import helpers
from tests.clip_fixtures import IMAGE_SIZES, ROOT


@pytest.fixture(scope="module")
def clip():
    return PretrainedCLIP.from_pretrained(ROOT)


@pytest.fixture(scope="module")
def ref():
    ref = np.load(ROOT / "reference.npz")
    return dict(ref, images=[ref[f"image_{i}"] for i in range(len(IMAGE_SIZES))],
                prompts=list(ref["prompts"]))


def _close(out, expected, rel=1e-4):
    """Elementwise within `rel` of the expected values' scale (their largest magnitude)."""
    np.testing.assert_allclose(out, expected, rtol=0, atol=rel * np.abs(expected).max())


def test_embeddings_and_score_match_transformers(clip, ref):
    """Images of five sizes (resized up and down, cropped) and prompts (one cut at 77 tokens):
    the pixels transformers' image processor makes, the token ids, both embeddings and the
    score, as torchmetrics' CLIPScore computes them."""
    np.testing.assert_allclose(clip.pixel_values(ref["images"]),
                               ref["pixel_values"].transpose(0, 2, 3, 1), rtol=0, atol=1e-6)
    ids = clip.tokenize(ref["prompts"])
    width = ref["ids"].shape[1]
    np.testing.assert_array_equal(ids[:, :width], ref["ids"])
    np.testing.assert_array_equal(ids[:, width:], clip.tokenizer.vocab["<|endoftext|>"])
    long = ids[-1]  # more than 75 tokens: cut like torchmetrics, the end token lost
    assert len(long) == 77 and long[0] == clip.tokenizer.vocab["<|startoftext|>"]
    assert clip.tokenizer.vocab["<|endoftext|>"] not in long
    image_embeds, text_embeds = clip.embed_images(ref["images"]), clip.embed_texts(ref["prompts"])
    _close(image_embeds, ref["image_embeds"])
    _close(text_embeds, ref["text_embeds"])
    cosines = np.sum(image_embeds * text_embeds, -1) / (
        np.linalg.norm(image_embeds, axis=-1) * np.linalg.norm(text_embeds, axis=-1))
    np.testing.assert_allclose(cosines, ref["cosines"], rtol=0, atol=1e-5)
    assert abs(clip.score(ref["images"], ref["prompts"]) - float(ref["score"])) < 1e-4


def test_batches_and_compute_dtype_do_not_change_embeddings(ref):
    """Batches of 2 over 8 devices (padded) give the batch-of-all result; bfloat16 compute
    stays near the float32 embeddings."""
    small = PretrainedCLIP.from_pretrained(ROOT, batch_size=2)
    _close(small.embed_images(ref["images"]), ref["image_embeds"])
    bf16 = PretrainedCLIP.from_pretrained(ROOT, dtype=jnp.bfloat16)
    _close(bf16.embed_texts(ref["prompts"]), ref["text_embeds"], rel=5e-2)


def test_image_processing_follows_transformers_configs(tmp_path):
    assert image_processing(ROOT) == ImageProcessing(size=42, crop_size=(42, 42))
    assert image_processing(tmp_path) == ImageProcessing()  # none saved: CLIP's defaults
    # openai/clip-vit-large-patch14's preprocessor_config.json, from before nested configs.
    legacy = {"crop_size": 224, "do_center_crop": True, "do_normalize": True,
              "do_resize": True, "feature_extractor_type": "CLIPFeatureExtractor",
              "image_mean": [0.48145466, 0.4578275, 0.40821073],
              "image_std": [0.26862954, 0.26130258, 0.27577711], "resample": 3, "size": 224}
    (tmp_path / "preprocessor_config.json").write_text(json.dumps(legacy))
    assert image_processing(tmp_path) == ImageProcessing()
    (tmp_path / "preprocessor_config.json").write_text(json.dumps({**legacy, "do_pad": True}))
    with pytest.raises(PretrainedError, match="do_pad"):
        image_processing(tmp_path)
    (tmp_path / "preprocessor_config.json").write_text(json.dumps(
        {**legacy, "size": {"longest_edge": 300}}))
    with pytest.raises(PretrainedError, match="longest_edge"):
        image_processing(tmp_path)
    # A crop larger than the resized image is padded with zeros, centred, as transformers does.
    image = np.full((5, 8, 3), 200, np.uint8)
    pixels = preprocess(image, ImageProcessing(do_resize=False, crop_size=(7, 8),
                                               do_normalize=False))
    assert pixels.shape == (7, 8, 3) and np.all(pixels[[0, 6]] == 0)
    np.testing.assert_allclose(pixels[1:6], 200 / 255)
    grey = preprocess(image[..., 0], ImageProcessing(size=6, crop_size=(6, 6)))
    np.testing.assert_array_equal(grey, preprocess(image, ImageProcessing(size=6,
                                                                          crop_size=(6, 6))))


def _copy(tmp_path) -> tuple[Path, dict, dict]:
    folder = Path(shutil.copytree(ROOT, tmp_path / "clip"))
    return (folder, json.loads((folder / "config.json").read_text()),
            load_file(str(folder / "model.safetensors")))


def test_checkpoints_saved_by_transformers_4_load(tmp_path):
    """openai/clip-vit-large-patch14's layout: sub-configs with PretrainedConfig's generation
    fields, `*_config_dict` overrides beside them, and the position-id buffers."""
    _, expected = load_clip_model(ROOT)
    folder, config, tensors = _copy(tmp_path)
    legacy = {k: None for k in LEGACY} | {"pruned_heads": {}, "num_beams": 1, "top_k": 50}
    config["text_config"] |= legacy | {"id2label": {"0": "LABEL_0"}}
    config["vision_config"] |= legacy
    config["text_config_dict"] = {"hidden_size": config["text_config"]["hidden_size"]}
    config["vision_config_dict"] = {"patch_size": 14}
    (folder / "config.json").write_text(json.dumps(config))
    tensors["text_model.embeddings.position_ids"] = np.arange(77)[None]
    tensors["vision_model.embeddings.position_ids"] = np.arange(10)[None]
    save_file(tensors, str(folder / "model.safetensors"))
    kwargs, params = load_clip_model(folder)
    assert kwargs["vision_config"]["patch_size"] == 14
    jax.tree.map(np.testing.assert_array_equal, params, expected)
    # The *_dict wins, as in transformers: here it disagrees with the weights.
    config["vision_config_dict"] = {"hidden_size": 64}
    (folder / "config.json").write_text(json.dumps(config))
    with pytest.raises(PretrainedError, match="expected"):
        load_clip_model(folder)


@pytest.mark.parametrize("change, match", [
    ("drop visual_projection.weight", "lacks tensor visual_projection.weight"),
    ("drop logit_scale", "lacks tensor logit_scale"),
    ("add vision_model.embeddings.extra", "does not use, e.g. vision_model.embeddings.extra"),
    ("bad position_ids", "position_ids is not 0 .. 9"),
    ("option use_fast_attention", "unsupported option use_fast_attention"),
    ("vision option use_rope", "vision_config: unsupported option use_rope"),
    ("vision hidden_act relu", "unsupported hidden_act"),
    ("pruned heads", "pruned_heads"),
])
def test_checkpoint_is_checked(tmp_path, change, match):
    folder, config, tensors = _copy(tmp_path)
    if change.startswith("drop"):
        del tensors[change.split()[1]]
    elif change.startswith("add"):
        tensors[change.split()[1]] = np.zeros(3, np.float32)
    elif change == "bad position_ids":
        tensors["vision_model.embeddings.position_ids"] = np.zeros((1, 10), np.int64)
    elif change.startswith("option"):
        config[change.split()[1]] = True
    elif change.startswith("vision option"):
        config["vision_config"][change.split()[2]] = True
    elif change == "vision hidden_act relu":
        config["vision_config"]["hidden_act"] = "relu"
    else:
        config["text_config"]["pruned_heads"] = {"0": [1]}
    save_file(tensors, str(folder / "model.safetensors"))
    (folder / "config.json").write_text(json.dumps(config))
    with pytest.raises(PretrainedError, match=match) as error:
        load_clip_model(folder)
    assert "\n" not in str(error.value)


def test_inputs_are_checked(clip, ref, tmp_path):
    with pytest.raises(ValueError, match="3 images and 2 prompts"):
        clip.score(ref["images"][:3], ref["prompts"][:2])
    with pytest.raises(ValueError, match="uint8"):
        clip.embed_images([ref["images"][0].astype(np.float32)])
    with pytest.raises(ValueError, match=r"\[N, H, W, 3\]"):
        clip.embed_images(ref["images"][0])
    folder, _, _ = _copy(tmp_path)
    (folder / "processor_config.json").write_text(json.dumps(
        {"image_processor": {"size": 40, "crop_size": 40}}))
    with pytest.raises(PretrainedError, match="makes 40x40 images; the image tower takes 42x42"):
        PretrainedCLIP.from_pretrained(folder)


def test_live_parity_with_transformers(clip):
    """New images and prompts through transformers itself, as the fixture script does."""
    torch = pytest.importorskip("torch")
    transformers = pytest.importorskip("transformers")
    from tests.clip_fixtures import reference

    model = transformers.CLIPModel.from_pretrained(ROOT).eval()
    processor = transformers.CLIPProcessor(
        image_processor=transformers.CLIPImageProcessorPil.from_pretrained(ROOT),
        tokenizer=transformers.CLIPTokenizer.from_pretrained(ROOT))
    rng = np.random.default_rng(7)
    images = [rng.integers(0, 256, (h, w, 3), dtype=np.uint8)
              for h, w in [(43, 43), (64, 48), (31, 90)]]
    prompts = ["a small boat on a calm lake", "portrait of a woman with red hair", "cat"]
    torch.manual_seed(0)
    expected = reference(model, processor, images, prompts)
    _close(clip.embed_images(images), expected["image_embeds"])
    _close(clip.embed_texts(prompts), expected["text_embeds"])
    assert abs(clip.score(images, prompts) - float(expected["score"])) < 1e-4


def test_cli_scores_generated_images(tmp_path, clip):
    """`clip-score` of an .npz as `generate` writes it equals the Python entry point's score."""
    rng = np.random.default_rng(0)
    images = rng.integers(0, 256, (3, 42, 42, 3), dtype=np.uint8)
    prompts = ["a red square", "a blue circle", "a red square"]
    np.savez(tmp_path / "generated.npz", images=images, prompts=np.array(prompts))
    result = helpers.run_cli(["clip-score", str(tmp_path / "generated.npz"), "--clip",
                              str(ROOT)], devices=1)
    assert result.returncode == 0, result.stderr
    scored = json.loads(result.stdout)[str(tmp_path / "generated.npz")]
    expected = clip.score(images, prompts)
    assert scored["num_images"] == 3 and scored["clip_score"] == pytest.approx(expected, abs=1e-4)
    np.savez(tmp_path / "bare.npz", images=images)
    result = helpers.run_cli(["clip-score", str(tmp_path / "bare.npz"), "--clip",
                              str(ROOT)], devices=1)
    assert result.returncode == 1 and "`images` and `prompts`" in result.stderr
