"""Input checks shared by the metrics: one clear ValueError per kind of bad input."""

import jax
import jax.numpy as jnp
import numpy as np


def features_array(features, name: str) -> jax.Array:
    """`features` as a floating JAX array [N, D] (float32, or float64 under x64), checked for rank
    and finiteness."""
    features = jnp.asarray(features)
    if features.ndim != 2:
        raise ValueError(f"{name} must be features of shape [N, D], got shape {features.shape}")
    features = features.astype(jnp.promote_types(features.dtype, jnp.float32))
    if not bool(jnp.all(jnp.isfinite(features))):
        raise ValueError(f"{name} contains NaN or inf values; metrics need finite features")
    return features


def same_dim(first, second, first_name: str, second_name: str) -> None:
    if first.shape[-1] != second.shape[-1]:
        raise ValueError(f"feature dimensions differ ({first_name}: {first.shape[-1]}, "
                         f"{second_name}: {second.shape[-1]}); both must come from the same "
                         "feature extractor")


def finite(array: np.ndarray, name: str) -> None:
    if not np.all(np.isfinite(array)):
        raise ValueError(f"{name} contains NaN or inf values; metrics need finite features")
