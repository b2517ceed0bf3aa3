"""Datasets by name through Grain: shapes, ranges, splits, TFDS offline, positions, host slices."""

import numpy as np
import pytest
import tensorflow_datasets as tfds

from jaxgen import data


def test_mnist5k_is_real_stratified_and_scaled():
    info, train_x, train_y = data.load_arrays("mnist5k", "train")
    _, test_x, test_y = data.load_arrays("mnist5k", "test")
    assert info.shape == (28, 28, 1) and info.num_classes == 10
    assert train_x.shape == (4000, 28, 28, 1) and test_x.shape == (1000, 28, 28, 1)
    assert train_x.dtype == np.float32 and train_y.dtype == np.int32
    assert train_x.min() == -1.0 and train_x.max() == 1.0
    np.testing.assert_array_equal(np.bincount(test_y), np.full(10, 100))
    np.testing.assert_array_equal(np.bincount(train_y), np.full(10, 400))
    assert len(set(map(bytes, train_x)) & set(map(bytes, test_x))) == 0  # disjoint splits
    assert not np.all(np.diff(train_y) >= 0)  # shuffled, not sorted by label
    # Real digits: mean ink of a 1 is well below that of an 8 or a 0.
    ink = [np.mean(train_x[train_y == c]) for c in range(10)]
    assert ink[1] < ink[0] and ink[1] < ink[8]


def test_digits_and_toy_sets_share_the_dict_shape():
    info, x, y = data.load_arrays("digits", "train")
    assert x.shape[1:] == (8, 8, 1) and -1.0 <= x.min() and x.max() <= 1.0
    for name, dims, classes in [("helix", 3, 3), ("ring8", 2, 8), ("grid25", 2, 25)]:
        info, points, labels = data.load_arrays(name, "train")
        assert points.shape == (100_000, dims) and labels.max() == classes - 1
        assert info.num_classes == classes
    _, ring, labels = data.load_arrays("ring8", "test")
    np.testing.assert_allclose(np.linalg.norm(ring, axis=1), 1.0, atol=0.05)


def test_unknown_dataset_lists_known_names():
    with pytest.raises(data.UnknownDatasetError, match="mnist5k.*tfds:<name>"):
        data.load("mnist4k")
    with pytest.raises(data.UnknownDatasetError, match="no dataset named"):
        data.load("tfds:not_a_dataset_xyz")


def test_unprepared_tfds_dataset_says_how_to_prepare(tmp_path):
    with pytest.raises(data.DatasetNotPreparedError, match="tfds build mnist"):
        data.load("tfds:mnist", data_dir=str(tmp_path))


@pytest.mark.parametrize("name,shape", [("mnist", (28, 28, 1)), ("cifar10", (32, 32, 3))])
def test_tfds_source_through_grain(name, shape):
    with tfds.testing.mock_data(num_examples=64):
        info, it = data.train_iterator(f"tfds:{name}", 16, seed=0, num_threads=1)
        batch = next(it)
    assert info.shape == shape and info.num_classes == 10
    assert batch["image"].shape == (16, *shape) and batch["image"].dtype == np.float32
    assert batch["label"].shape == (16,) and batch["label"].dtype == np.int32
    assert -1.0 <= batch["image"].min() and batch["image"].max() <= 1.0


def test_tfds_central_square_resize_and_label_free_dataset():
    with tfds.testing.mock_data(num_examples=32):
        info, it = data.train_iterator("tfds:celeb_a@64", 8, seed=0, num_threads=1)
        batch = next(it)
    assert info.shape == (64, 64, 3) and info.num_classes == 0  # CelebA has no class label
    assert batch["image"].shape == (8, 64, 64, 3) and batch["image"].dtype == np.float32
    np.testing.assert_array_equal(batch["label"], np.zeros(8, np.int32))
    with pytest.raises(data.UnknownDatasetError, match="after '@' must be the image size"):
        data.load("tfds:celeb_a@big")


def test_central_square_resize_keeps_the_centre():
    from jaxgen.data.sources import central_square_resize

    image = np.zeros((6, 4, 1), np.uint8)
    image[1:5] = np.arange(16, dtype=np.uint8).reshape(4, 4, 1)  # the central 4x4 square
    np.testing.assert_array_equal(central_square_resize(image, 4), image[1:5])
    wide = np.full((4, 10, 3), 200, np.uint8)
    wide[:, 3:7] = 50  # the central square is uniform, the sides are not
    np.testing.assert_array_equal(central_square_resize(wide, 2), np.full((2, 2, 3), 50))
    # Downsizing averages: a fine checkerboard becomes mid-grey.
    checker = (np.indices((8, 8)).sum(0) % 2 * 255).astype(np.uint8)[..., None]
    np.testing.assert_allclose(central_square_resize(checker, 2).astype(float), 127.5, atol=8)

def _take(it, n):
    return [next(it)["label"].copy() for _ in range(n)]


def test_iterator_state_restores_the_exact_stream():
    _, it = data.train_iterator("digits", 64, seed=3, num_threads=1)
    _take(it, 5)
    state = it.get_state()
    expected = _take(it, 30)  # crosses an epoch boundary (1442 // 64 = 22 batches)
    _, fresh = data.train_iterator("digits", 64, seed=3, num_threads=1)
    fresh.set_state(state)
    np.testing.assert_array_equal(_take(fresh, 30), expected)


def test_epochs_are_fresh_permutations():
    _, x, _ = data.load_arrays("digits", "train")
    _, it = data.train_iterator("digits", len(x) // 2, seed=0, num_threads=1)
    epochs = [np.concatenate([next(it)["image"] for _ in range(2)]) for _ in range(2)]
    for epoch in epochs:  # each epoch is the whole split once, in its own order
        assert sorted(map(bytes, epoch)) == sorted(map(bytes, x))
    assert not np.array_equal(epochs[0], epochs[1])


def test_process_slices_rebuild_the_single_process_batch():
    _, single = data.train_iterator("digits", 32, seed=1, num_threads=1,
                                    process_index=0, process_count=1)
    parts = [data.train_iterator("digits", 32, seed=1, num_threads=1,
                                 process_index=p, process_count=4)[1] for p in range(4)]
    for _ in range(50):  # past the first epoch
        whole = next(single)
        pieces = [next(part) for part in parts]
        for key in whole:
            np.testing.assert_array_equal(np.concatenate([p[key] for p in pieces]), whole[key])


def test_batch_not_divisible_by_processes():
    with pytest.raises(ValueError, match="not divisible by the 3 processes"):
        data.train_iterator("digits", 32, seed=0, process_index=0, process_count=3)
