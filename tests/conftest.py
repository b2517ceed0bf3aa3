"""Every test sees 8 CPU devices, so sharding is exercised on this 2-core machine."""

import os
import shutil
import tempfile

# Tests compile hundreds of small programs and run each a few times, so LLVM's full
# optimisation costs more than it saves. Level 1 compiles almost as fast as level 0 (the tiny
# autoencoder, CLIP and latent diffusion runs of test_latent_diffusion: 42.0 s at level 1,
# 41.4 s at 0, 53.4 s at the default 3) and runs as fast as level 3 (a diffusion eval of 4 x 40
# guided DDIM samples: 18.8 s, against 19.3 s at 3 and 53 s at 0). Results are unchanged: the
# fingerprints match bit for bit at every level. XLA's own passes (fusion, layout) still run.
os.environ["XLA_FLAGS"] = (
    os.environ.get("XLA_FLAGS", "")
    + " --xla_force_host_platform_device_count=8 --xla_backend_optimization_level=1"
).strip()
# One persistent compilation cache per test session, shared by the pytest workers and the CLI
# processes the tests start: many tests compile the same tiny runs' programs (a train step, a
# sampler), in-process and in subprocesses, and each compiled program is reused from the cache.
# The session's controller creates it (the workers inherit the variable) and removes it at the
# end, so no session starts with another's programs and nothing is written to $HOME. Set
# JAXGEN_COMPILATION_CACHE= to compile everything anew.
_OWNS_CACHE = "JAXGEN_COMPILATION_CACHE" not in os.environ
if _OWNS_CACHE:
    os.environ["JAXGEN_COMPILATION_CACHE"] = tempfile.mkdtemp(prefix="jaxgen-tests-xla-")

import jax  # noqa: E402
import pytest  # noqa: E402

from tests import helpers  # noqa: E402

if os.environ["JAXGEN_COMPILATION_CACHE"]:
    jax.config.update("jax_compilation_cache_dir", os.environ["JAXGEN_COMPILATION_CACHE"])
    jax.config.update("jax_persistent_cache_min_compile_time_secs", 1.0)

# The smoke lane, `python -m pytest -m smoke`: every family and the engine once, in about two
# minutes, for quick iterations. An entry is a file (all its tests), a test (all its
# parameters) or one parametrised case; an entry that matches nothing is an error, so the lane
# cannot silently shrink.
SMOKE = (
    # losses, metrics and samplers as pure functions
    "test_imports.py", "test_captions.py", "test_data.py",
    "test_losses_vae.py::KLTest::test_matches_monte_carlo",
    "test_losses_vae.py::test_gaussian_log_likelihood_closed_form",
    "test_losses_gan.py::test_r1_matches_finite_differences_and_reaches_the_critic_weights",
    "test_losses_contrastive.py::test_clip_loss_is_the_mean_of_both_cross_entropies",
    "test_losses_diffusion.py::test_targets_round_trip_and_a_perfect_denoiser_scores_zero",
    "test_metrics.py::test_precision_recall_by_hand",
    "test_metrics.py::test_clip_score_closed_forms",
    "test_metrics.py::test_kid_of_whole_sets_is_their_mmd",
    "test_sample_diffusion.py::test_guidance_mixes_one_batched_forward_and_does_not_recompile",
    "test_latent.py::test_slerp_ends_norm_and_fallback",
    # every shipped config builds and steps (every family, abstractly)
    "test_experiments.py::test_config_builds_and_steps",
    # each family computes: VAE (engine and CLI), GAN, diffusion, DiT, U-Net, CLIP, KL autoencoder
    "test_cli.py::test_train_writes_what_a_person_looks_at",
    "test_train.py::test_nan_loss_stops_and_keeps_the_last_good_checkpoint",
    "test_train.py::test_bfloat16_compute_keeps_float32_params",
    "test_gan.py::test_alternating_step_takes_n_critic_discriminator_updates",
    "test_diffusion.py::test_every_parameterization_trains_a_step_and_samples[v-ddpm]",
    "test_dit.py::test_jit_of_split_state_matches_eager",
    "test_unet.py::test_ddpm_cifar10_config_has_35_7m_parameters",
    "test_clip.py::test_linear_probe_on_separable_features",
    "test_autoencoder.py::test_latent_grid_and_flat_views_agree",
    # pretrained weights, FID, sharding, the run lock, the CLI's capability check
    "test_pretrained.py::test_missing_extra_and_misshapen_tensors_are_refused",
    "test_inception.py::test_preprocess_is_pytorch_fids_pipeline",
    "test_fid.py::test_missing_weights_name_the_file_and_the_variable",
    "test_parallel.py::test_mesh_and_batch_sharding",
    "test_parallel.py::test_dispatch_window_keeps_the_queue_short",
    "test_run_lock.py::test_the_lock_dies_with_its_holder_and_stale_files_do_not_block",
    "test_capabilities.py::test_a_command_the_family_cannot_do_is_one_line",
)


def _smoke_entry(nodeid: str) -> str | None:
    path, _, name = nodeid.removeprefix("tests/").partition("::")
    for entry in (f"{path}::{name}", f"{path}::{name.split('[')[0]}", path):
        if entry in SMOKE:
            return entry
    return None


def pytest_collection_modifyitems(config, items):
    matched, files = set(), set()
    for item in items:
        files.add(item.nodeid.removeprefix("tests/").split("::")[0])
        entry = _smoke_entry(item.nodeid)
        if entry is not None:
            item.add_marker(pytest.mark.smoke)
            matched.add(entry)
    stale = [e for e in SMOKE if e.split("::")[0] in files and e not in matched]
    if stale:
        raise pytest.UsageError(f"smoke entries that match no test: {stale}")


@pytest.fixture
def tiny_config():
    return helpers.tiny_config


@pytest.fixture(scope="session")
def classifier_dir(tmp_path_factory):
    """A quickly trained digit classifier, cached where the CLI looks for it (tests that score
    samples point $JAXGEN_CLASSIFIER_DIR here)."""
    from jaxgen.eval import classifier as classifier_lib

    directory = tmp_path_factory.mktemp("classifiers")
    trained = classifier_lib.load_or_train("mnist5k", cache_dir=directory, steps=300)
    assert trained.test_accuracy > 0.8  # even 300 steps recognise most held-out digits
    return directory


def pytest_sessionfinish(session):
    if _OWNS_CACHE and not hasattr(session.config, "workerinput"):
        shutil.rmtree(os.environ["JAXGEN_COMPILATION_CACHE"], ignore_errors=True)
