"""pytorch-fid's Inception weights (`pt_inception-2015-12-05-6726825d.pth`, the file pytorch-fid
and torchmetrics download) into `jaxgen.models.inception.FIDInceptionV3`, read without torch.

The file is a `torch.save` pickle, read by `torch_file.read_torch_file` with an allow-list of
the names a dict of tensors needs: nothing it names runs.

The weights are found by a path argument or `$JAXGEN_INCEPTION_WEIGHTS` and checked as
torch.hub checks a file so named (its SHA-256 begins with the hex in the name); the map onto
the model is strict (`convert.load_params`): every tensor used, every parameter filled, shapes
checked.
"""

import hashlib
import os
import re
from collections.abc import Mapping
from pathlib import Path

import jax.numpy as jnp
import numpy as np
from flax import nnx, traverse_util
from jax.sharding import Mesh

from jaxgen.models.inception import BasicConv2d, FIDInceptionV3
from jaxgen.pretrained.convert import Entry, load_params, module_entries
from jaxgen.pretrained.torch_file import read_torch_file
from jaxgen.pretrained.weights import PretrainedError, torch_shape

WHAT = "FID Inception-v3"
WEIGHTS_FILE = "pt_inception-2015-12-05-6726825d.pth"
WEIGHTS_URL = ("https://github.com/mseitzer/pytorch-fid/releases/download/fid_weights/"
               + WEIGHTS_FILE)  # pytorch-fid's FID_WEIGHTS_URL
WEIGHTS_ENV = "JAXGEN_INCEPTION_WEIGHTS"
_HASH = re.compile(r"-([a-f0-9]*)\.")  # torch.hub's HASH_REGEX
_BN = {"scale": "weight", "bias": "bias", "mean": "running_mean", "var": "running_var"}

def weights_path(path=None) -> Path:
    """The weight file: `path` (the file, or a folder holding it), else $JAXGEN_INCEPTION_WEIGHTS;
    a PretrainedError in one line says where to get it when it is not there."""
    given = path if path is not None else os.environ.get(WEIGHTS_ENV)
    where = Path(given).expanduser() if given else None
    if where is not None and where.is_dir():
        where = where / WEIGHTS_FILE
    if where is None or not where.is_file():
        found = (f"no file at {where}" if where is not None
                 else f"no path given and ${WEIGHTS_ENV} unset")
        raise PretrainedError(f"FID Inception needs pytorch-fid's weight file {WEIGHTS_FILE} "
                              f"({found}): download it from {WEIGHTS_URL} and pass its path or "
                              f"set ${WEIGHTS_ENV} to it")
    return where


def check_sha256(path, expected_name: str = WEIGHTS_FILE) -> str:
    """The file's SHA-256, after checking that it begins with the hex in `expected_name` as
    torch.hub's `check_hash` does (a name without one checks nothing); a PretrainedError names
    the file expected otherwise."""
    match = _HASH.search(expected_name)
    prefix = match.group(1) if match else ""
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            digest.update(block)
    digest = digest.hexdigest()
    if not digest.startswith(prefix):
        raise PretrainedError(f"{path} is not {expected_name}: its SHA-256 begins "
                              f"{digest[:len(prefix)]}, not {prefix} (a different or damaged "
                              f"file); download it again from {WEIGHTS_URL}")
    return digest


def key_map(model: FIDInceptionV3) -> list[Entry]:
    """Our parameter paths and pytorch-fid's state-dict names: torchvision's attribute names
    are ours, `conv`/`bn` inside every BasicConv2d, and `fc`."""
    entries = []
    for path, module in nnx.iter_modules(model):
        if isinstance(module, BasicConv2d):
            key = ".".join(map(str, path))
            entries += module_entries(module.conv, (*path, "conv"), f"{key}.conv")
            entries += [Entry((*path, "bn", ours), (f"{key}.bn.{theirs}",), "same")
                        for ours, theirs in _BN.items()]
    return entries + list(module_entries(model.fc, ("fc",), "fc"))


class _ArrayReader:
    """A state dict in memory, with `weights.WeightsReader`'s interface for `load_params`."""

    def __init__(self, tensors: Mapping[str, np.ndarray]):
        self.tensors, self.used = tensors, set()

    def __contains__(self, key):
        return key in self.tensors

    def shape(self, key):
        return tuple(np.shape(self.tensors[key]))

    def read(self, key):
        self.used.add(key)
        return np.asarray(self.tensors[key])

    def unused(self):
        return sorted(set(self.tensors) - self.used)


def inception_params(state_dict: Mapping[str, np.ndarray], *, mesh: Mesh | None = None) -> dict:
    """The pure-dict variables (float32 parameters and BatchNorm statistics) of `FIDInceptionV3`
    from pytorch-fid's state dict, strictly: each tensor of its shape, none left over (BatchNorm's
    `num_batches_tracked` counters, which inference never reads, may be present or not)."""
    if not isinstance(state_dict, Mapping) or not all(
            isinstance(v, np.ndarray) for v in state_dict.values()):
        raise PretrainedError(f"the {WHAT} weights must be a dict of tensors, got "
                              f"{type(state_dict).__name__}")
    model = nnx.eval_shape(lambda: FIDInceptionV3(rngs=nnx.Rngs(0)))
    shapes = nnx.state(model).to_pure_dict()
    entries = key_map(model)
    counters = {e.keys[0].replace("running_var", "num_batches_tracked") for e in entries
                if e.keys[0].endswith(".bn.running_var")}
    tensors = {k: v for k, v in state_dict.items() if k not in counters}
    flat = traverse_util.flatten_dict(shapes)
    for entry in entries:
        if entry.keys[0] not in tensors:
            want = torch_shape(tuple(flat[entry.path].shape), entry.layout)
            raise PretrainedError(f"the {WHAT} weights lack tensor {entry.keys[0]} (shape "
                                  f"{list(want)}): not pytorch-fid's {WEIGHTS_FILE}")
    return load_params(shapes, entries, _ArrayReader(tensors), what=WHAT, mesh=mesh)


def inception_from_state_dict(state_dict: Mapping[str, np.ndarray], *, dtype=jnp.float32,
                              mesh: Mesh | None = None) -> FIDInceptionV3:
    """`FIDInceptionV3` (computing in `dtype`) with the weights of `state_dict`."""
    graphdef = nnx.graphdef(nnx.eval_shape(lambda: FIDInceptionV3(dtype=dtype,
                                                                  rngs=nnx.Rngs(0))))
    return nnx.merge(graphdef, inception_params(state_dict, mesh=mesh))


def load_inception(path=None, *, dtype=jnp.float32, mesh: Mesh | None = None) -> FIDInceptionV3:
    """pytorch-fid's FID Inception-v3 from its weight file (`path`, else
    $JAXGEN_INCEPTION_WEIGHTS), its SHA-256 checked, its variables placed on `mesh` (default:
    replicated on every device)."""
    path = weights_path(path)
    check_sha256(path)
    return inception_from_state_dict(read_torch_file(path), dtype=dtype, mesh=mesh)
