"""Sampling tools: latent interpolation, attribute vectors, arithmetic and walks."""

from jaxgen.sample import pictures
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
