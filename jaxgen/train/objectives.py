"""Model family name -> objective. An objective owns its model, its pure step and its sampling."""

from jaxgen.train.diffusion import DiffusionObjective
from jaxgen.train.gan import GANObjective
from jaxgen.train.vae import VAEObjective

_FAMILIES = {"vae": VAEObjective, "gan": GANObjective, "diffusion": DiffusionObjective}


def make(config, info=None):
    """Builds `config.family`'s objective, first checking the data against the model config."""
    if config.family not in _FAMILIES:
        raise ValueError(f"Unknown model family {config.family!r}; known: {sorted(_FAMILIES)}.")
    if info is not None and tuple(info.shape) != tuple(config.model.data_shape):
        raise ValueError(
            f"{info.name} examples have shape {list(info.shape)} but the model is configured for "
            f"{list(config.model.data_shape)}; set --set model.data_shape=\"{tuple(info.shape)}\" "
            "or pick a config made for this dataset."
        )
    return _FAMILIES[config.family](config)
