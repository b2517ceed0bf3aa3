"""Filling a model's parameters from a checkpoint by a key map, and the map reversed.

A key map is a list of `Entry`: a parameter's path in our pure-dict params, the checkpoint's
name for it (or several spellings, the first present is taken: diffusers renamed its attention
tensors once) and the layout conversion between them (`weights.to_jax`). The map is derived
from the model we built from the checkpoint's config, never guessed from the tensor names,
and the fill is strict: every parameter is filled with a tensor of its shape and every
checkpoint tensor is used, or the load fails naming the first offender.
"""

from typing import NamedTuple

import jax
import numpy as np
from flax import nnx
from jax.sharding import Mesh

from jaxgen import parallel
from jaxgen.pretrained.weights import (
    PretrainedError,
    WeightsReader,
    to_jax,
    to_torch,
    torch_shape,
)


class Entry(NamedTuple):
    path: tuple  # our parameter's path in the pure-dict params
    keys: tuple[str, ...]  # the checkpoint's name(s) for it, preferred first
    layout: str  # "conv" | "linear" | "same"


def module_entries(module, path: tuple, key: str, names: dict | None = None):
    """Entries of the primitive layer `module` (Conv, Linear, GroupNorm, LayerNorm, Embed) at
    `path`, named `key` in the checkpoint. `names` maps our parameter names to the
    checkpoint's when they differ from PyTorch's."""
    if isinstance(module, nnx.Conv):
        table = {"kernel": ("weight", "conv"), "bias": ("bias", "same")}
    elif isinstance(module, nnx.Linear):
        table = {"kernel": ("weight", "linear"), "bias": ("bias", "same")}
    elif isinstance(module, nnx.GroupNorm | nnx.LayerNorm):
        table = {"scale": ("weight", "same"), "bias": ("bias", "same")}
    elif isinstance(module, nnx.Embed):
        table = {"embedding": ("weight", "same")}
    else:
        raise TypeError(f"no PyTorch counterpart known for {type(module).__name__} at {path}")
    for ours, (theirs, layout) in table.items():
        if getattr(module, ours, None) is None:
            continue
        theirs = (names or {}).get(ours, theirs)
        yield Entry((*path, ours), (f"{key}.{theirs}",), layout)


def _flat(tree, prefix=()):
    if isinstance(tree, dict):
        for k, v in tree.items():
            yield from _flat(v, (*prefix, k))
    else:
        yield prefix, tree


def _nest(flat: dict) -> dict:
    tree: dict = {}
    for path, value in flat.items():
        node = tree
        for k in path[:-1]:
            node = node.setdefault(k, {})
        node[path[-1]] = value
    return tree


def abstract_params(build) -> dict:
    """The pure-dict parameter shapes of the module `build(rngs)` makes, allocating nothing."""
    model = nnx.eval_shape(lambda: build(nnx.Rngs(0)))
    return nnx.state(model, nnx.Param).to_pure_dict()


def _check_covers(entries: list[Entry], shapes: dict, what: str) -> None:
    paths = [e.path for e in entries]
    if len(set(paths)) != len(paths) or set(paths) != set(shapes):
        extra, missing = set(paths) - set(shapes), set(shapes) - set(paths)
        raise AssertionError(f"the {what} key map is wrong: maps {sorted(map(str, extra))[:3]} "
                             f"that the model lacks, misses {sorted(map(str, missing))[:3]}")


def load_params(shapes: dict, entries: list[Entry], reader: WeightsReader, *, what: str,
                dtype=np.float32, mesh: Mesh | None = None, min_fsdp_size: int = 2**14) -> dict:
    """The pure-dict params of `shapes` (from `abstract_params`) filled from `reader` through
    `entries`, each tensor converted, cast to `dtype` and placed on `mesh` (default: all
    devices) by `parallel.state_shardings`' rule, one tensor at a time."""
    flat_shapes = dict(_flat(shapes))
    _check_covers(entries, flat_shapes, what)
    mesh = mesh or parallel.make_mesh(1)
    shardings = dict(_flat(parallel.state_shardings(shapes, mesh, min_fsdp_size)))
    filled = {}
    for entry in entries:
        key = next((k for k in entry.keys if k in reader), None)
        want = tuple(flat_shapes[entry.path].shape)
        if key is None:
            raise PretrainedError(f"the {what} checkpoint lacks tensor {entry.keys[0]} (shape "
                                  f"{list(torch_shape(want, entry.layout))}); is its config.json "
                                  "the one these weights were saved with?")
        if len(reader.shape(key)) != len(want):
            raise PretrainedError(f"{what} tensor {key} has shape {list(reader.shape(key))}, "
                                  f"expected {list(torch_shape(want, entry.layout))}")
        array = to_jax(reader.read(key), entry.layout).astype(dtype, copy=False)
        if array.shape != want:
            raise PretrainedError(f"{what} tensor {key} has shape {list(reader.shape(key))}, "
                                  f"expected {list(torch_shape(want, entry.layout))}")
        filled[entry.path] = jax.make_array_from_callback(
            want, shardings[entry.path], lambda index, a=array: a[index])
        del array
    unused = reader.unused()
    if unused:
        raise PretrainedError(f"the {what} checkpoint has {len(unused)} tensor(s) this model "
                              f"does not use, e.g. {unused[0]}: a different architecture, or "
                              "extra weights (LoRA, EMA) that jaxgen does not read")
    return _nest(filled)


def export_tensors(params: dict, entries: list[Entry], *, what: str,
                   dtype=np.float32) -> dict[str, np.ndarray]:
    """The checkpoint tensors (PyTorch layout, under their preferred names) of `params`."""
    flat = dict(_flat(params))
    _check_covers(entries, flat, what)
    return {e.keys[0]: to_torch(np.asarray(jax.device_get(flat[e.path])), e.layout).astype(dtype)
            for e in entries}
