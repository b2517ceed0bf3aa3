"""Model family name -> objective. An objective owns its model, its pure step and its sampling."""

import functools

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
    shape = image_shape(config)
    if info is not None and tuple(info.shape) != shape:
        raise ValueError(
            f"{info.name} examples have shape {list(info.shape)} but the model is configured for "
            f"{list(shape)}; set --set {image_shape_key(config)}=\"{tuple(info.shape)}\" or pick "
            "a config made for this dataset."
        )
    return _FAMILIES[config.family](config)


def image_shape_key(config) -> str:
    """The dotted config entry holding the shape of one training image. Latent diffusion's
    U-Net sees latents: the images are its autoencoder's data."""
    return "ldm.autoencoder.model.data_shape" if config.family == "ldm" else "model.data_shape"


def image_shape(config) -> tuple[int, ...]:
    """The shape of one training image of `config`."""
    return tuple(functools.reduce(getattr, image_shape_key(config).split("."), config))
