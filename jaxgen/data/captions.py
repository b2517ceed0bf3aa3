"""Captions for digit images, built from what the pixels measure.

Offline there is no captioned image set, so a caption is the class name plus attributes
measured on the image itself: stroke thickness (ink mass per unit of stroke length), size (the
ink's bounding-box height) and slant (the shear of the ink's second moments). Each attribute is
binned into three levels by the training set's tertiles; the middle level is left unsaid.
Templates vary the wording; which template an image gets depends only on the seed and its
index, so a caption set is reproducible.

    attributes = measure(images)                 # {"thickness", "size", "slant"}: [N] floats
    bins = AttributeBins.fit(attributes, labels) # tertiles of each class's training images
    texts = captions(labels, bins.levels(attributes, labels), seed=0)
    # e.g. "a thick, slanted seven", "the digit 3 written small", "a 4"
"""

import dataclasses
from collections.abc import Callable

import numpy as np

from jaxgen.data import sources
from jaxgen.data.text import tokenize

NUMBER_WORDS = ("zero", "one", "two", "three", "four", "five", "six", "seven", "eight", "nine")
# level 0, 1, 2 of each attribute; level 1 (the middle third) is not mentioned
WORDS = {"thickness": ("thin", None, "thick"), "size": ("small", None, "large"),
         "slant": ("upright", None, "slanted")}
TEMPLATES = (
    "a {adjectives}{name}",
    "the digit {digit}{written}",
    "a {adjectives}handwritten {name}",
    "a {adjectives}{digit}",
)
INK_THRESHOLD = 0.5  # of the [0, 1] intensity: a pixel is ink above it


def _ink(images: np.ndarray) -> np.ndarray:
    """[N, H, W] ink intensity in [0, 1] from images in [-1, 1] (white digits on black)."""
    images = np.asarray(images, np.float32)
    if images.ndim == 4:
        images = images[..., 0]
    if images.ndim != 3:
        raise ValueError(f"expected images [N, H, W(, 1)], got shape {images.shape}")
    return (np.clip(images, -1.0, 1.0) + 1.0) / 2.0


def _boundary_length(mask: np.ndarray) -> np.ndarray:
    """Pixel edges between ink and background in each [H, W] mask of [N, H, W]."""
    padded = np.pad(mask, ((0, 0), (1, 1), (1, 1))).astype(np.int8)
    return (np.abs(np.diff(padded, axis=1)).sum(axis=(1, 2))
            + np.abs(np.diff(padded, axis=2)).sum(axis=(1, 2))).astype(np.float32)


def _extent(occupied: np.ndarray) -> np.ndarray:
    """[N] length of the span from the first to the last True of each row of [N, L]."""
    length = occupied.shape[1]
    span = length - np.argmax(occupied[:, ::-1], axis=1) - np.argmax(occupied, axis=1)
    return np.where(occupied.any(axis=1), span, 0)


def measure(images: np.ndarray) -> dict[str, np.ndarray]:
    """Attributes of images [N, H, W(, 1)] in [-1, 1]:

    - thickness: the mean stroke width in pixels, 2 x ink mass / boundary length (a stroke of
      width w and length L >> w has area w L and a boundary of about 2 L);
    - size: the square root of the ink's bounding-box area, in pixels (MNIST scales each
      digit's longer side to 20 pixels, so the height alone barely varies);
    - slant: the shear x = slant * y + c that best fits the ink (second moments
      mu_xy / mu_yy with y pointing up): > 0 leans right, as most handwriting does.
    """
    ink = _ink(images)
    mask = ink > INK_THRESHOLD
    height, width = _extent(mask.any(axis=2)), _extent(mask.any(axis=1))
    thickness = 2.0 * ink.sum(axis=(1, 2)) / np.maximum(_boundary_length(mask), 1.0)
    n, h, w = ink.shape
    y, x = np.mgrid[0:h, 0:w].astype(np.float32)
    y = (h - 1) - y  # up
    mass = np.maximum(ink.sum(axis=(1, 2)), 1e-6)
    mean_x = (ink * x).sum(axis=(1, 2)) / mass
    mean_y = (ink * y).sum(axis=(1, 2)) / mass
    dx, dy = x[None] - mean_x[:, None, None], y[None] - mean_y[:, None, None]
    slant = (ink * dx * dy).sum(axis=(1, 2)) / np.maximum((ink * dy * dy).sum(axis=(1, 2)), 1e-6)
    return {"thickness": thickness.astype(np.float32),
            "size": np.sqrt(height * width).astype(np.float32),
            "slant": slant.astype(np.float32)}


@dataclasses.dataclass(frozen=True)
class AttributeBins:
    """Tertile edges of each attribute within each class, fitted on training images: level 0
    below the first edge, 2 above the second, 1 between. Within the class, because "thick" or
    "small" means so for that digit: a one is always narrower than a zero."""

    edges: dict[str, np.ndarray]  # name -> [K, 2]

    @classmethod
    def fit(cls, attributes: dict[str, np.ndarray], labels: np.ndarray,
            num_classes: int = 10) -> "AttributeBins":
        labels = np.asarray(labels)
        missing = sorted(set(range(num_classes)) - set(labels.tolist()))
        if missing:
            raise ValueError(f"no training images of classes {missing} to fit attribute bins")
        return cls({name: np.stack([np.quantile(values[labels == k], [1 / 3, 2 / 3])
                                    for k in range(num_classes)])
                    for name, values in attributes.items()})

    def levels(self, attributes: dict[str, np.ndarray],
               labels: np.ndarray) -> dict[str, np.ndarray]:
        """{attribute: [N] int levels in {0, 1, 2}} of images of classes `labels`."""
        labels = np.asarray(labels)
        return {name: ((values > self.edges[name][labels, 0]).astype(np.int64)
                       + (values > self.edges[name][labels, 1]))
                for name, values in attributes.items() if name in self.edges}


def _with_articles(text: str) -> str:
    """"a" before a consonant sound, "an" before a vowel sound ("an eight", "a one")."""
    words = text.split(" ")
    for i, word in enumerate(words[:-1]):
        if word == "a" and (words[i + 1][0] in "aeiu8" or words[i + 1].startswith("eight")):
            words[i] = "an"
    return " ".join(words)


def caption(label: int, levels: dict[str, int], template: int) -> str:
    """One caption of a digit `label` with attribute `levels` ({name: 0|1|2})."""
    words = [WORDS[name][int(level)] for name, level in levels.items() if name in WORDS]
    words = [w for w in words if w]
    text = TEMPLATES[template % len(TEMPLATES)].format(
        adjectives=", ".join(words) + " " if words else "", name=NUMBER_WORDS[label],
        digit=label, written=" written " + " and ".join(words) if words else "")
    return _with_articles(text)


def captions(labels: np.ndarray, levels: dict[str, np.ndarray], seed: int = 0) -> list[str]:
    """A caption per image; the template of image i depends only on (seed, i)."""
    templates = np.random.default_rng(seed).integers(0, len(TEMPLATES), len(labels))
    return [caption(int(label), {name: int(v[i]) for name, v in levels.items()},
                    int(templates[i])) for i, label in enumerate(labels)]


ATTRIBUTES = tuple(WORDS)  # the order of an example's "levels"


class CaptionedSource:
    """Random access over in-memory arrays of equal length: example i is {key: array[i]}."""

    def __init__(self, **arrays: np.ndarray):
        lengths = {len(a) for a in arrays.values()}
        if len(lengths) != 1:
            sizes = {key: len(array) for key, array in arrays.items()}
            raise ValueError(f"arrays of unequal lengths: {sizes}")
        self.arrays = arrays

    def __len__(self) -> int:
        return len(next(iter(self.arrays.values())))

    def __getitem__(self, index: int) -> dict[str, np.ndarray]:
        return {key: array[index] for key, array in self.arrays.items()}


def digit_captions(name: str, split: str, *, seed: int = 0, data_dir: str | None = None,
                   download: bool = False) -> tuple[np.ndarray, np.ndarray, list[str], np.ndarray]:
    """(images, labels, captions, levels [N, 3] in ATTRIBUTES order) of a digit dataset's split,
    with the attribute bins fitted on its training split whichever split is asked for."""
    info, train_images, train_labels = sources.load_arrays(name, "train", seed=seed,
                                                           data_dir=data_dir, download=download)
    if info.num_classes != 10 or info.shape[-1] != 1:
        raise ValueError(
            f"{name} is not a digit dataset (10 classes of one-channel images), so its captions "
            "cannot be measured from the pixels; use a digit set (mnist5k, digits, tfds:mnist) "
            "or a TFDS dataset with a 'captions' feature (tfds:coco_captions@64).")
    bins = AttributeBins.fit(measure(train_images), train_labels)
    if split == "train":
        images, labels = train_images, train_labels
    else:
        _, images, labels = sources.load_arrays(name, split, seed=seed, data_dir=data_dir,
                                                download=download)
    levels = bins.levels(measure(images), labels)
    return (images, labels, captions(labels, levels, seed),
            np.stack([levels[a] for a in ATTRIBUTES], axis=1).astype(np.int32))


def tfds_caption_transform(base: Callable, seed: int, text_length: int) -> Callable:
    """Adds one of the example's own captions (COCO has five per image), picked from
    (seed, image id) so the choice is reproducible."""

    def transform(example: dict) -> dict[str, np.ndarray]:
        out = base(example)
        texts = np.asarray(example["captions"]["text"]).reshape(-1)
        key = int(np.asarray(example.get("image/id", 0)))
        pick = int(np.random.default_rng([seed, key]).integers(len(texts))) if len(texts) else 0
        text = texts[pick].decode("utf-8") if len(texts) else ""
        out["text"] = tokenize(text, text_length)[0]
        return out

    return transform


def load(name: str, split: str = "train", *, seed: int = 0, text_length: int = 64,
         data_dir: str | None = None, download: bool = False):
    """(info, source, transform) as `sources.load` gives, each example also carrying "text":
    int32 [text_length] byte tokens of its caption.

    A TFDS dataset with a `captions` feature (tfds:coco_captions@64) gives its real captions;
    a digit dataset gives captions measured from the pixels (and "levels" [3], the attribute
    levels they state, for scoring prompt following).
    """
    if name.startswith("tfds:"):
        info, source, transform = sources.load(name, split, seed=seed, data_dir=data_dir,
                                               download=download)
        if _has_captions_feature(name, data_dir):
            return info, source, tfds_caption_transform(transform, seed, text_length)
    images, labels, texts, levels = digit_captions(name, split, seed=seed, data_dir=data_dir,
                                                   download=download)
    info = sources.DatasetInfo(name, tuple(images.shape[1:]), 10, len(images))
    source = CaptionedSource(image=images.astype(np.float32), label=labels.astype(np.int32),
                             text=tokenize(texts, text_length), levels=levels)
    return info, source, None


def _has_captions_feature(name: str, data_dir: str | None) -> bool:
    import tensorflow_datasets as tfds

    base, _ = sources.split_size(name.removeprefix("tfds:"))
    return "captions" in tfds.builder(base, data_dir=data_dir).info.features
