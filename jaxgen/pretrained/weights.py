"""Checkpoint tensors in and out of the PyTorch ecosystem's safetensors files, one at a time.

`WeightsReader` opens a model folder's weights (one `.safetensors` file or a sharded set with
its `.index.json`) with safetensors' own reader and hands out one tensor per call, so a
checkpoint never sits whole in host memory; it remembers which tensors were taken, so a loader
can refuse a checkpoint with tensors it did not use. `to_jax` / `to_torch` convert one tensor
between PyTorch's layouts and ours:

  "conv"    Conv2d weight [O, I, kh, kw]  <->  HWIO [kh, kw, I, O]
  "linear"  Linear weight [out, in]       <->  [in, out]
  "same"    biases, norm scales, embedding tables: unchanged
"""

import json
from pathlib import Path

import jax
import numpy as np
from safetensors import safe_open
from safetensors.numpy import save_file

LAYOUTS = ("conv", "linear", "same")


class PretrainedError(ValueError):
    """A checkpoint this library cannot read as asked, in one line that names the cause."""


def to_jax(array: np.ndarray, layout: str) -> np.ndarray:
    if layout == "conv":
        return np.ascontiguousarray(array.transpose(2, 3, 1, 0))
    if layout == "linear":
        return np.ascontiguousarray(array.T)
    if layout == "same":
        return array
    raise ValueError(f"layout must be one of {LAYOUTS}, got {layout!r}")


def to_torch(array: np.ndarray, layout: str) -> np.ndarray:
    if layout == "conv":
        return np.ascontiguousarray(array.transpose(3, 2, 0, 1))
    if layout == "linear":
        return np.ascontiguousarray(array.T)
    if layout == "same":
        return np.ascontiguousarray(array)
    raise ValueError(f"layout must be one of {LAYOUTS}, got {layout!r}")


def torch_shape(shape: tuple[int, ...], layout: str) -> tuple[int, ...]:
    """The PyTorch shape of a tensor of our `shape`."""
    return tuple(to_torch(np.empty(shape, np.bool_), layout).shape)


def weight_files(folder: Path, stem: str, variant: str | None = None) -> list[Path]:
    """The safetensors files of `folder` named `stem` (diffusers: diffusion_pytorch_model,
    transformers: model), with diffusers' `variant` infix (e.g. "fp16") when given."""
    name = f"{stem}.{variant}.safetensors" if variant else f"{stem}.safetensors"
    single, index = folder / name, folder / f"{name}.index.json"
    if single.exists():
        return [single]
    if index.exists():
        shards = sorted(set(json.loads(index.read_text())["weight_map"].values()))
        missing = [s for s in shards if not (folder / s).exists()]
        if missing:
            raise PretrainedError(f"{index} names shards that are missing: {missing}")
        return [folder / s for s in shards]
    pickles = sorted(p.name for p in folder.glob("*.bin")) + sorted(
        p.name for p in folder.glob("*.ckpt"))
    if pickles:
        raise PretrainedError(
            f"{folder} holds {pickles[0]}, a pickle, and no {name}: jaxgen reads safetensors "
            "only (pickles can run code). Convert once with PyTorch, e.g. `Model."
            "from_pretrained(DIR).save_pretrained(DIR, safe_serialization=True)`.")
    raise PretrainedError(f"{folder} has no weights: expected {single} (or {index})")


class WeightsReader:
    """The tensors of one model folder, read one at a time (see the module docstring)."""

    def __init__(self, files: list[Path]):
        self.files = [Path(f) for f in files]
        self._where: dict[str, Path] = {}
        self._meta: dict[str, tuple[tuple[int, ...], str]] = {}
        for path in self.files:
            with safe_open(str(path), framework="numpy") as f:
                for key in f.keys():
                    if key in self._where:
                        raise PretrainedError(f"tensor {key} is stored twice ({self._where[key]}"
                                              f" and {path})")
                    part = f.get_slice(key)
                    self._where[key] = path
                    self._meta[key] = (tuple(part.get_shape()), part.get_dtype())
        self.used: set[str] = set()

    def keys(self) -> list[str]:
        return sorted(self._where)

    def __contains__(self, key: str) -> bool:
        return key in self._where

    def shape(self, key: str) -> tuple[int, ...]:
        return self._meta[key][0]

    def read(self, key: str) -> np.ndarray:
        """One tensor as a host array in its stored dtype (bfloat16 through ml_dtypes)."""
        if key not in self._where:
            raise PretrainedError(f"{self.files[0].parent} has no tensor {key}")
        self.used.add(key)
        # safetensors' numpy reader has no bfloat16; its flax reader does, one tensor still.
        framework = "flax" if self._meta[key][1] == "BF16" else "numpy"
        with safe_open(str(self._where[key]), framework=framework) as f:
            return np.asarray(jax.device_get(f.get_tensor(key)))

    def unused(self) -> list[str]:
        return sorted(set(self._where) - self.used)


def write_safetensors(tensors: dict[str, np.ndarray], path: Path) -> None:
    """`tensors` as one safetensors file, with the metadata PyTorch-side loaders expect."""
    path.parent.mkdir(parents=True, exist_ok=True)
    save_file({k: np.ascontiguousarray(v) for k, v in tensors.items()}, str(path),
              metadata={"format": "pt"})
