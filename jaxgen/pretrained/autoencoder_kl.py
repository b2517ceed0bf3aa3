"""diffusers' `AutoencoderKL` (Stable Diffusion's VAE: `vae/` of a pipeline folder) as
`jaxgen.models.autoencoder_kl.AutoencoderKL`, its key map, and the way back."""

import json
from pathlib import Path

import numpy as np
from flax import nnx

from jaxgen.models.autoencoder_kl import AutoencoderKL, Middle, ResnetBlock
from jaxgen.models.unet import AttentionBlock, Downsample, Upsample
from jaxgen.pretrained.configs import check_options, read_config
from jaxgen.pretrained.convert import (
    abstract_params,
    export_tensors,
    load_params,
    module_entries,
)
from jaxgen.pretrained.unet2d import attention_entries
from jaxgen.pretrained.weights import (
    PretrainedError,
    WeightsReader,
    weight_files,
    write_safetensors,
)

WHAT = "AutoencoderKL"
DEFAULTS = dict(
    in_channels=3, out_channels=3, down_block_types=("DownEncoderBlock2D",),
    up_block_types=("UpDecoderBlock2D",), block_out_channels=(64,), layers_per_block=1,
    act_fn="silu", latent_channels=4, norm_num_groups=32, sample_size=32,
    scaling_factor=0.18215, shift_factor=None, latents_mean=None, latents_std=None,
    force_upcast=True, use_quant_conv=True, use_post_quant_conv=True,
    mid_block_add_attention=True)
ALLOWED = {**{k: None for k in DEFAULTS}, "act_fn": ("silu",), "shift_factor": (None,),
           "latents_mean": (None,), "latents_std": (None,), "mid_block_add_attention": (True,)}
_RES = {"norm1": "norm1", "conv1": "conv1", "norm2": "norm2", "conv2": "conv2",
        "skip": "conv_shortcut"}


def vae_kwargs(config: dict) -> tuple[dict, float]:
    """(`AutoencoderKL` keyword arguments, the latents' scaling_factor) of a diffusers
    config."""
    check_options(config, ALLOWED, WHAT)
    c = {**DEFAULTS, **{k: v for k, v in config.items() if not k.startswith("_")}}
    levels = len(c["block_out_channels"])
    if list(c["down_block_types"]) != ["DownEncoderBlock2D"] * levels or list(
            c["up_block_types"]) != ["UpDecoderBlock2D"] * levels:
        raise PretrainedError(f"{WHAT}: block types {c['down_block_types']} / "
                              f"{c['up_block_types']} (jaxgen builds DownEncoderBlock2D and "
                              "UpDecoderBlock2D, one per entry of block_out_channels)")
    kwargs = {k: c[k] for k in ("in_channels", "out_channels", "layers_per_block",
                                "latent_channels", "norm_num_groups", "use_quant_conv",
                                "use_post_quant_conv")}
    kwargs["block_out_channels"] = tuple(c["block_out_channels"])
    return kwargs, float(c["scaling_factor"])


def vae_config(kwargs: dict, scaling_factor: float) -> dict:
    """The diffusers `AutoencoderKL` config of `AutoencoderKL(**kwargs)` (the inverse of
    `vae_kwargs`)."""
    levels = len(kwargs["block_out_channels"])
    return {**DEFAULTS, "_class_name": WHAT, **kwargs,
            "block_out_channels": list(kwargs["block_out_channels"]),
            "down_block_types": ["DownEncoderBlock2D"] * levels,
            "up_block_types": ["UpDecoderBlock2D"] * levels,
            "scaling_factor": float(scaling_factor)}


def export_vae(params: dict, kwargs: dict, scaling_factor: float, folder) -> Path:
    """Writes the parameters of `AutoencoderKL(**kwargs)` as a diffusers model folder
    (config.json + diffusion_pytorch_model.safetensors, fp32) that
    `diffusers.AutoencoderKL.from_pretrained(folder)` and `load_vae` read; returns it."""
    folder = Path(folder)
    model = nnx.eval_shape(lambda: AutoencoderKL(**kwargs, rngs=nnx.Rngs(0)))
    write_safetensors(export_tensors(params, key_map(model), what=WHAT),
                      folder / "diffusion_pytorch_model.safetensors")
    (folder / "config.json").write_text(json.dumps(vae_config(kwargs, scaling_factor),
                                                   indent=2))
    return folder


def _entries(module, path, key):
    if isinstance(module, ResnetBlock):
        for ours, theirs in _RES.items():
            if getattr(module, ours) is not None:
                yield from module_entries(getattr(module, ours), (*path, ours), f"{key}.{theirs}")
    elif isinstance(module, AttentionBlock):
        yield from attention_entries(module, path, key)
    elif isinstance(module, Middle):
        yield from _entries(module.res1, (*path, "res1"), f"{key}.resnets.0")
        yield from _entries(module.attn, (*path, "attn"), f"{key}.attentions.0")
        yield from _entries(module.res2, (*path, "res2"), f"{key}.resnets.1")
    elif isinstance(module, Downsample | Upsample):
        yield from module_entries(module.conv, (*path, "conv"), f"{key}.conv")
    else:
        yield from module_entries(module, path, key)


def key_map(vae: AutoencoderKL) -> list:
    entries = []
    for side, levels, blocks, sampler in (("encoder", vae.encoder.down, "down_blocks",
                                           "downsamplers"),
                                          ("decoder", vae.decoder.up, "up_blocks", "upsamplers")):
        part = getattr(vae, side)
        for name in ("conv_in", "norm_out", "conv_out"):
            theirs = "conv_norm_out" if name == "norm_out" else name
            entries += _entries(getattr(part, name), (side, name), f"{side}.{theirs}")
        entries += _entries(part.mid, (side, "mid"), f"{side}.mid_block")
        for i, level in enumerate(levels):
            for j, block in enumerate(level.resnets):
                entries += _entries(block, (side, "down" if side == "encoder" else "up", i,
                                            "resnets", j), f"{side}.{blocks}.{i}.resnets.{j}")
            if level.sampler is not None:
                entries += _entries(level.sampler, (side, "down" if side == "encoder" else "up",
                                                    i, "sampler"),
                                    f"{side}.{blocks}.{i}.{sampler}.0")
    for name in ("quant_conv", "post_quant_conv"):
        if getattr(vae, name) is not None:
            entries += _entries(getattr(vae, name), (name,), name)
    return entries


def load_vae(folder, *, dtype=np.float32, mesh=None, variant: str | None = None):
    """(AutoencoderKL kwargs, pure-dict params, scaling_factor) of the diffusers
    `AutoencoderKL` in `folder` (a pipeline's `vae/`)."""
    folder = Path(folder)
    kwargs, scaling = vae_kwargs(read_config(folder, (WHAT,)))
    shapes = abstract_params(lambda rngs: AutoencoderKL(**kwargs, rngs=rngs))
    model = nnx.eval_shape(lambda: AutoencoderKL(**kwargs, rngs=nnx.Rngs(0)))
    reader = WeightsReader(weight_files(folder, "diffusion_pytorch_model", variant))
    params = load_params(shapes, key_map(model), reader, what=WHAT, dtype=dtype, mesh=mesh)
    return kwargs, params, scaling
