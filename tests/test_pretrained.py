"""diffusers checkpoints in and out (`jaxgen.pretrained`): parity with the PyTorch reference
on fixtures saved by diffusers (`tests/pretrained_fixtures.py` regenerates them), strictness
about every key and option, export round trips, and the CLI."""

import json
import shutil
from pathlib import Path

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from flax import nnx
from safetensors.numpy import load_file, save_file

from jaxgen import pretrained
from jaxgen.models.unet import UNet
from jaxgen.pretrained import PretrainedError
from tests import helpers
from tests.pretrained_fixtures import FIXTURES, ROOT, SD15_SCHEDULER

NAMES = sorted(FIXTURES)


def _unet(folder):
    kwargs, params = pretrained.load_unet(folder)
    graphdef = nnx.graphdef(nnx.eval_shape(lambda: UNet(**kwargs, rngs=nnx.Rngs(0))))
    return nnx.merge(graphdef, params)


def _forward(model, ref):
    labels = ref["labels"] if "labels" in ref else None
    out = model(jnp.asarray(ref["x"].transpose(0, 2, 3, 1)), ref["t"].astype(np.float32),
                labels)
    return np.asarray(out).transpose(0, 3, 1, 2)


def _close(out, expected, rel=1e-4):
    """Elementwise within `rel` of the output's scale (its largest magnitude)."""
    scale = np.abs(expected).max()
    assert np.abs(out - expected).max() <= rel * scale, (np.abs(out - expected).max(), scale)


@pytest.mark.parametrize("name", NAMES)
def test_unet_matches_diffusers(name):
    ref = np.load(ROOT / name / "reference.npz")
    _close(_forward(_unet(ROOT / name / "unet"), ref), ref["output"])


@pytest.mark.parametrize("name", NAMES)
@pytest.mark.parametrize("sampler", ["ddim", "dpm_solver"])
def test_sampling_matches_diffusers_schedulers(name, sampler):
    """From the same latents, jaxgen's sampler on the converted run visits diffusers'
    timesteps and ends where diffusers' scheduler does."""
    ref = np.load(ROOT / name / "reference.npz")
    run = pretrained.load_run(ROOT / name)
    steps = FIXTURES[name]["steps"]
    denoising = run.objective.denoising
    np.testing.assert_array_equal(denoising.grid(steps, sampler), ref[f"{sampler}_timesteps"])
    if sampler == "dpm_solver":  # diffusers' DPM-Solver has no clip_sample
        run.config.sample.clip_x0 = None
    labels = jnp.asarray(ref["sample_labels"]) if "sample_labels" in ref else None
    x_T = jnp.asarray(ref["latents"].transpose(0, 2, 3, 1))
    out = run.objective.generate(run.params, x_T, jax.random.PRNGKey(0), labels,
                                 sampler=sampler, steps=steps)
    _close(np.asarray(out).transpose(0, 3, 1, 2), ref[f"{sampler}_sample"], rel=2e-4)


@pytest.mark.parametrize("name", ["tiny_sd/unet", "sd2_unet"])
def test_stable_diffusion_unet_matches_diffusers(name):
    """UNet2DConditionModel as SD 1.x (conv projections, a head count) and SD 2.x (linear
    projections, heads per level, upcast attention, fp16 weights) build it."""
    ref = np.load(ROOT / name / "reference.npz")
    model = _unet(ROOT / name)
    out = model(jnp.asarray(ref["x"].transpose(0, 2, 3, 1)), ref["t"].astype(np.float32),
                None, jnp.asarray(ref["context"]))
    _close(np.asarray(out).transpose(0, 3, 1, 2), ref["output"])


def test_stable_diffusion_vae_matches_diffusers(tmp_path):
    """AutoencoderKL: the encoder's mean and log-variance and the decoder, elementwise; the
    old attention names of converted SD checkpoints read the same."""
    from jaxgen.models.autoencoder_kl import AutoencoderKL
    from jaxgen.pretrained.autoencoder_kl import load_vae

    ref = np.load(ROOT / "tiny_sd" / "vae" / "reference.npz")

    def check(folder):
        kwargs, params, scaling = load_vae(folder)
        assert scaling == 0.18215
        graphdef = nnx.graphdef(nnx.eval_shape(lambda: AutoencoderKL(**kwargs,
                                                                      rngs=nnx.Rngs(0))))
        vae = nnx.merge(graphdef, params)
        mean, log_var = vae.encode(jnp.asarray(ref["images"].transpose(0, 2, 3, 1)))
        _close(np.asarray(mean).transpose(0, 3, 1, 2), ref["mean"])
        _close(np.asarray(log_var).transpose(0, 3, 1, 2), ref["log_var"])
        decoded = vae.decode(jnp.asarray(ref["latents"].transpose(0, 2, 3, 1)))
        _close(np.asarray(decoded).transpose(0, 3, 1, 2), ref["decoded"])

    check(ROOT / "tiny_sd" / "vae")
    folder = Path(shutil.copytree(ROOT / "tiny_sd" / "vae", tmp_path / "vae"))
    path = folder / "diffusion_pytorch_model.safetensors"
    tensors = load_file(str(path))
    for key in [k for k in tensors if ".attentions." in k]:
        tensors[key.replace(".to_q.", ".query.").replace(".to_k.", ".key.").replace(
            ".to_v.", ".value.").replace(".to_out.0.", ".proj_attn.")] = tensors.pop(key)
    save_file(tensors, str(path))
    check(folder)
    config = json.loads((folder / "config.json").read_text())
    (folder / "config.json").write_text(json.dumps({**config, "latents_mean": [0.0] * 4}))
    with pytest.raises(PretrainedError, match="latents_mean"):
        load_vae(folder)


@pytest.mark.parametrize("name", ["tiny_sd", "sd2_text"])
def test_clip_text_encoder_and_tokenizer_match_transformers(name):
    """The prompts of the fixture tokenized as diffusers' pipelines do (padded to 77 with the
    folder's pad token) and encoded: the hidden states SD attends to and the pooled
    end-of-text state, elementwise."""
    from jaxgen.models.clip_text import CLIPTextModel
    from jaxgen.pretrained.clip_text import CLIPTokenizer, load_text_encoder

    ref = np.load(ROOT / name / "text_encoder" / "reference.npz")
    tokenizer = CLIPTokenizer(ROOT / name / "tokenizer")
    ids = tokenizer(list(ref["prompts"]))
    np.testing.assert_array_equal(ids, ref["ids"])
    kwargs, params = load_text_encoder(ROOT / name / "text_encoder")
    graphdef = nnx.graphdef(nnx.eval_shape(lambda: CLIPTextModel(**kwargs, rngs=nnx.Rngs(0))))
    hidden, pooled = nnx.merge(graphdef, params)(jnp.asarray(ids))
    _close(np.asarray(hidden), ref["hidden"])
    _close(np.asarray(pooled), ref["pooled"])
    with pytest.raises(ValueError, match="tokens; the text encoder takes 75"):
        tokenizer(["a cat " * 60])
    assert tokenizer(["a cat " * 60], truncate=True).shape == (1, 77)


def test_clip_text_encoder_checks_its_checkpoint(tmp_path):
    from jaxgen.pretrained.clip_text import CLIPTokenizer, load_text_encoder

    folder = Path(shutil.copytree(ROOT / "tiny_sd", tmp_path / "tiny_sd"))
    weights = folder / "text_encoder" / "model.safetensors"
    tensors = load_file(str(weights))
    # Checkpoints saved before transformers 5 prefix text_model. and keep the position ids.
    tensors = {f"text_model.{k}": v for k, v in tensors.items()}
    tensors["text_model.embeddings.position_ids"] = np.arange(77)[None]
    save_file(tensors, str(weights))
    load_text_encoder(folder / "text_encoder")
    tensors["text_model.embeddings.position_ids"] = np.zeros((1, 77), np.int64)
    save_file(tensors, str(weights))
    with pytest.raises(PretrainedError, match="position_ids"):
        load_text_encoder(folder / "text_encoder")
    config = folder / "text_encoder" / "config.json"
    config.write_text(json.dumps({**json.loads(config.read_text()), "hidden_act": "relu"}))
    with pytest.raises(PretrainedError, match="hidden_act"):
        load_text_encoder(folder / "text_encoder")
    (folder / "tokenizer" / "merges.txt").unlink()
    with pytest.raises(PretrainedError, match="merges.txt is missing"):
        CLIPTokenizer(folder / "tokenizer")


def test_live_tokenizer_parity_with_transformers():
    transformers = pytest.importorskip("transformers")
    from jaxgen.pretrained.clip_text import CLIPTokenizer

    prompts = ["Hello,  World!!", "it's a dog's life", "naïve café 42", "emoji 🙂 text",
               "<|endoftext|> inside", "tabs\tand\nnewlines"]
    for name in ("tiny_sd", "sd2_text"):
        theirs = transformers.CLIPTokenizer.from_pretrained(ROOT / name / "tokenizer")
        expected = theirs(prompts, padding="max_length", max_length=77).input_ids
        np.testing.assert_array_equal(CLIPTokenizer(ROOT / name / "tokenizer")(prompts),
                                      expected)


def test_stable_diffusion_unet_options_are_checked(tmp_path):
    folder = Path(shutil.copytree(ROOT / "tiny_sd" / "unet", tmp_path / "unet"))
    path = folder / "config.json"
    config = json.loads(path.read_text())
    for option, value in [("addition_embed_type", "text_time"), ("time_cond_proj_dim", 256),
                          ("class_embed_type", "projection")]:
        path.write_text(json.dumps({**config, option: value}))
        with pytest.raises(PretrainedError, match=f"unsupported {option}="):
            pretrained.load_unet(folder)
    path.write_text(json.dumps({**config, "controlnet_conditioning_channel_order": "rgb"}))
    with pytest.raises(PretrainedError, match="unsupported option controlnet_conditioning"):
        pretrained.load_unet(folder)
    path.write_text(json.dumps({**config, "attention_head_dim": [1, 2, 4]}))
    with pytest.raises(PretrainedError, match="attention heads"):
        pretrained.load_unet(folder)


def test_config_maps_ddpm_cifar10():
    """The released google/ddpm-cifar10-32 config is jaxgen's DDPM CIFAR-10 U-Net."""
    from benchmarks.torch_ref import DDPM_CIFAR10 as config
    from jaxgen.models.unet import DDPM_CIFAR10

    kwargs = pretrained.unet2d.unet_kwargs({"_class_name": "UNet2DModel", **config})
    for key, value in DDPM_CIFAR10.items():
        assert kwargs[key] == value or key == "dropout", key
    assert kwargs["downsample_padding"] == 0 and kwargs["freq_shift"] == 1.0
    assert not kwargs["flip_sin_to_cos"]


def _copy(name, tmp_path) -> Path:
    return Path(shutil.copytree(ROOT / name, tmp_path / name))


def _edit_config(folder, **changes):
    path = folder / "unet" / "config.json"
    path.write_text(json.dumps({**json.loads(path.read_text()), **changes}))


def _edit_weights(folder, edit):
    path = folder / "unet" / "diffusion_pytorch_model.safetensors"
    tensors = load_file(str(path))
    edit(tensors)
    save_file(tensors, str(path))


@pytest.mark.parametrize("option,value", [
    ("addition_embed_type", "text_time"),  # SDXL's
    ("time_embedding_type", "fourier"),
    ("class_embed_type", "timestep"),
])
def test_unknown_architecture_option_is_refused(tmp_path, option, value):
    folder = _copy("ddpm_like", tmp_path)
    _edit_config(folder, **{option: value})
    with pytest.raises(PretrainedError, match=option):
        pretrained.load_run(folder)


def test_missing_extra_and_misshapen_tensors_are_refused(tmp_path):
    key = "mid_block.attentions.0.to_q.weight"
    folder = _copy("ddpm_like", tmp_path)
    _edit_weights(folder, lambda t: t.pop(key))
    with pytest.raises(PretrainedError, match=f"lacks tensor {key}"):
        pretrained.load_run(folder)
    folder = _copy("adm_like", tmp_path)
    _edit_weights(folder, lambda t: t.update({"lora.down.weight": np.zeros((2, 2), np.float16)}))
    with pytest.raises(PretrainedError, match="does not use, e.g. lora.down.weight"):
        pretrained.load_run(folder)
    folder = tmp_path / "third"
    shutil.copytree(ROOT / "ddpm_like", folder)
    _edit_weights(folder, lambda t: t.update({key: t[key][:, :-1]}))
    with pytest.raises(PretrainedError, match=f"{key} has shape"):
        pretrained.load_run(folder)


def test_missing_files_are_named(tmp_path):
    folder = _copy("ddpm_like", tmp_path)
    (folder / "unet" / "config.json").unlink()
    with pytest.raises(PretrainedError, match="config.json is missing"):
        pretrained.load_run(folder)
    folder = tmp_path / "pickled"
    shutil.copytree(ROOT / "ddpm_like", folder)
    weights = folder / "unet" / "diffusion_pytorch_model.safetensors"
    weights.rename(weights.with_suffix(".bin"))
    with pytest.raises(PretrainedError, match="pickle"):
        pretrained.load_run(folder)
    with pytest.raises(FileNotFoundError, match="not a directory"):
        pretrained.load_run(tmp_path / "nowhere")


def test_old_attention_names_are_read(tmp_path):
    """Checkpoints saved before diffusers 0.15 name attention query/key/value/proj_attn."""
    folder = _copy("ddpm_like", tmp_path)
    renames = {"to_q": "query", "to_k": "key", "to_v": "value", "to_out.0": "proj_attn"}

    def rename(tensors):
        for key in [k for k in tensors if ".attentions." in k]:
            for new, old in renames.items():
                if f".{new}." in key:
                    tensors[key.replace(f".{new}.", f".{old}.")] = tensors.pop(key)

    _edit_weights(folder, rename)
    ref = np.load(ROOT / "ddpm_like" / "reference.npz")
    _close(_forward(_unet(folder / "unet"), ref), ref["output"])


def test_loaded_parameters_are_placed_on_the_mesh():
    from jaxgen import parallel

    mesh = parallel.make_mesh(fsdp=2)
    _, params = pretrained.load_unet(ROOT / "ddpm_like" / "unet", mesh=mesh)
    leaves = jax.tree.leaves(params)
    assert all(leaf.sharding.mesh.size == 8 for leaf in leaves)
    assert any(leaf.sharding.spec != () and "fsdp" in leaf.sharding.spec for leaf in leaves)
    _, bf16 = pretrained.load_unet(ROOT / "ddpm_like" / "unet", dtype=jnp.bfloat16)
    assert {leaf.dtype for leaf in jax.tree.leaves(bf16)} == {jnp.dtype(jnp.bfloat16)}


@pytest.mark.parametrize("name", NAMES)
def test_export_writes_the_checkpoint_back(tmp_path, name):
    """Read then exported, a diffusers folder comes back tensor for tensor (fp32 where it was
    fp16: jaxgen keeps fp32 parameters) with a config that builds the same U-Net."""
    run = pretrained.load_run(ROOT / name)
    out = pretrained.export_run(run, tmp_path / "exported").folder
    original = load_file(str(ROOT / name / "unet" / "diffusion_pytorch_model.safetensors"))
    exported = load_file(str(out / "unet" / "diffusion_pytorch_model.safetensors"))
    assert sorted(original) == sorted(exported)
    for key, value in original.items():
        np.testing.assert_array_equal(exported[key], value.astype(np.float32))
    read = pretrained.unet2d.unet_kwargs(json.loads((out / "unet" / "config.json").read_text()))
    assert read == pretrained.unet2d.unet_kwargs(
        json.loads((ROOT / name / "unet" / "config.json").read_text()))
    again = pretrained.load_run(out)
    assert again.config.diffusion.to_dict() == run.config.diffusion.to_dict()
    np.testing.assert_array_equal(again.objective.denoising.grid(10),
                                  run.objective.denoising.grid(10))


@pytest.fixture(scope="module")
def trained_run(tmp_path_factory):
    """A tiny unconditional diffusion run trained by jaxgen, its GroupNorms set to one group
    count so diffusers' UNet2DModel can express it."""
    workdir = tmp_path_factory.mktemp("runs") / "diffusion"
    result = helpers.run_cli(["train", *helpers.cli_args(
        "model.num_classes=0", "model.norm_groups=4", "model.head_channels=8",
        config=helpers.DIFFUSION_CONFIG, tiny=helpers.TINY_DIFFUSION),
        "--workdir", str(workdir)])
    assert result.returncode == 0, result.stderr
    return workdir


def test_export_of_a_trained_run_computes_the_same(tmp_path, trained_run):
    from jaxgen.train.run import load_run

    run = load_run(trained_run)
    out = pretrained.export_run(run, tmp_path / "exported").folder
    again = pretrained.load_run(out)
    x = jax.random.normal(jax.random.PRNGKey(0), (2, *run.objective.data_shape))
    t = jnp.array([3.0, 900.0])
    ours = run.objective.denoiser(run.params)(x, t)
    back = again.objective.denoiser(again.params)(x, t)
    np.testing.assert_allclose(np.asarray(back), np.asarray(ours), atol=1e-6)
    torch = pytest.importorskip("torch")
    diffusers = pytest.importorskip("diffusers")
    unet = diffusers.UNet2DModel.from_pretrained(out / "unet").eval()
    with torch.no_grad():
        theirs = unet(torch.from_numpy(np.array(x).transpose(0, 3, 1, 2)),
                      torch.tensor([3, 900])).sample.numpy()
    _close(theirs.transpose(0, 2, 3, 1), np.asarray(ours))


def test_export_refuses_what_diffusers_cannot_express(tmp_path, trained_run):
    from jaxgen.train.run import load_run

    run = load_run(trained_run)
    run.config.model.norm_groups = None  # 4 groups at 16 channels, 8 at 32
    with pytest.raises(PretrainedError, match="norm_groups"):
        pretrained.export_run(run, tmp_path / "x")
    run.config.model.kind = "dit"
    with pytest.raises(PretrainedError, match="dit denoiser has no diffusers"):
        pretrained.export_run(run, tmp_path / "x")


def test_cli_samples_a_pretrained_pipeline(tmp_path):
    out = tmp_path / "samples.npz"
    result = helpers.run_cli(["sample", "--pretrained", str(ROOT / "adm_like"), "--num", "8",
                              "--steps", "4", "--sampler", "dpm_solver", "--out", str(out)])
    assert result.returncode == 0, result.stderr
    images = np.load(out)["images"]
    assert images.shape == (8, 16, 16, 1) and images.dtype == np.uint8
    assert out.with_suffix(".png").exists()
    result = helpers.run_cli(["sample", "--pretrained", str(tmp_path / "none")])
    assert result.returncode == 1 and "not a directory" in result.stderr


def test_live_parity_with_diffusers(tmp_path):
    """Where torch and diffusers are installed: a freshly built model, compared directly."""
    torch = pytest.importorskip("torch")
    diffusers = pytest.importorskip("diffusers")
    torch.manual_seed(3)
    config = {**FIXTURES["adm_like"]["unet"], "num_class_embeds": 3, "dropout": 0.1}
    unet = diffusers.UNet2DModel(**config).eval()
    unet.save_pretrained(tmp_path / "unet")
    x, t = torch.randn(2, 1, 16, 16), torch.tensor([5, 500])
    labels = torch.tensor([0, 2])
    with torch.no_grad():
        theirs = unet(x, t, class_labels=labels).sample.numpy()
    ours = _forward(_unet(tmp_path / "unet"), {"x": x.numpy(), "t": t.numpy(),
                                              "labels": labels.numpy()})
    _close(ours, theirs)


def test_stable_diffusion_scheduler_config():
    """The timesteps and noise levels diffusers 0.42 gives SD 1.5's scheduler config, once as
    DDIMScheduler and once as DPMSolverMultistepScheduler (`from_config`, 25 steps)."""
    from jaxgen.train.denoising import Denoising

    kwargs = pretrained.unet2d.unet_kwargs(json.loads(
        (ROOT / "ddpm_like" / "unet" / "config.json").read_text()))
    config = pretrained.ddpm.pretrained_config(kwargs, SD15_SCHEDULER)
    assert config.diffusion.parameterization == "eps" and config.sample.clip_x0 is None
    denoising = Denoising(config)
    np.testing.assert_array_equal(denoising.grid(25, "ddim"), np.arange(961, 0, -40))
    dpm = [999, 959, 919, 879, 839, 799, 759, 719, 679, 639, 599, 559, 519, 480, 440, 400, 360,
           320, 280, 240, 200, 160, 120, 80, 40]
    np.testing.assert_array_equal(denoising.grid(25, "dpm_solver"), dpm)
    np.testing.assert_allclose(denoising.schedule.alphas_cumprod[np.array([0, 500, 999])],
                               [0.9991499781608582, 0.27633246779441833, 0.00466009508818388],
                               rtol=1e-6)
    with pytest.raises(PretrainedError, match="rescale_betas_zero_snr"):
        pretrained.scheduler_settings({**SD15_SCHEDULER, "rescale_betas_zero_snr": True})
    with pytest.raises(PretrainedError, match="beta_schedule"):
        pretrained.scheduler_settings({**SD15_SCHEDULER, "beta_schedule": "sigmoid"})


@pytest.mark.slow
def test_sd15_unet_at_full_size(tmp_path):
    """SD 1.5's 860M-parameter U-Net: converted from diffusers, one forward at 64x64 latents
    agrees with PyTorch's, and loading never held a second copy of the weights on the host
    (`python -m benchmarks.pretrained_load` prints the times and memory)."""
    pytest.importorskip("torch")
    pytest.importorskip("diffusers")
    from benchmarks.pretrained_load import measure

    row = measure(64, tmp_path)
    assert row["parameters"] == 859_520_964
    assert row["max_abs_diff"] <= 1e-4 * row["output_scale"], row
    # One fp32 copy is 3.2 GiB; the process also holds XLA and the compiled forward.
    assert row["peak_rss_gib_after_load"] < 1.5 * row["weights_gib"] + 1.0, row


@pytest.mark.parametrize("sampler", ["dpm_solver", "ddim"])
def test_text_to_image_matches_stable_diffusion_pipeline(sampler):
    """The whole pipeline from the same latents, SD 1.5's scheduler config and 5 steps at
    diffusers' guidance_scale 3 (jaxgen's w = 2): diffusers' StableDiffusionPipeline images
    to within a grey level."""
    from jaxgen.pipeline import TextToImage

    ref = np.load(ROOT / "tiny_sd" / "reference.npz")
    pipe = TextToImage.from_pretrained(ROOT / "tiny_sd")
    images = pipe(list(ref["prompts"]), guidance=2.0, sampler=sampler, steps=5, height=128,
                  width=128, latents=ref["latents"].transpose(0, 2, 3, 1))
    expected = np.round(ref[sampler] * 255).astype(np.int32)
    assert images.shape == (2, 128, 128, 3) and images.dtype == np.uint8
    assert np.abs(images.astype(np.int32) - expected).max() <= 1
    again = pipe(list(ref["prompts"]), guidance=5.0, sampler=sampler, steps=5, height=128,
                 width=128, latents=ref["latents"].transpose(0, 2, 3, 1))
    assert len(pipe._programs) == 1 and np.abs(again.astype(int) - images).max() > 0


@pytest.mark.slow
def test_text_to_image_in_bfloat16():
    """bf16 weights and compute: the pipeline's images stay within a few grey levels of
    diffusers' fp32 ones (measured: max 7, mean 0.55 of 255), and differ from jaxgen's fp32
    images by more than fp32's one level, so the bf16 path is the one that ran."""
    from jaxgen.pipeline import TextToImage

    ref = np.load(ROOT / "tiny_sd" / "reference.npz")
    pipe = TextToImage.from_pretrained(ROOT / "tiny_sd", dtype="bfloat16",
                                       param_dtype=jnp.bfloat16)
    assert {leaf.dtype for leaf in jax.tree.leaves(pipe.params)} == {jnp.dtype(jnp.bfloat16)}
    images = pipe(list(ref["prompts"]), guidance=2.0, sampler="dpm_solver", steps=5,
                  height=128, width=128, latents=ref["latents"].transpose(0, 2, 3, 1))
    assert images.dtype == np.uint8
    error = np.abs(images.astype(np.int32) - np.round(ref["dpm_solver"] * 255).astype(np.int32))
    assert 1 < error.max() <= 16 and error.mean() <= 1.5, (error.max(), error.mean())


@pytest.mark.slow
def test_cli_generates_with_a_stable_diffusion_folder(tmp_path):
    out = tmp_path / "astronaut.png"
    result = helpers.run_cli(["generate", "--pretrained", str(ROOT / "tiny_sd"),
                              "an astronaut riding a horse", "a bowl of fruit", "--num", "4",
                              "--height", "64", "--width", "96", "--steps", "3",
                              "--guidance", "2", "--out", str(out)])
    assert result.returncode == 0, result.stderr
    saved = np.load(out.with_suffix(".npz"))
    assert saved["images"].shape == (4, 64, 96, 3) and out.exists()
    assert list(saved["prompts"][:2]) == ["an astronaut riding a horse", "a bowl of fruit"]
    result = helpers.run_cli(["generate", "--pretrained", str(ROOT / "tiny_sd"), "a cat",
                              "--height", "50"])
    assert result.returncode == 1 and "multiples of 32" in result.stderr
