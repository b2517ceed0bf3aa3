"""Sampling tools: latent interpolation, attribute vectors, arithmetic and walks; diffusion
samplers (`jaxgen.sample.diffusion`)."""

from jaxgen.sample import diffusion, pictures
from jaxgen.sample.latent import (
    arithmetic,
    attribute_vector,
    class_means,
    interpolate,
    lerp,
    loop_through,
    slerp,
    walk,
)

__all__ = [
    "diffusion",
    "arithmetic",
    "attribute_vector",
    "class_means",
    "interpolate",
    "lerp",
    "pictures",
    "loop_through",
    "slerp",
    "walk",
]
