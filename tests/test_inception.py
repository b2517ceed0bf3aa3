"""FID's Inception-v3 (`jaxgen.models.inception`) and pytorch-fid's weight file
(`jaxgen.pretrained.inception`): parity with pytorch-fid on random weights drawn by
`tests/inception_fixtures.py` (which regenerates the reference), the torch-free reader on files
torch wrote, its refusal of pickles that name code, and strictness about the file and every
tensor. Where torch and pytorch-fid are installed, the parity is also checked live."""

import json
import pickle
import zipfile

import jax
import jax.numpy as jnp
import ml_dtypes
import numpy as np
import pytest
from flax import nnx

from jaxgen import parallel
from jaxgen.models.inception import preprocess
from jaxgen.pretrained import PretrainedError
from jaxgen.pretrained import inception as pretrained_inception
from jaxgen.pretrained.inception import (
    WEIGHTS_ENV,
    WEIGHTS_FILE,
    WEIGHTS_URL,
    check_sha256,
    inception_from_state_dict,
    inception_params,
    load_inception,
)
from jaxgen.pretrained.torch_file import read_torch_file
from tests import inception_fixtures as fixtures

ROOT = fixtures.ROOT


@pytest.fixture(scope="module")
def state_dict():
    return fixtures.random_state_dict(fixtures.SEED)


@pytest.fixture(scope="module")
def one_device():
    # One device: replicated on 8 fake CPU devices, each forward would run 8 times.
    return parallel.make_mesh(1, devices=jax.devices()[:1])


@pytest.fixture(scope="module")
def model(state_dict, one_device):
    # Without BatchNorm's num_batches_tracked counters, which inference never reads (files
    # written before torch 0.4.1 lack them; `test_state_dict_is_mapped_strictly` has them).
    weights = {k: v for k, v in state_dict.items() if not k.endswith(".num_batches_tracked")}
    return inception_from_state_dict(weights, mesh=one_device)


@pytest.fixture(scope="module")
def apply(model):
    """`model(images)` jitted over the split state, as an evaluation loop runs it."""
    graphdef, state = nnx.split(model)
    forward = jax.jit(lambda state, images: nnx.merge(graphdef, state)(images))
    return lambda images: jax.tree.map(np.asarray, forward(state, images))


def _relative(out, expected):
    """Largest elementwise difference per row, relative to the row's largest magnitude."""
    return np.abs(out - expected).max(-1) / np.abs(expected).max(-1)


def test_generator_has_pytorch_fids_names_and_shapes(state_dict):
    recorded = {name: (tuple(shape), dtype) for name, shape, dtype in
                json.loads((ROOT / "state_dict.json").read_text())}
    assert len(recorded) == 566  # 94 conv + BatchNorm layers and fc
    drawn = {name: (array.shape, str(array.dtype)) for name, array in state_dict.items()}
    assert drawn == recorded


def test_matches_pytorch_fid_features_and_logits(apply):
    """uint8 images in, pytorch-fid's resize included: 32x32 and 64x64 upsampled, 400x336
    shrunk without antialiasing."""
    ref = np.load(ROOT / "reference.npz")
    images = fixtures.images()
    assert [list(image.shape[:2]) for image in images] == ref["sizes"].tolist()
    assert fixtures.image_digests(images) == ref["image_sha256"].tolist()
    for i, image in enumerate(images):
        pool, logits = apply(image[None])
        assert pool.shape == (1, 2048) and logits.shape == (1, 1008)
        assert pool.dtype == logits.dtype == np.float32
        assert _relative(pool, ref["features"][i:i + 1]).max() <= 1e-4, image.shape
        assert _relative(logits, ref["logits"][i:i + 1]).max() <= 1e-4, image.shape


def test_preprocess_is_pytorch_fids_pipeline():
    """Floats in [0, 1] are what uint8 becomes; the output is 299x299 in [-1, 1]."""
    image = fixtures.images()[2][None]
    x = preprocess(image)
    assert x.shape == (1, 299, 299, 3) and x.dtype == jnp.float32
    assert float(x.min()) >= -1 and float(x.max()) <= 1
    np.testing.assert_allclose(np.asarray(preprocess(image.astype(np.float32) / 255)),
                               np.asarray(x), rtol=0, atol=1e-6)


@pytest.mark.parametrize("images, wrong", [
    (np.zeros((2, 32, 32, 1), np.uint8), "shape [2, 32, 32, 1]"),
    (np.zeros((32, 32, 3), np.uint8), "shape [32, 32, 3]"),
    (np.zeros((1, 3, 32, 32), np.uint8), "shape [1, 3, 32, 32]"),
    (np.zeros((1, 32, 32, 3), np.int32), "dtype int32"),
    (-np.ones((1, 32, 32, 3), np.float32), "values in [-1, -1]"),
    (np.full((1, 32, 32, 3), 255.0, np.float32), "values in [255, 255]"),
])
def test_wrong_images_give_one_value_error(images, wrong, model):
    with pytest.raises(ValueError, match=r"uint8 \[batch, height, width, 3\]") as error:
        model(images)
    assert wrong in str(error.value) and "\n" not in str(error.value)


@pytest.mark.parametrize("name", ["torch_written.pth", "torch_written_legacy.pth"])
def test_reader_reads_what_torch_wrote(name):
    """dtypes, a scalar, and views sharing a storage (an offset, a transpose, a stride), in
    torch's zip format and in the format before it."""
    expected = np.load(ROOT / "torch_written.npz")
    tensors = read_torch_file(ROOT / name)
    assert sorted(tensors) == sorted(expected.files)
    for key, array in tensors.items():
        want = expected[key]
        if key == "bfloat16":
            assert array.dtype == ml_dtypes.bfloat16
            array = array.astype(np.float32)
        assert array.dtype == want.dtype and array.shape == want.shape, key
        np.testing.assert_array_equal(array, want, err_msg=key)


def _malicious_pickle(marker):
    # Protocol 0, by hand: GLOBAL os.system, called on a shell command (REDUCE).
    return f"cos\nsystem\n(S'touch {marker}'\ntR.".encode()


@pytest.mark.parametrize("container", ["zip", "raw"])
def test_reader_refuses_a_pickle_that_names_code(tmp_path, container):
    marker = tmp_path / "ran"
    path = tmp_path / "evil.pth"
    if container == "zip":  # laid out as torch.save's archives are
        with zipfile.ZipFile(path, "w") as archive:
            archive.writestr("evil/data.pkl", _malicious_pickle(marker))
            archive.writestr("evil/version", "3\n")
    else:
        path.write_bytes(_malicious_pickle(marker))
    with pytest.raises(PretrainedError, match=r"names os\.system.*refused unread"):
        read_torch_file(path)
    assert not marker.exists()
    # As pickle.dumps writes a function of os (under its module's real name, posix).
    path.write_bytes(pickle.dumps(pickle.loads(b"cos\ngetcwd\n.")))
    with pytest.raises(PretrainedError, match=r"names posix\.getcwd"):
        read_torch_file(path)


def test_reader_refuses_a_tensor_outside_its_storage(tmp_path):
    path = tmp_path / "short.pth"
    with zipfile.ZipFile(ROOT / "torch_written.pth") as source, zipfile.ZipFile(
            path, "w") as target:
        for item in source.infolist():
            data = source.read(item)
            if item.filename == "torch_written/data/0":  # the 24 floats of "float32"
                data = data[:40]
            target.writestr(item, data)
    with pytest.raises(PretrainedError, match="shorter than its tensors need"):
        read_torch_file(path)


def test_missing_weights_say_where_to_get_them(tmp_path, monkeypatch):
    monkeypatch.delenv(WEIGHTS_ENV, raising=False)
    for path in (None, tmp_path, tmp_path / "nowhere.pth"):
        with pytest.raises(PretrainedError) as error:
            load_inception(path)
        message = str(error.value)
        assert WEIGHTS_FILE in message and WEIGHTS_URL in message and WEIGHTS_ENV in message
        assert "\n" not in message
    monkeypatch.setenv(WEIGHTS_ENV, str(tmp_path / "elsewhere.pth"))
    with pytest.raises(PretrainedError, match="elsewhere.pth"):
        load_inception()


def test_wrong_sha256_names_the_expected_file(tmp_path, monkeypatch):
    """As torch.hub checks a file named `<name>-<hex>.<ext>`: its SHA-256 begins with <hex>."""
    path = tmp_path / WEIGHTS_FILE
    path.write_bytes((ROOT / "torch_written.pth").read_bytes())
    monkeypatch.setenv(WEIGHTS_ENV, str(tmp_path))  # a folder holding the file
    with pytest.raises(PretrainedError) as error:
        load_inception()
    message = str(error.value)
    assert f"is not {WEIGHTS_FILE}" in message and "not 6726825d" in message
    assert "\n" not in message
    digest = check_sha256(path, expected_name="whatever.pth")  # no hex: nothing to compare
    renamed = tmp_path / f"weights-{digest[:8]}.pth"
    path.rename(renamed)
    assert check_sha256(renamed, expected_name=renamed.name) == digest


def test_state_dict_is_mapped_strictly(state_dict, one_device, model):
    """A missing, an extra and a misshapen tensor are each refused by name (BatchNorm's
    num_batches_tracked counters are there, and not refused); layouts are converted."""
    missing = dict(state_dict)
    del missing["Mixed_6b.branch7x7_2.bn.running_var"]
    with pytest.raises(PretrainedError, match=r"lack tensor Mixed_6b\.branch7x7_2\.bn\."
                                              r"running_var \(shape \[128\]\)"):
        inception_params(missing, mesh=one_device)
    extra = {**state_dict, "AuxLogits.fc.weight": np.zeros((1008, 768), np.float32)}
    with pytest.raises(PretrainedError, match=r"1 tensor\(s\) this model does not use, e\.g\. "
                                              r"AuxLogits\.fc\.weight"):
        inception_params(extra, mesh=one_device)
    name = "Mixed_6b.branch7x7_2.conv.weight"  # [128, 128, 1, 7]: kernel height and width
    swapped = {**state_dict, name: state_dict[name].transpose(0, 1, 3, 2)}
    with pytest.raises(PretrainedError, match=rf"{name} has shape \[128, 128, 7, 1\], "
                                              r"expected \[128, 128, 1, 7\]"):
        inception_params(swapped, mesh=one_device)
    np.testing.assert_array_equal(model.Mixed_7c.branch_pool.bn.var[...],
                                  state_dict["Mixed_7c.branch_pool.bn.running_var"])
    np.testing.assert_array_equal(model.fc.kernel[...], state_dict["fc.weight"].T)
    np.testing.assert_array_equal(model.Conv2d_1a_3x3.conv.kernel[...],
                                  state_dict["Conv2d_1a_3x3.conv.weight"].transpose(2, 3, 1, 0))


def test_live_against_pytorch_fid(state_dict, apply, tmp_path, monkeypatch):
    """With torch: new images through pytorch-fid's own path, and the real state dict of its
    network saved by torch in both formats and loaded through `load_inception`."""
    torch = pytest.importorskip("torch")
    pytest.importorskip("torchvision")  # pytorch-fid builds its network from torchvision's
    pytest.importorskip("pytorch_fid")
    # Taller than 299 and narrower: shrunk in one direction, stretched in the other.
    image = np.random.default_rng(7).integers(0, 256, (310, 200, 3), dtype=np.uint8)
    networks = fixtures.pytorch_fid_networks(state_dict)
    ref = fixtures.pytorch_fid_reference(networks, [image])
    pool, logits = apply(image[None])
    assert _relative(pool, ref["features"]).max() <= 1e-4
    assert _relative(logits, ref["logits"]).max() <= 1e-4

    saved = networks[1].state_dict()
    monkeypatch.setattr(pretrained_inception, "check_sha256", lambda path: None)
    for legacy in (False, True):
        path = tmp_path / f"legacy{legacy}" / WEIGHTS_FILE
        path.parent.mkdir()
        torch.save(saved, path, _use_new_zipfile_serialization=not legacy)
        tensors = read_torch_file(path)
        assert list(tensors) == list(saved)
        for key, value in saved.items():
            np.testing.assert_array_equal(tensors[key], value.numpy(), err_msg=key)
    model = load_inception(path, mesh=parallel.make_mesh(1, devices=jax.devices()[:1]))
    assert np.asarray(model.fc.kernel[...]).tobytes() == state_dict["fc.weight"].T.tobytes()
