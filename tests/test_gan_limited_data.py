"""The GAN's tools for limited data inside the step: spectral norm, DiffAugment, ADA, lazy R1."""

import signal
import subprocess
import sys

import jax
import numpy as np
import pytest

from jaxgen import augment
from jaxgen import config as config_lib
from jaxgen.models import spectral_norm
from jaxgen.train import families, train
from jaxgen.train.checkpoint import Checkpointer
from jaxgen.train.run import MetricsLog
from tests import helpers

ALL = ("gan.spectral_norm=True", "gan.augment='color,translation,cutout'",
       "gan.ada_target=0.6", "gan.ada_kimg=1", "gan.r1_weight=1.0", "gan.r1_every=4")


def _batch(objective, key, size):
    image = jax.random.uniform(key, (size, 28, 28, 1), minval=-1.0, maxval=1.0)
    return {"image": image, "label": jax.random.randint(key, (size,), 0, 10)}


def test_options_are_checked_at_set_up():
    with pytest.raises(ValueError, match="unknown augmentation 'flip'"):
        families.make(helpers.tiny_gan_config("gan.augment='flip'", images=True))
    with pytest.raises(ValueError, match="needs model.kind 'dcgan'"):
        families.make(helpers.tiny_gan_config("gan.augment='cutout'"))
    with pytest.raises(ValueError, match="name the transforms in gan.augment"):
        families.make(helpers.tiny_gan_config("gan.augment=''", "gan.ada_target=0.6",
                                              images=True))
    with pytest.raises(ValueError, match="r1_every at least 1"):
        families.make(helpers.tiny_gan_config("gan.r1_every=0", images=True))


def test_state_and_metrics_of_the_options():
    """The spectral-norm vectors and ADA's p sit beside the weights, outside the optimizer and
    the EMA; a step moves both, and lazy R1 is computed (times 4) on every 4th step only."""
    objective = families.make(helpers.tiny_gan_config(*ALL, "model.num_classes=10",
                                                      images=True))
    assert objective.progress_metrics == ("d_loss", "g_loss", "ada_p")
    state = objective.init_state(jax.random.PRNGKey(0))
    assert set(state.params) == {"generator", "discriminator", "generator_stats",
                                 "discriminator_sn", "ada_p"}
    assert set(state.ema_params) == {"generator", "generator_stats"}
    assert set(state.opt_state) == {"generator", "discriminator"}
    # every kernel and the projection embedding of the conditional discriminator
    assert set(state.params["discriminator_sn"]) == {"convs/0/kernel", "convs/1/kernel",
                                                     "out/kernel", "embed/embedding"}
    assert float(state.params["ada_p"]) == 0.0
    step = jax.jit(objective.step)
    r1 = []
    for i in range(5):
        before = state
        state, metrics = step(state, _batch(objective, jax.random.PRNGKey(i), 16),
                              jax.random.PRNGKey(100 + i))
        r1.append(float(metrics["r1"]))
        r_t = float(metrics["ada_rt"])  # the mean of 16 signs: a multiple of 1/8
        assert -1 <= r_t <= 1 and (r_t * 8).is_integer()
        expected_p = np.clip(float(before.params["ada_p"]) + np.sign(
            float(metrics["ada_rt"]) - 0.6) * 16 / 1000, 0, 1)
        np.testing.assert_allclose(float(state.params["ada_p"]), expected_p, rtol=1e-6)
        assert float(metrics["ada_p"]) == float(state.params["ada_p"])
        assert helpers.max_abs_diff(before.params["discriminator_sn"],
                                    state.params["discriminator_sn"]) > 0
    assert r1[0] > 0 and r1[4] > 0 and r1[1] == r1[2] == r1[3] == 0.0


def test_discriminator_computes_with_unit_spectral_norm_weights():
    objective = families.make(helpers.tiny_gan_config("gan.spectral_norm=True", images=True))
    params = objective.init_state(jax.random.PRNGKey(0)).params
    normalize = jax.jit(objective.critic_weights)
    for _ in range(300):  # power iteration from the stored vectors converges (one step a call)
        weights, vectors = normalize(params["discriminator"], params)
        params = {**params, "discriminator_sn": vectors}
    matrices = [leaf for leaf in jax.tree.leaves(weights) if leaf.ndim >= 2]
    assert len(matrices) == len(vectors) == 3  # two convolutions and the score
    for leaf in matrices:
        matrix = np.asarray(leaf).reshape(-1, leaf.shape[-1])
        np.testing.assert_allclose(np.linalg.svd(matrix, compute_uv=False)[0], 1.0, rtol=1e-3)
    assert set(vectors) == set(spectral_norm.init(jax.random.PRNGKey(0),
                                                  params["discriminator"]))


def test_sharded_step_with_every_option_matches_one_device():
    """Augmentation, spectral norm, ADA and lazy R1 on 8 devices (data 4 x fsdp 2) give the
    steps they give on one."""
    objective = families.make(helpers.tiny_gan_config(*ALL, images=True))
    keys = jax.random.split(jax.random.PRNGKey(3), 5)  # lazy R1 on the first and the last
    batches = [_batch(objective, k, objective.config.batch_size) for k in keys]
    finals, _ = helpers.steps_on_one_device_and_eight(objective, batches)
    assert helpers.max_abs_diff(finals[0].params, finals[1].params) < 1e-5
    assert float(finals[0].params["ada_p"]) == float(finals[1].params["ada_p"]) > 0


def test_ada_raises_p_when_the_discriminator_memorises(tmp_path):
    """32 training digits, seen again and again: the discriminator is sure of the reals, r_t
    climbs past 0.6 and p rises to 1 (at 8e-3 a step, ada_kimg = 2). Run the same way on all
    4,000 digits, p rose as fast (r_t near 1 in the first 100 steps): at this size and age any
    discriminator beats the young generator, whatever the data. Whether p stays low on
    plentiful data is a question for a trained model: `experiments/studies/gan_limited_data.py`
    reports the final p of each run."""
    result = train(helpers.tiny_gan_config(
        "gan.spectral_norm=False", "gan.augment='translation,cutout'", "gan.ada_target=0.6",
        "gan.ada_kimg=2",
        "steps=150", "log_every=25", "checkpoint_every=150", "data.train_examples=32",
        images=True), tmp_path)
    logged = [r["ada_p"] for r in MetricsLog(tmp_path / "metrics.jsonl").records()]
    assert logged == sorted(logged) and logged[0] > 0, logged  # the mean p of each interval
    assert float(result.state.params["ada_p"]) == 1.0
    with pytest.raises(ValueError, match=r"train_examples must be in \[1, 4000\]"):
        train(helpers.tiny_gan_config("data.train_examples=5000", images=True),
              tmp_path / "too_many")


@pytest.mark.parametrize("name", ["dcgan_mnist5k", "dcgan_mnist", "dcgan_cifar10",
                                  "dcgan_celeba"])
def test_image_gan_configs_train_with_the_tools_for_limited_data(name):
    """The CPU default (the study's best setting within 15 minutes) and the accelerator configs
    built from it: spectral norm and ADA over DiffAugment's three transforms."""
    gan = config_lib.load(name).gan
    assert gan.spectral_norm and gan.ada_target == 0.6
    assert augment.check_policy(gan.augment) == ("color", "translation", "cutout")


def test_the_study_tabulates_each_variant_and_budget_over_its_seeds():
    study = config_lib.import_file(helpers.ROOT / "experiments" / "studies" /
                                   "gan_limited_data.py")
    assert all(study.VARIANTS[v][:len(study.PLAIN)] == study.PLAIN for v in study.VARIANTS
               if v != "default")
    rows = [{"variant": v, "steps": n, "seed": s, "fd": fd, "smallest_class_share": 0.07,
             "kl_to_uniform": 0.01, "confident": 0.75, "steps_per_second": 4.0, "ada_p": p}
            for v, n, s, fd, p in [("baseline", 3000, 0, 40.0, np.nan),
                                   ("baseline", 3000, 1, 50.0, np.nan),
                                   ("default", 6000, 0, 30.0, 0.0)]]
    lines = study.table(rows).splitlines()
    assert len(lines) == 4
    assert lines[2].startswith("| baseline | 3000 | 2 | 4 ± 0 | 45 ± 7.1 | 0.07 ± 0 |")
    assert lines[2].endswith("|  |") and lines[3].endswith("| 0 |")  # ADA's p where it runs


def _start(workdir, *overrides):
    return subprocess.Popen(
        [sys.executable, "-m", "jaxgen", "train", "--workdir", str(workdir),
         *helpers.cli_args(*overrides, config=helpers.GAN_IMAGES_CONFIG,
                           tiny=helpers.TINY_GAN_IMAGES)],
        env=helpers.cli_env(8), cwd=helpers.ROOT, stdout=subprocess.PIPE,
        stderr=subprocess.PIPE, text=True)


@pytest.mark.slow
def test_sigkill_then_resume_keeps_every_option_bit_for_bit(tmp_path):
    """Killed after a checkpoint, resumed: the spectral-norm vectors, ADA's p, both players and
    their optimizers end where the uninterrupted run ended, and so do the logged metrics."""
    overrides = (*ALL, "steps=40", "checkpoint_every=10", "log_every=10")
    reference = train(helpers.tiny_gan_config(*overrides, images=True), tmp_path / "reference")
    process = _start(tmp_path / "killed", *overrides)
    helpers.wait_for_checkpoint(tmp_path / "killed", process, at_least=10)
    process.send_signal(signal.SIGKILL)
    process.wait()
    assert Checkpointer(tmp_path / "killed" / "checkpoints").latest_step() < 40
    resumed = train(helpers.tiny_gan_config(*overrides, images=True), tmp_path / "killed")
    for a, b in zip(jax.tree.leaves(jax.device_get(reference.state)),
                    jax.tree.leaves(jax.device_get(resumed.state)), strict=True):
        np.testing.assert_array_equal(a, b)
    assert float(resumed.state.params["ada_p"]) > 0

    def logged(workdir):
        return [(r["step"], r["d_loss"], r["ada_p"])
                for r in MetricsLog(workdir / "metrics.jsonl").records()]

    assert logged(tmp_path / "killed") == logged(tmp_path / "reference")
