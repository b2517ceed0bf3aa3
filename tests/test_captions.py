"""Captions from measured pixels: each attribute extractor against shapes whose answer is known,
per-class tertile bins, and captions reproducible from the seed."""

import numpy as np
import pytest

from jaxgen.data import captions as C


def _canvas(n=1):
    return -np.ones((n, 28, 28), np.float32)  # black background in [-1, 1]


def test_thickness_is_the_stroke_width():
    images = _canvas(2)
    images[0, 6:22, 13] = 1.0  # a vertical stroke 16 long, 1 wide
    images[1, 6:22, 12:15] = 1.0  # 16 long, 3 wide
    thickness = C.measure(images)["thickness"]
    # 2 area / boundary: 2 w L / (2 L + 2 w)
    np.testing.assert_allclose(thickness, [2 * 16 / 34, 2 * 48 / 38], rtol=1e-6)


def test_size_is_the_root_of_the_bounding_box_area():
    images = _canvas(2)
    images[0, 4:24, 10:15] = 1.0  # 20 x 5
    images[1, 10:14, 10:14] = 1.0  # 4 x 4
    images[1, 20, 20] = 0.2  # faint (intensity 0.6 of [0, 1]) but above the threshold: ink
    np.testing.assert_allclose(C.measure(images)["size"], [10.0, np.sqrt(11 * 11)])


@pytest.mark.parametrize("shear", [0.5, -0.3, 0.0])
def test_slant_is_the_shear_of_the_ink(shear):
    image = _canvas()
    for row in range(4, 24):
        up = 27 - row  # y points up
        image[0, row, int(round(14 + shear * (up - 13.5)))] = 1.0
    assert C.measure(image)["slant"][0] == pytest.approx(shear, abs=0.03)


def test_bins_are_tertiles_within_each_class():
    labels = np.repeat(np.arange(10), 30)
    values = np.tile(np.arange(30, dtype=np.float32), 10) + 100 * labels  # each class its own range
    bins = C.AttributeBins.fit({"thickness": values}, labels)
    levels = bins.levels({"thickness": values}, labels)["thickness"]
    for k in range(10):
        np.testing.assert_array_equal(np.bincount(levels[labels == k]), [10, 10, 10])
    with pytest.raises(ValueError, match=r"classes \[9\]"):
        C.AttributeBins.fit({"thickness": values[:270]}, labels[:270])


def test_captions_say_the_measured_levels_and_follow_the_seed():
    assert C.caption(7, {"thickness": 2, "size": 1, "slant": 2}, 0) == "a thick, slanted seven"
    assert C.caption(7, {"thickness": 1, "size": 0, "slant": 1}, 1) == "the digit 7 written small"
    assert C.caption(8, {"thickness": 1, "size": 1, "slant": 1}, 0) == "an eight"
    assert C.caption(1, {"thickness": 0, "size": 1, "slant": 0}, 3) == "a thin, upright 1"
    assert C.caption(8, {"thickness": 1, "size": 1, "slant": 1}, 3) == "an 8"
    labels = np.arange(50) % 10
    levels = {"thickness": np.arange(50) % 3, "size": np.arange(50) // 3 % 3,
              "slant": np.zeros(50, int)}
    first = C.captions(labels, levels, seed=0)
    assert first == C.captions(labels, levels, seed=0)
    assert first != C.captions(labels, levels, seed=1)
    for text, label, thick in zip(first, labels, levels["thickness"], strict=True):
        assert (C.NUMBER_WORDS[label] in text) or (str(label) in text)
        assert ("thick" in text) == (thick == 2) and ("thin" in text) == (thick == 0)
        assert "upright" in text
