"""Datasets by name, fed through Grain."""

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
    "load_arrays",
    "train_iterator",
]
