"""Unconditional (or class-conditional) pixel-space diffusion in diffusers' layout: a
`UNet2DModel` with its scheduler, read as a jaxgen diffusion run and written back.

A pipeline folder has `model_index.json`, `unet/` (config.json + weights) and `scheduler/`
(scheduler_config.json), as `huggingface-cli download google/ddpm-cifar10-32 --local-dir DIR`
leaves it; a single model folder (config.json + weights) is read with DDPM's scheduler.
"""

import json
import time
from pathlib import Path

import jax
import ml_collections
import numpy as np
from flax import nnx

from jaxgen import parallel
from jaxgen.models.unet import AttentionBlock
from jaxgen.pretrained import unet2d
from jaxgen.pretrained.convert import export_tensors
from jaxgen.pretrained.models import WEIGHTS, load_unet
from jaxgen.pretrained.scheduler import read_scheduler, scheduler_config, scheduler_settings
from jaxgen.pretrained.weights import PretrainedError, write_safetensors
from jaxgen.train.objectives import Run
from jaxgen.train.state import TrainState

PIPELINES = ("DDPMPipeline", "DDIMPipeline")


def _folders(path: Path) -> tuple[Path, Path | None]:
    """(unet folder, scheduler folder or None) of a pipeline or a single model folder."""
    if not path.is_dir():
        raise FileNotFoundError(f"{path} is not a directory; point --pretrained at a diffusers "
                                "folder (model_index.json, unet/, scheduler/) or a model folder")
    index = path / "model_index.json"
    if index.exists():
        pipeline = json.loads(index.read_text())
        name = pipeline.get("_class_name")
        if "unet" not in pipeline or "text_encoder" in pipeline:
            raise PretrainedError(f"{index}: a {name} is not an unconditional U-Net pipeline "
                                  f"({', '.join(PIPELINES)}); jaxgen reads a text-to-image "
                                  "pipeline's U-Net alone (jaxgen.pretrained.load_unet) so far")
        return path / "unet", (path / "scheduler") if "scheduler" in pipeline else None
    return path, None


def pretrained_config(kwargs: dict, scheduler: dict | None) -> ml_collections.ConfigDict:
    """The jaxgen diffusion config of a converted U-Net and its scheduler config (None:
    DDPM's linear schedule, epsilon prediction)."""
    diffusion, sample = scheduler_settings(scheduler or {"_class_name": "DDPMScheduler"})
    model = {"kind": "unet", **{k: list(v) if isinstance(v, tuple) else v
                                for k, v in kwargs.items()}}
    return ml_collections.ConfigDict({
        "family": "diffusion", "seed": 0, "batch_size": 1, "steps": 1,
        "model": model,
        "diffusion": {**diffusion, "weighting": "simple", "snr_gamma": 5.0,
                      "time_sampling": "uniform", "p_uncond": 0.0},
        "sample": {"sampler": "ddim", "steps": 50, "eta": 0.0, "flow_shift": 1.0,
                   "guidance": None, "guidance_interval": None, **sample},
        "optim": {"name": "adam", "learning_rate": 0.0, "warmup_steps": 0,
                  "min_lr_ratio": 1.0, "b1": 0.9, "b2": 0.999, "weight_decay": 0.0,
                  "grad_clip_norm": 0.0},
        "ema_decay": 0.0, "compute_dtype": "auto", "attention_implementation": "auto",
        "mesh": {"fsdp": 1, "min_fsdp_size": 2**14},
    })


def load_run(path, *, mesh=None, variant: str | None = None) -> Run:
    """A diffusers `UNet2DModel` pipeline (or model folder) opened as a jaxgen diffusion run:
    `commands.sample` and the objective's sampler take it like a trained run."""
    from jaxgen.train import families

    path = Path(path)
    unet_dir, scheduler_dir = _folders(path)
    scheduler = read_scheduler(scheduler_dir) if scheduler_dir else None
    mesh = mesh or parallel.make_mesh(1)
    start = time.perf_counter()
    kwargs, params = load_unet(unet_dir, mesh=mesh, variant=variant)
    config = pretrained_config(kwargs, scheduler)
    config.pretrained = {"path": str(path), "load_seconds": round(time.perf_counter() - start, 3)}
    state = TrainState(step=np.zeros((), np.int32), params=params, opt_state=None,
                       ema_params=None, rng=jax.random.PRNGKey(0))
    return Run(config, families.make(config), state, mesh)


def _attention_head_dims(unet) -> set[int | None]:
    """The channels per head of the attention blocks; {None} when each has one head."""
    blocks = [b for group in (*unet.down, unet.mid, *unet.up) for b in group
              if isinstance(b, AttentionBlock)]
    if all(b.attn.num_heads == 1 for b in blocks):
        return {None}  # diffusers' attention_head_dim null: one head of the block's width
    return {b.attn.query.out_features // b.attn.num_heads for b in blocks}


def _group_counts(unet) -> set[int]:
    return {m.num_groups for _, m in nnx.iter_graph(unet) if isinstance(m, nnx.GroupNorm)}


def export_pipeline(run: Run, to) -> Path:
    """Writes a jaxgen diffusion run's U-Net (its evaluation parameters: the EMA where kept)
    and schedule as a diffusers `DDPMPipeline` folder; returns it."""
    config = run.config
    if config.model.kind != "unet":
        raise PretrainedError(f"a {config.model.kind} denoiser has no diffusers UNet2DModel "
                              "counterpart; only U-Net runs export")
    from jaxgen.train.denoising import build_denoiser

    model = nnx.eval_shape(lambda: build_denoiser(config, nnx.Rngs(0)))
    kwargs = {k: getattr(config.model, k) for k in config.model if k != "kind"}
    kwargs.update(out_channels=model.conv_out.out_features,
                  norm_eps=model.norm_out.epsilon, freq_shift=model.freq_shift,
                  flip_sin_to_cos=model.flip_sin_to_cos)
    unet_config = unet2d.config_of(kwargs, _attention_head_dims(model), _group_counts(model))
    tensors = export_tensors(jax.device_get(run.params), unet2d.key_map(model), what=unet2d.WHAT)
    to = Path(to)
    write_safetensors(tensors, to / "unet" / f"{WEIGHTS}.safetensors")
    (to / "unet" / "config.json").write_text(json.dumps(unet_config, indent=2))
    (to / "scheduler").mkdir(parents=True, exist_ok=True)
    (to / "scheduler" / "scheduler_config.json").write_text(json.dumps(
        scheduler_config(config.diffusion.to_dict(), config.sample.to_dict()), indent=2))
    (to / "model_index.json").write_text(json.dumps({
        "_class_name": "DDPMPipeline", "unet": ["diffusers", unet2d.WHAT],
        "scheduler": ["diffusers", "DDPMScheduler"]}, indent=2))
    return to
