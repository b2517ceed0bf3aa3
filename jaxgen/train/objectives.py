"""Model family name -> objective. An objective owns its model, its pure step and its sampling."""

from jaxgen.train.clip import CLIPObjective
from jaxgen.train.diffusion import DiffusionObjective
from jaxgen.train.gan import GANObjective
from jaxgen.train.latent_diffusion import LatentDiffusionObjective
from jaxgen.train.vae import VAEObjective

_FAMILIES = {"vae": VAEObjective, "gan": GANObjective, "diffusion": DiffusionObjective,
             "clip": CLIPObjective, "ldm": LatentDiffusionObjective}


def make(config, info=None):
    """Builds `config.family`'s objective, first checking the data against the model config."""
    if config.family not in _FAMILIES:
        raise ValueError(f"Unknown model family {config.family!r}; known: {sorted(_FAMILIES)}.")
    # Latent diffusion's U-Net sees latents: the images are its autoencoder's data.
    key = "ldm.autoencoder.model.data_shape" if config.family == "ldm" else "model.data_shape"
    shape = tuple(config.ldm.autoencoder.model.data_shape if config.family == "ldm"
                  else config.model.data_shape)
    if info is not None and tuple(info.shape) != shape:
        raise ValueError(
            f"{info.name} examples have shape {list(info.shape)} but the model is configured for "
            f"{list(shape)}; set --set {key}=\"{tuple(info.shape)}\" or pick a config made for "
            "this dataset."
        )
    return _FAMILIES[config.family](config)
