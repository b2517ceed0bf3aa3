"""Regenerates the PyTorch reference fixtures of `tests/test_pretrained.py` (needs torch,
diffusers and transformers: `pip install -e ".[bench]" transformers`):

    python -m tests.pretrained_fixtures

Each fixture is a folder under `tests/data/pretrained/` in diffusers' or transformers' layout,
built from a real config at reduced width (random weights, perturbed so no layer is at its
initial value) and saved by that library itself, with `reference.npz` beside it: inputs in
PyTorch's layout (NCHW images, token ids) and the model's outputs; for the pixel pipelines,
from fixed latents, the samples of diffusers' DDIM and DPM-Solver++ schedulers built from the
folder's scheduler config (DDIM with `use_clipped_model_output`, jaxgen's reading of a
clipped x0). Regenerating gives the same weights and references, except where the
tokenizer is trained (the tokenizers library breaks ties between equally frequent merges in
no fixed order, so its vocabulary and the text references may change together). The default
test run reads these without torch; where torch is installed, `test_pretrained` also
compares live.
"""

from pathlib import Path

import numpy as np

ROOT = Path(__file__).parent / "data" / "pretrained"

# DDPM's CIFAR-10 model (google/ddpm-cifar10-32) at an eighth of the width and two levels, and
# class-conditional: freq_shift 1, sines first, "SAME"-like downsampling, eps 1e-6, one head.
DDPM_LIKE = dict(
    unet=dict(sample_size=16, in_channels=3, out_channels=3, layers_per_block=1,
              block_out_channels=(16, 32), down_block_types=("DownBlock2D", "AttnDownBlock2D"),
              up_block_types=("AttnUpBlock2D", "UpBlock2D"), attention_head_dim=None,
              norm_num_groups=4, norm_eps=1e-6, downsample_padding=0, flip_sin_to_cos=False,
              freq_shift=1, num_class_embeds=5),
    scheduler=dict(num_train_timesteps=1000, beta_schedule="linear", beta_start=0.0001,
                   beta_end=0.02, clip_sample=True, variance_type="fixed_small",
                   prediction_type="epsilon"),
    dtype="float32", steps=10,
)
# diffusers' UNet2DModel defaults (those of its newer pixel models) with ADM's scale-shift
# norm and v-prediction on the cosine schedule, stored in fp16: cosines first, freq_shift 0,
# symmetric downsampling, eps 1e-5, 8-channel heads, attention at two levels.
ADM_LIKE = dict(
    unet=dict(sample_size=16, in_channels=1, out_channels=1, layers_per_block=1,
              block_out_channels=(16, 32, 32),
              down_block_types=("DownBlock2D", "AttnDownBlock2D", "AttnDownBlock2D"),
              up_block_types=("AttnUpBlock2D", "AttnUpBlock2D", "UpBlock2D"),
              attention_head_dim=8, norm_num_groups=4, attn_norm_num_groups=4,
              resnet_time_scale_shift="scale_shift"),
    scheduler=dict(num_train_timesteps=1000, beta_schedule="squaredcos_cap_v2",
                   prediction_type="v_prediction", timestep_spacing="trailing",
                   clip_sample=False),
    dtype="float16", steps=8,
)
FIXTURES = {"ddpm_like": DDPM_LIKE, "adm_like": ADM_LIKE}

# Stable Diffusion's U-Nets at reduced width and depth, from their configs' own options.
# SD 1.x (CompVis/stable-diffusion-v1-4, runwayml/stable-diffusion-v1-5): 8 heads at every
# level (attention_head_dim counts heads there), 1x1-conv projections, 768-d context.
SD1_UNET = dict(
    sample_size=16, in_channels=4, out_channels=4, layers_per_block=1,
    block_out_channels=(16, 32, 32),
    down_block_types=("CrossAttnDownBlock2D", "CrossAttnDownBlock2D", "DownBlock2D"),
    up_block_types=("UpBlock2D", "CrossAttnUpBlock2D", "CrossAttnUpBlock2D"),
    norm_num_groups=4, attention_head_dim=2, cross_attention_dim=32, downsample_padding=1,
    flip_sin_to_cos=True, freq_shift=0)
# SD 2.x (stabilityai/stable-diffusion-2-1): heads per level of one width (there 64 channels),
# linear projections, upcast attention, 1024-d context; stored in fp16.
SD2_UNET = dict(SD1_UNET, attention_head_dim=[1, 2, 2], cross_attention_dim=24,
                use_linear_projection=True, upcast_attention=True)
CONDITION_UNETS = {"tiny_sd/unet": (SD1_UNET, "float32"), "sd2_unet": (SD2_UNET, "float16")}
# SD's VAE (stabilityai/sd-vae-ft-mse, every SD 1.x/2.x pipeline's vae/): f = 8 from four
# levels, here at a sixteenth of the width or less and one block per level.
SD_VAE = dict(in_channels=3, out_channels=3, block_out_channels=(8, 16, 16, 16),
              down_block_types=("DownEncoderBlock2D",) * 4,
              up_block_types=("UpDecoderBlock2D",) * 4, layers_per_block=1, latent_channels=4,
              norm_num_groups=4, sample_size=32, scaling_factor=0.18215)


def _perturb(model, torch, scale=0.05):
    # Fresh diffusers models zero no layer, but norms start at 1 and 0: move every tensor so
    # a swapped scale and bias, or a missed transpose, shows in the outputs.
    generator = torch.Generator().manual_seed(1)
    with torch.no_grad():
        for p in model.parameters():
            p.add_(scale * torch.randn(p.shape, generator=generator))


def unet_fixture(name: str, spec: dict) -> None:
    import torch
    from diffusers import (
        DDIMScheduler,
        DDPMPipeline,
        DDPMScheduler,
        DPMSolverMultistepScheduler,
        UNet2DModel,
    )

    torch.manual_seed(0)
    unet = UNet2DModel(**spec["unet"]).eval()
    _perturb(unet, torch)
    if spec["dtype"] == "float16":  # stored in fp16: the reference is of the rounded weights
        unet = unet.half().float()
    folder = ROOT / name
    scheduler = DDPMScheduler(**spec["scheduler"])
    pipeline = DDPMPipeline(unet=unet, scheduler=scheduler)
    pipeline.save_pretrained(folder, safe_serialization=True)
    if spec["dtype"] == "float16":
        unet.half().save_pretrained(folder / "unet", safe_serialization=True)
        unet = unet.float()

    size, channels = spec["unet"]["sample_size"], spec["unet"]["in_channels"]
    generator = torch.Generator().manual_seed(2)
    x = torch.randn(3, channels, size, size, generator=generator)
    t = torch.tensor([0, 437, 999])
    classes = spec["unet"].get("num_class_embeds")
    labels = torch.tensor([0, 2, classes - 1]) if classes else None
    latents = torch.randn(2, channels, size, size, generator=generator)
    sample_labels = torch.tensor([1, 3]) if classes else None
    out = {"x": x.numpy(), "t": t.numpy()}
    with torch.no_grad():
        out["output"] = unet(x, t, class_labels=labels).sample.numpy()
        if labels is not None:
            out["labels"] = labels.numpy()
            out["sample_labels"] = sample_labels.numpy()
        out["latents"] = latents.numpy()
        # As a user swaps schedulers: from the config read back from the folder (a config
        # built in memory would let each scheduler's own defaults replace its default values).
        saved = DDPMScheduler.from_pretrained(folder / "scheduler").config
        for key, cls in (("ddim", DDIMScheduler), ("dpm_solver", DPMSolverMultistepScheduler)):
            sched = cls.from_config(saved)
            sched.set_timesteps(spec["steps"])
            sample = latents.clone()
            for step in sched.timesteps:
                model_out = unet(sample, step.expand(len(sample)),
                                 class_labels=sample_labels).sample
                # jaxgen's clipped x0 implies its eps (diffusers' use_clipped_model_output);
                # DPM-Solver has no clip_sample and ignores it.
                extra = {"use_clipped_model_output": True} if key == "ddim" else {}
                sample = sched.step(model_out, step, sample, **extra).prev_sample
            out[f"{key}_timesteps"] = sched.timesteps.numpy()
            out[f"{key}_sample"] = sample.numpy()
    np.savez(folder / "reference.npz", **out)
    print(f"wrote {folder}")


def condition_unet_fixture(name: str, config: dict, dtype: str) -> None:
    import torch
    from diffusers import UNet2DConditionModel

    torch.manual_seed(0)
    unet = UNet2DConditionModel(**config).eval()
    _perturb(unet, torch)
    folder = ROOT / name
    if dtype == "float16":
        unet = unet.half()
    unet.save_pretrained(folder, safe_serialization=True)
    unet = unet.float()
    generator = torch.Generator().manual_seed(2)
    size = config["sample_size"]
    x = torch.randn(2, config["in_channels"], size, size, generator=generator)
    t = torch.tensor([3, 801])
    context = torch.randn(2, 7, config["cross_attention_dim"], generator=generator)
    with torch.no_grad():
        output = unet(x, t, encoder_hidden_states=context).sample.numpy()
    np.savez(folder / "reference.npz", x=x.numpy(), t=t.numpy(), context=context.numpy(),
             output=output)
    print(f"wrote {folder}")


def vae_fixture(name: str, config: dict) -> None:
    import torch
    from diffusers import AutoencoderKL

    torch.manual_seed(0)
    vae = AutoencoderKL(**config).eval()
    _perturb(vae, torch)
    folder = ROOT / name
    vae.save_pretrained(folder, safe_serialization=True)
    generator = torch.Generator().manual_seed(2)
    images = torch.rand(2, 3, 32, 32, generator=generator) * 2 - 1
    latents = torch.randn(2, 4, 4, 4, generator=generator)
    with torch.no_grad():
        dist = vae.encode(images).latent_dist
        decoded = vae.decode(latents).sample
    np.savez(folder / "reference.npz", images=images.numpy(), mean=dist.mean.numpy(),
             log_var=dist.logvar.numpy(), latents=latents.numpy(), decoded=decoded.numpy())
    print(f"wrote {folder}")


# CLIP's text tower as SD 1.x's (openai/clip-vit-large-patch14: quick GELU) and SD 2.x's
# (OpenCLIP ViT-H: exact GELU, pad token "!") at reduced width, over a BPE vocabulary trained
# here in CLIP's format (the real one has 49,408 entries).
SD_TEXT = {"tiny_sd": dict(hidden_act="quick_gelu", pad="<|endoftext|>", width=32),
           "sd2_text": dict(hidden_act="gelu", pad="!", width=24)}
PROMPTS = ["a photograph of an astronaut riding a horse", "A  Photo of the CAT's toys!",
           "", "digits: 0123 and café", "an oil painting, trending on artstation, 4k"]
CORPUS = [
    "a photograph of an astronaut riding a horse on mars", "a photo of a cat sitting on a mat",
    "an oil painting of a castle by the sea at sunset", "a drawing of a dog's house",
    "the quick brown fox jumps over the lazy dog", "high quality, detailed, trending on art",
    "portrait of a woman with red hair, studio lighting", "a bowl of fruit on a wooden table",
    "city streets at night in the rain, neon lights", "a small boat on a calm lake, 4k"] * 4


def clip_tokenizer_files(folder: Path, pad: str) -> None:
    """vocab.json and merges.txt in CLIP's format, trained on `CORPUS` with the tokenizers
    library, and the special-tokens files of a pipeline's tokenizer/."""
    import json

    from tokenizers import Regex, Tokenizer, normalizers, pre_tokenizers
    from tokenizers.models import BPE
    from tokenizers.trainers import BpeTrainer

    tokenizer = Tokenizer(BPE(continuing_subword_prefix="", end_of_word_suffix="</w>",
                              unk_token="<|endoftext|>"))
    tokenizer.normalizer = normalizers.Sequence(
        [normalizers.NFC(), normalizers.Replace(Regex(r"\s+"), " "), normalizers.Lowercase()])
    tokenizer.pre_tokenizer = pre_tokenizers.Sequence([
        pre_tokenizers.Split(Regex(r"""'s|'t|'re|'ve|'m|'ll|'d|[\p{L}]+|[\p{N}]|"""
                                   r"""[^\s\p{L}\p{N}]+"""), behavior="removed", invert=True),
        pre_tokenizers.ByteLevel(add_prefix_space=False)])
    trainer = BpeTrainer(vocab_size=400, end_of_word_suffix="</w>",
                         initial_alphabet=pre_tokenizers.ByteLevel.alphabet(),
                         special_tokens=["!", "<|startoftext|>", "<|endoftext|>"])
    tokenizer.train_from_iterator(CORPUS, trainer)
    folder.mkdir(parents=True, exist_ok=True)
    tokenizer.model.save(str(folder))
    special = {"bos_token": "<|startoftext|>", "eos_token": "<|endoftext|>",
               "unk_token": "<|endoftext|>", "pad_token": pad}
    (folder / "special_tokens_map.json").write_text(json.dumps(special, indent=2))
    (folder / "tokenizer_config.json").write_text(json.dumps(
        {**special, "model_max_length": 77, "tokenizer_class": "CLIPTokenizer"}, indent=2))


def text_fixture(name: str, hidden_act: str, pad: str, width: int) -> None:
    import torch
    from transformers import CLIPTextConfig, CLIPTextModel, CLIPTokenizer

    folder = ROOT / name
    clip_tokenizer_files(folder / "tokenizer", pad)
    tokenizer = CLIPTokenizer.from_pretrained(folder / "tokenizer")
    torch.manual_seed(0)
    config = CLIPTextConfig(
        vocab_size=len(tokenizer), hidden_size=width, intermediate_size=2 * width,
        num_hidden_layers=2,
        num_attention_heads=4, max_position_embeddings=77, hidden_act=hidden_act,
        bos_token_id=tokenizer.bos_token_id, eos_token_id=tokenizer.eos_token_id,
        pad_token_id=tokenizer.pad_token_id)
    model = CLIPTextModel(config).eval()
    _perturb(model, torch)
    model.save_pretrained(folder / "text_encoder", safe_serialization=True)
    # As diffusers' StableDiffusionPipeline tokenizes a prompt.
    ids = tokenizer(PROMPTS, padding="max_length", max_length=77, truncation=True,
                    return_tensors="pt").input_ids
    with torch.no_grad():
        out = model(ids)
    np.savez(folder / "text_encoder" / "reference.npz", prompts=np.array(PROMPTS), ids=ids.numpy(),
             hidden=out.last_hidden_state.numpy(), pooled=out.pooler_output.numpy())
    print(f"wrote {folder}")


def pipeline_fixture(name: str) -> None:
    """Stable Diffusion 1.5's pipeline of the tiny parts above (SD 1.5's own scheduler
    config) and, from fixed latents, its images by DPM-Solver++ and DDIM."""
    import json

    import torch
    from diffusers import (
        AutoencoderKL,
        DDIMScheduler,
        DPMSolverMultistepScheduler,
        PNDMScheduler,
        StableDiffusionPipeline,
        UNet2DConditionModel,
    )
    from transformers import CLIPTextModel, CLIPTokenizer

    folder = ROOT / name
    (folder / "scheduler").mkdir(parents=True, exist_ok=True)
    (folder / "scheduler" / "scheduler_config.json").write_text(json.dumps(SD15_SCHEDULER,
                                                                           indent=2))
    pipe = StableDiffusionPipeline(
        vae=AutoencoderKL.from_pretrained(folder / "vae"),
        text_encoder=CLIPTextModel.from_pretrained(folder / "text_encoder"),
        tokenizer=CLIPTokenizer.from_pretrained(folder / "tokenizer"),
        unet=UNet2DConditionModel.from_pretrained(folder / "unet"),
        scheduler=PNDMScheduler.from_pretrained(folder / "scheduler"), safety_checker=None,
        feature_extractor=None, requires_safety_checker=False)
    (folder / "model_index.json").write_text(json.dumps(
        {k: v for k, v in dict(pipe.config).items() if not k.startswith("_")} | {
            "_class_name": "StableDiffusionPipeline"}, indent=2, default=list))
    prompts = ["a photograph of an astronaut riding a horse", "a bowl of fruit"]
    latents = torch.randn(2, 4, 16, 16, generator=torch.Generator().manual_seed(4))
    out = {"prompts": np.array(prompts), "latents": latents.numpy()}
    for key, cls in (("dpm_solver", DPMSolverMultistepScheduler), ("ddim", DDIMScheduler)):
        pipe.scheduler = cls.from_config(pipe.scheduler.config)
        images = pipe(prompts, height=128, width=128, num_inference_steps=5,
                      guidance_scale=3.0, latents=latents.clone(), output_type="np").images
        out[key] = images
    np.savez(folder / "reference.npz", **out)
    print(f"wrote {folder}")


# Stable Diffusion 1.5's scheduler/scheduler_config.json (PNDM, "leading" by default, offset 1).
SD15_SCHEDULER = {
    "_class_name": "PNDMScheduler", "_diffusers_version": "0.6.0", "beta_end": 0.012,
    "beta_schedule": "scaled_linear", "beta_start": 0.00085, "num_train_timesteps": 1000,
    "set_alpha_to_one": False, "skip_prk_steps": True, "steps_offset": 1,
    "trained_betas": None, "clip_sample": False}


def main() -> None:
    for name, spec in FIXTURES.items():
        unet_fixture(name, spec)
    for name, (config, dtype) in CONDITION_UNETS.items():
        condition_unet_fixture(name, config, dtype)
    vae_fixture("tiny_sd/vae", SD_VAE)
    for name, spec in SD_TEXT.items():
        text_fixture(name, **spec)
    pipeline_fixture("tiny_sd")


if __name__ == "__main__":
    main()
