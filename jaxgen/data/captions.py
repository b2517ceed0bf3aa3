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

import numpy as np

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
