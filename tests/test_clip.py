"""CLIP on the engine: captions in the batch, a step that sees the global batch (8 devices ==
1 device), training that aligns images with their captions, and the zero-shot / probe report."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from jaxgen import data, parallel, train
from jaxgen.data import captions
from jaxgen.eval import clip as clip_eval
from jaxgen.train import make_objective
from jaxgen.train.loop import jit_train_step
from jaxgen.train.state import state_layout
from tests import helpers


def test_pipeline_carries_caption_tokens():
    info, it = data.train_iterator("mnist5k", 16, seed=0, num_threads=1, text_length=56)
    batch = next(it)
    assert batch["text"].shape == (16, 56) and batch["text"].dtype == np.int32
    assert batch["levels"].shape == (16, 3) and set(np.unique(batch["levels"])) <= {0, 1, 2}
    texts = data.text.detokenize(batch["text"])
    for text, label in zip(texts, batch["label"], strict=True):  # each names its own digit
        assert captions.NUMBER_WORDS[label] in text or f" {label}" in text, (text, label)
    # The same seed gives the same captions in the same order.
    _, again = data.train_iterator("mnist5k", 16, seed=0, num_threads=1, text_length=56)
    np.testing.assert_array_equal(next(again)["text"], batch["text"])


def test_test_split_captions_use_the_training_bins():
    train_images, train_labels, _, train_levels = captions.digit_captions("mnist5k", "train")
    _, test_labels, test_texts, test_levels = captions.digit_captions("mnist5k", "test")
    bins = captions.AttributeBins.fit(captions.measure(train_images), train_labels)
    _, test_images, _ = data.load_arrays("mnist5k", "test")
    expected = bins.levels(captions.measure(test_images), test_labels)
    np.testing.assert_array_equal(test_levels, np.stack([expected[a] for a in
                                                         captions.ATTRIBUTES], 1))
    # Tertiles of the training split: each level holds about a third there.
    assert np.allclose(np.bincount(train_levels[:, 0]) / len(train_levels), 1 / 3, atol=0.02)
    assert len(test_texts) == len(test_labels) == 1000


def test_captions_need_a_digit_dataset_or_caption_feature():
    with pytest.raises(ValueError, match="not a digit dataset"):
        captions.load("ring8", "train")
    with pytest.raises(ValueError, match="set data.text_length"):
        make_objective(helpers.tiny_clip_config("data.text_length=0"))


def test_tfds_captions_pick_one_of_the_examples_own_reproducibly():
    """The COCO path (its TFDS builder needs TensorFlow, so it is not built here): one of the
    example's own captions, picked from (seed, image id)."""
    base = lambda example: {"image": example["image"], "label": np.int32(0)}  # noqa: E731
    texts = np.array([b"a dog on a beach", b"two cats", b"a red bus", b"a kite", b"tea"])
    example = {"image": np.zeros((4, 4, 3)), "captions": {"text": texts}, "image/id": 7}
    picks = {data.text.detokenize(captions.tfds_caption_transform(base, seed, 24)(example)
                                  ["text"][None])[0] for seed in range(20)}
    assert picks <= {t.decode() for t in texts} and len(picks) > 1
    first = captions.tfds_caption_transform(base, 3, 24)(example)["text"]
    np.testing.assert_array_equal(first, captions.tfds_caption_transform(base, 3, 24)(example)
                                  ["text"])


def test_sharded_step_equals_single_device_step():
    """The contrastive loss over the global batch: one step on 8 devices (each holding 4 of the
    32 pairs) gives the loss and parameters of the same step on one device."""
    config = helpers.tiny_clip_config()
    objective = make_objective(config)
    _, it = data.train_iterator("mnist5k", 32, seed=0, num_threads=1, text_length=56)
    batch = next(it)
    state = objective.init_state(jax.random.PRNGKey(0))
    # Not the mean of per-device losses over 4 pairs each: that would be far smaller.
    per_device = jax.jit(jax.vmap(objective.loss, in_axes=(None, 0, None)))(
        state.params, jax.tree.map(lambda x: x.reshape(8, 4, *x.shape[1:]), batch),
        jax.random.PRNGKey(0))[0]
    host_state, results = jax.device_get(state), []  # (the steps donate their state)
    for devices in (jax.devices()[:1], jax.devices()):
        mesh = parallel.make_mesh(1, devices=devices)
        _, shardings = state_layout(objective, mesh)
        new_state, metrics = jit_train_step(objective, mesh, shardings)(
            jax.device_put(host_state, shardings), parallel.shard_batch(batch, mesh))
        results.append((jax.device_get(new_state.params), jax.device_get(metrics)))
    (params_1, metrics_1), (params_8, metrics_8) = results
    np.testing.assert_allclose(metrics_8["loss"], metrics_1["loss"], rtol=1e-5)
    assert helpers.max_abs_diff(params_8, params_1) < 1e-5
    assert float(metrics_1["loss"]) - float(np.mean(per_device)) > 1.0


@pytest.fixture(scope="module")
def trained_clip(tmp_path_factory):
    workdir = tmp_path_factory.mktemp("clip") / "run"
    config = helpers.tiny_clip_config("steps=150", "log_every=25", "checkpoint_every=150",
                                      "optim.learning_rate=3e-3", "optim.warmup_steps=10")
    return workdir, train.train(config, workdir)


def test_clip_trains_and_aligns_captions(trained_clip):
    workdir, result = trained_clip
    records = train.run.MetricsLog(workdir / "metrics.jsonl").records()
    # At init the 32 pairs are matched at chance: loss about log 32 = 3.47, accuracy 1/32.
    assert records[0]["loss"] > 3.0 and records[-1]["loss"] < records[0]["loss"] - 0.5, records
    assert records[-1]["image_to_text_accuracy"] > 3 / 32
    assert not (workdir / "samples").exists()  # CLIP draws nothing


def test_eval_reports_zero_shot_probe_and_attributes(trained_clip):
    _, result = trained_clip
    objective, params = result.objective, result.state.eval_params
    images, labels, _, levels = captions.digit_captions("mnist5k", "test")
    images, labels, levels = images[:200], labels[:200], levels[:200]
    accuracy = clip_eval.zero_shot_accuracy(objective, params, images, labels)
    assert 0.15 < accuracy <= 1.0  # 150 tiny steps already beat chance (10%)
    attributes = clip_eval.attribute_accuracy(objective, params, images, labels, levels)
    assert set(attributes) == set(captions.ATTRIBUTES)
    for name, row in attributes.items():
        assert row["num_images"] == int(np.sum(levels[:, captions.ATTRIBUTES.index(name)] != 1))
        assert 0.0 <= row["accuracy"] <= 1.0


class _CaptionEcho:
    """A stand-in CLIP whose "images" are caption tokens, embedded as the texts are: each image
    is nearest its own caption, so every score it gets must be perfect."""

    text_length = 48

    def __init__(self):
        self.projection = jnp.asarray(np.random.default_rng(0).normal(size=(48 * 259, 32)))

    def embed_texts(self, params, tokens):
        x = jax.nn.one_hot(tokens, 259).reshape(tokens.shape[0], -1) @ self.projection
        return x / jnp.linalg.norm(x, axis=-1, keepdims=True)

    embed_images = embed_texts


def test_attribute_accuracy_is_perfect_when_images_match_their_own_captions():
    rng = np.random.default_rng(0)
    labels, levels = rng.integers(0, 10, 60), rng.integers(0, 3, (60, 3))
    for a, name in enumerate(captions.ATTRIBUTES):
        images = data.text.tokenize([captions.caption(int(k), {name: int(v[a])}, template=0)
                                     for k, v in zip(labels, levels, strict=True)], 48)
        report = clip_eval.attribute_accuracy(_CaptionEcho(), None, images, labels, levels)
        assert report[name] == {"accuracy": 1.0, "num_images": int(np.sum(levels[:, a] != 1)),
                                "words": [w for w in captions.WORDS[name] if w]}


def test_linear_probe_on_separable_features():
    rng = np.random.default_rng(0)
    labels = np.arange(400) % 4
    features = rng.normal(size=(400, 8)) + 3.0 * np.eye(8)[labels]
    report = clip_eval.linear_probe(features[:300], labels[:300], features[300:], labels[300:])
    assert report["accuracy"] > 0.95 and report["C"] in clip_eval.PROBE_C
    noise = clip_eval.linear_probe(rng.normal(size=(300, 8)), labels[:300],
                                   rng.normal(size=(100, 8)), labels[300:])
    assert noise["accuracy"] < 0.45  # chance is 25%
