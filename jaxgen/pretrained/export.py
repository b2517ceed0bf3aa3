"""jaxgen runs written in diffusers' format, each part that has a diffusers counterpart:

  diffusion run (U-Net)          a `DDPMPipeline` folder: unet/, scheduler/, model_index.json
  VAE run (model.kind "kl")      an `AutoencoderKL` model folder: config.json + weights
  latent diffusion run           its autoencoder as vae/ (scaling_factor: the run's latent
                                 scale); its text-conditioned U-Net and byte-level text tower
                                 have no diffusers counterpart and are named as not written
"""

import dataclasses
from pathlib import Path

import jax

from jaxgen.pretrained import ddpm
from jaxgen.pretrained.autoencoder_kl import export_vae
from jaxgen.pretrained.weights import PretrainedError
from jaxgen.train.objectives import Run

LDM_LEFT_OUT = (
    "the U-Net (jaxgen's cross-attention block is not diffusers' UNet2DConditionModel "
    "transformer)",
    "the text tower (a byte-level transformer, not a transformers CLIPTextModel)",
)


@dataclasses.dataclass(frozen=True)
class Exported:
    folder: Path
    loads_with: str  # the diffusers call that opens `folder`
    left_out: tuple[str, ...] = ()  # parts of the run with no diffusers counterpart, and why


def _autoencoder(objective, params, scaling_factor: float, folder: Path) -> Path:
    """Writes a VAE objective's "kl" autoencoder (params of the `KLVAE` it builds)."""
    config = objective.config
    model = config.model
    if model.kind != "kl":
        raise PretrainedError(f"a {model.kind!r} autoencoder has no diffusers counterpart; "
                              "train it with model.kind='kl' (Stable Diffusion's "
                              "AutoencoderKL, e.g. experiments/autoencoder_kl_mnist5k.py) to "
                              "export it")
    if model.likelihood != "gaussian":
        raise PretrainedError("this autoencoder decodes Bernoulli logits, and diffusers' "
                              "AutoencoderKL decodes images: train it with "
                              "model.likelihood='gaussian' to export it")
    network = objective.model(params).autoencoder
    kwargs = dict(in_channels=model.data_shape[-1], out_channels=model.data_shape[-1],
                  block_out_channels=tuple(model.channels),
                  layers_per_block=model.layers_per_block,
                  latent_channels=model.latent_channels, norm_num_groups=model.norm_groups,
                  use_quant_conv=network.quant_conv is not None,
                  use_post_quant_conv=network.post_quant_conv is not None)
    return export_vae(params["autoencoder"], kwargs, scaling_factor, folder)


def export_run(run: Run, to) -> Exported:
    """Writes `run` (its evaluation parameters: the EMA where kept) in diffusers' format under
    `to`; refuses, naming why, a run none of whose parts diffusers can express."""
    to, family = Path(to), run.config.family
    params = jax.device_get(run.params)
    if family == "diffusion":
        return Exported(ddpm.export_pipeline(run, to), "DDPMPipeline.from_pretrained")
    if family == "vae":
        scale = run.objective.latent_scale(params, run.config.data, run.config.seed)
        return Exported(_autoencoder(run.objective, params, scale, to),
                        "AutoencoderKL.from_pretrained")
    if family == "ldm":
        folder = _autoencoder(run.objective.autoencoder, params["autoencoder"],
                              float(params["latent_scale"]), to / "vae")
        return Exported(folder, "AutoencoderKL.from_pretrained", LDM_LEFT_OUT)
    raise PretrainedError(f"a {family} run has no diffusers counterpart; export writes "
                          "diffusion runs (U-Net), VAE runs of model.kind 'kl' and the "
                          "autoencoder of latent diffusion runs")
