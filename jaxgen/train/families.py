"""Model family name -> objective, and what each family declares it can do."""

import functools

from jaxgen.train.clip import CLIPObjective
from jaxgen.train.diffusion import DiffusionObjective
from jaxgen.train.gan import GANObjective
from jaxgen.train.latent_diffusion import LatentDiffusionObjective
from jaxgen.train.objectives import (
    CapabilityError,
    Encoder,
    Evaluator,
    LatentSpace,
    PromptToImage,
    Sampler,
    supports,
)
from jaxgen.train.vae import VAEObjective

FAMILIES = {"vae": VAEObjective, "gan": GANObjective, "diffusion": DiffusionObjective,
            "clip": CLIPObjective, "ldm": LatentDiffusionObjective}

# How the commands' errors name each capability.
DESCRIBED = {Sampler: "a sampler", LatentSpace: "a latent space", Encoder: "an encoder",
             PromptToImage: "a text-to-image model", Evaluator: "an evaluation"}


def objective_class(family: str) -> type:
    if family not in FAMILIES:
        raise ValueError(f"Unknown model family {family!r}; known: {sorted(FAMILIES)}.")
    return FAMILIES[family]


def make(config, info=None):
    """Builds `config.family`'s objective, first checking the data against the model config."""
    cls = objective_class(config.family)
    shape = image_shape(config)
    if info is not None and tuple(info.shape) != shape:
        raise ValueError(
            f"{info.name} examples have shape {list(info.shape)} but the model is configured for "
            f"{list(shape)}; set --set {image_shape_key(config)}=\"{tuple(info.shape)}\" or pick "
            "a config made for this dataset."
        )
    return cls(config)


def image_shape_key(config) -> str:
    """The dotted config entry holding the shape of one training image (latent diffusion's
    U-Net sees latents: the images are its autoencoder's data)."""
    return objective_class(config.family).example_shape_key


def image_shape(config) -> tuple[int, ...]:
    """The shape of one training image of `config`."""
    return tuple(functools.reduce(getattr, image_shape_key(config).split("."), config))


def having(capability) -> list[str]:
    """The families that declare `capability`."""
    return [name for name, cls in FAMILIES.items() if supports(cls, capability)]


def require(family: str, capability, command: str) -> None:
    """Refuses, in one line, `command` on a run of `family` when it lacks `capability`."""
    if not supports(objective_class(family), capability):
        raise CapabilityError(f"{command} needs {DESCRIBED[capability]}, which "
                              f"{_listed(having(capability))} runs have; this is a {family} run")


def _listed(names: list[str]) -> str:
    return names[0] if len(names) == 1 else f"{', '.join(names[:-1])} and {names[-1]}"
