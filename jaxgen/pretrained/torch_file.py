"""`torch.save` files (pickles of tensors) read without torch and without running pickled code.

Unpickling runs whatever callables a pickle names, so the file is read with an allow-list: a
dict of tensors needs only `collections.OrderedDict`, torch's tensor and parameter rebuild
functions and its storage types, and those are replaced by numpy equivalents here; any other
name is refused before anything runs. Tensors come from the archive's `data/<key>` records (the
zip format of torch >= 1.6) or from the raw storages after the pickle (the format before it),
as numpy arrays, bounds-checked against their storage.
"""

import collections
import io
import pickle
import zipfile
from pathlib import Path
from typing import NamedTuple

import ml_dtypes
import numpy as np

from jaxgen.pretrained.weights import PretrainedError

_STORAGES = {"FloatStorage": np.float32, "HalfStorage": np.float16,
             "BFloat16Storage": ml_dtypes.bfloat16, "DoubleStorage": np.float64,
             "LongStorage": np.int64, "IntStorage": np.int32, "ShortStorage": np.int16,
             "CharStorage": np.int8, "ByteStorage": np.uint8, "BoolStorage": np.bool_}
_LEGACY_MAGIC = 0x1950A86A20F9469CFC6C  # torch.serialization.MAGIC_NUMBER


class _StorageType(NamedTuple):
    dtype: np.dtype


class _Storage:
    """One storage of the file: its bytes as a 1-D array once read (`data`), or a window of
    elements `offset:offset + numel` of another storage (`root`, old files only)."""

    def __init__(self, dtype, numel, root=None, offset=0):
        self.dtype, self.numel, self.root, self.offset = np.dtype(dtype), numel, root, offset
        self.data = None

    def array(self, what) -> np.ndarray:
        if self.root is not None:
            data = self.root.array(what)[self.offset:self.offset + self.numel]
        else:
            data = self.data
        if data is None or data.size < self.numel:
            raise PretrainedError(f"{what}: a storage is shorter than its tensors need "
                                  "(a truncated or corrupt file)")
        return data


class _TensorRef(NamedTuple):
    storage: _Storage
    offset: int
    size: tuple
    stride: tuple


def _rebuild_tensor(storage, storage_offset, size, stride, requires_grad, backward_hooks,
                    metadata=None):
    del requires_grad, backward_hooks, metadata
    if not isinstance(storage, _Storage):
        raise PretrainedError("a tensor in the file is built on something that is not a storage")
    return _TensorRef(storage, int(storage_offset), tuple(map(int, size)),
                      tuple(map(int, stride)))


def _rebuild_parameter(data, requires_grad, backward_hooks):
    del requires_grad, backward_hooks
    return data


_ALLOWED = {("collections", "OrderedDict"): collections.OrderedDict,
            ("torch._utils", "_rebuild_tensor_v2"): _rebuild_tensor,
            ("torch._utils", "_rebuild_parameter"): _rebuild_parameter,
            **{("torch", name): _StorageType(np.dtype(dtype))
               for name, dtype in _STORAGES.items()}}


class _Unpickler(pickle.Unpickler):
    def __init__(self, file, what, storage):
        super().__init__(file)
        self.what, self.storage = what, storage

    def find_class(self, module, name):
        if (module, name) in _ALLOWED:
            return _ALLOWED[module, name]
        raise PretrainedError(f"{self.what} names {module}.{name}, which a file of tensors never "
                              "needs: refused unread (unpickling it could run code; jaxgen "
                              "reads only tensors and dicts from torch pickles)")

    def persistent_load(self, pid):
        if not (isinstance(pid, tuple) and len(pid) in (5, 6) and pid[0] in ("storage", b"storage")
                and isinstance(pid[1], _StorageType)):
            raise PretrainedError(f"{self.what}: unknown persistent id {str(pid)[:80]}")
        key = pid[2].decode() if isinstance(pid[2], bytes) else str(pid[2])
        return self.storage(pid[1].dtype, key, int(pid[4]), pid[5] if len(pid) == 6 else None)


def _materialize(ref: _TensorRef, what: str) -> np.ndarray:
    data = ref.storage.array(what)
    if ref.offset < 0 or min((*ref.size, *ref.stride), default=0) < 0 or len(ref.size) != len(
            ref.stride):
        raise PretrainedError(f"{what}: a tensor has a negative size, stride or offset")
    if 0 in ref.size:
        return np.zeros(ref.size, data.dtype)
    last = ref.offset + sum((n - 1) * s for n, s in zip(ref.size, ref.stride, strict=True))
    if last >= data.size:
        raise PretrainedError(f"{what}: a tensor reaches element {last} of a storage of "
                              f"{data.size} (a truncated or corrupt file)")
    view = np.lib.stride_tricks.as_strided(
        data[ref.offset:], ref.size, [s * data.itemsize for s in ref.stride], writeable=False)
    return np.array(view, order="C")


def _resolve(obj, what):
    if isinstance(obj, _TensorRef):
        return _materialize(obj, what)
    if isinstance(obj, dict):
        return type(obj)((k, _resolve(v, what)) for k, v in obj.items())
    if isinstance(obj, list | tuple):
        return type(obj)(_resolve(v, what) for v in obj)
    return obj


def _read_zip(path: Path, what: str):
    with zipfile.ZipFile(path) as archive:
        names = set(archive.namelist())
        pickles = sorted(n for n in names if n.endswith("/data.pkl") and n.count("/") == 1)
        if len(pickles) != 1:
            raise PretrainedError(f"{what} is a zip archive without one <name>/data.pkl: not a "
                                  "torch.save file")
        prefix = pickles[0][:-len("data.pkl")]
        order = archive.read(f"{prefix}byteorder").decode() if f"{prefix}byteorder" in names \
            else "little"
        storages: dict[str, _Storage] = {}

        def storage(dtype, key, numel, view):
            if key not in storages:
                record = f"{prefix}data/{key}"
                if record not in names:
                    raise PretrainedError(f"{what} lacks the record {record} a tensor refers to")
                stored = storages[key] = _Storage(dtype, numel)
                raw = archive.read(record)
                byte_dtype = stored.dtype.newbyteorder("<" if order == "little" else ">")
                stored.data = np.frombuffer(raw, byte_dtype, len(raw) // stored.dtype.itemsize)
                stored.data = stored.data.astype(stored.dtype, copy=False)
            return storages[key]

        result = _Unpickler(io.BytesIO(archive.read(pickles[0])), what, storage).load()
        return _resolve(result, what)


def _read_legacy(path: Path, what: str):
    storages: dict[str, _Storage] = {}

    def storage(dtype, key, numel, view):
        root = storages.setdefault(key, _Storage(dtype, numel))
        if view is None:
            return root
        view_key, offset, view_numel = view
        return storages.setdefault(view_key, _Storage(dtype, int(view_numel), root, int(offset)))

    with open(path, "rb") as f:
        load = lambda: _Unpickler(f, what, storage).load()
        if load() != _LEGACY_MAGIC:
            raise PretrainedError(f"{what} is not a torch.save file (no zip archive, no magic "
                                  "number)")
        load(), load()  # the format's protocol version and the writer's type sizes
        result = load()
        keys = load()
        for key in keys:
            stored = storages.get(key)
            if stored is None or stored.root is not None:
                raise PretrainedError(f"{what} lists storage {key!r} that no tensor uses")
            numel = int(np.frombuffer(f.read(8), "<i8")[0])
            raw = f.read(numel * stored.dtype.itemsize)
            if numel < stored.numel or len(raw) < numel * stored.dtype.itemsize:
                raise PretrainedError(f"{what} ends inside storage {key!r} (a truncated file)")
            stored.data = np.frombuffer(raw, stored.dtype.newbyteorder("<")).astype(
                stored.dtype, copy=False)
    return _resolve(result, what)


def read_torch_file(path) -> object:
    """The object a `torch.save` file holds (a state dict: names -> numpy arrays), unpickled
    with the allow-list of the module docstring; a file naming anything else is refused with a
    PretrainedError before any of it runs."""
    path = Path(path)
    what = f"{path}"
    try:
        if zipfile.is_zipfile(path):
            return _read_zip(path, what)
        return _read_legacy(path, what)
    except PretrainedError:
        raise
    except (pickle.UnpicklingError, EOFError, ValueError, TypeError, IndexError,
            zipfile.BadZipFile) as error:
        raise PretrainedError(f"{what} is not a readable torch.save file of tensors: "
                              f"{type(error).__name__}: {error}") from None
