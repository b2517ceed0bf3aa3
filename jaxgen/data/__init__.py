"""Datasets by name, fed through Grain; captions and their byte tokens."""

from jaxgen.data import captions, text
from jaxgen.data.pipeline import train_iterator
from jaxgen.data.sources import (
    DatasetInfo,
    DatasetNotPreparedError,
    UnknownDatasetError,
    known_names,
    load,
    load_arrays,
)

__all__ = [
    "DatasetInfo",
    "DatasetNotPreparedError",
    "UnknownDatasetError",
    "known_names",
    "load",
    "captions",
    "load_arrays",
    "text",
    "train_iterator",
]
