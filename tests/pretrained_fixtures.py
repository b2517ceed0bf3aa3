"""Regenerates the PyTorch reference fixtures of `tests/test_pretrained.py` (needs torch and
diffusers: `pip install -e ".[bench]"`):

    python -m tests.pretrained_fixtures

Each fixture is a diffusers pipeline folder under `tests/data/pretrained/` built from a real
config at reduced width (random weights, perturbed so no layer is at its initial value) and
saved by diffusers itself, with `reference.npz` beside it: U-Net inputs in PyTorch's NCHW
layout and the model's outputs, and from fixed latents the samples of diffusers' DDIM and
DPM-Solver++ schedulers built from the folder's scheduler config (DDIM with
`use_clipped_model_output`, jaxgen's reading of a clipped x0). The default test run reads
these without torch; where torch is installed, `test_pretrained` also compares live.
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


def main() -> None:
    for name, spec in FIXTURES.items():
        unet_fixture(name, spec)


if __name__ == "__main__":
    main()
