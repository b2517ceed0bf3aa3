"""Regenerates the PyTorch reference of `tests/test_inception.py` (needs torch, torchvision and
pytorch-fid; importing this module needs none of them):

    python -m tests.inception_fixtures

pytorch-fid's real weights (92 MB) are not committed; the reference is of random weights that
`random_state_dict` draws with numpy, under the names and shapes of pytorch-fid's own state dict
(recorded from torch in `state_dict.json`, so the test can check the generator against them).
The script loads those weights into pytorch-fid's network through pytorch-fid's own code path
(`InceptionV3([3])`, its weight download replaced by the state dict) and writes, under
`tests/data/inception/`:

  state_dict.json          every tensor's name, shape and dtype, in torch's order
  reference.npz            for `images()` (uint8, 32x32 and 64x64 upsampled, 400x336
                           downsampled): the 2048-d features of `fid_score.get_activations`
                           on PNG files of them, and the 1008-way logits of
                           `fid_inception_v3()` on the same input, resized and scaled as
                           pytorch-fid does
  torch_written.pth        a few tensors torch.save wrote (float32, float16, bfloat16, int64;
  torch_written_legacy.pth a view at a storage offset, a transposed view), in the zip format
                           and in the format before torch 1.6
  torch_written.npz        their expected values

Regenerating gives the same files (up to the float rounding of the torch build), except
`torch_written_legacy.pth`, whose storage keys are the writer's memory addresses.
"""

import hashlib
import json
from pathlib import Path

import numpy as np

ROOT = Path(__file__).parent / "data" / "inception"
SEED = 0
IMAGE_SIZES = ((32, 32), (64, 64), (400, 336))
_TORCHVISION_SCHEMAS = None  # op schemas declared for a torchvision without its native ops


def images() -> list[np.ndarray]:
    """The reference images, uint8 [H, W, 3], one per `IMAGE_SIZES` entry."""
    rng = np.random.default_rng(1)
    out = []
    for h, w in IMAGE_SIZES:
        # Smooth structure plus pixel noise: interpolation errors show in either.
        yy, xx = np.meshgrid(np.linspace(0, 1, h), np.linspace(0, 1, w), indexing="ij")
        phase = rng.uniform(0, 2 * np.pi, 3)
        smooth = 0.5 + 0.35 * np.sin(6 * xx[..., None] + 4 * yy[..., None] + phase)
        noisy = smooth + 0.15 * rng.standard_normal((h, w, 3))
        out.append(np.clip(np.round(255 * noisy), 0, 255).astype(np.uint8))
    return out


def image_digests(uint8_images: list) -> list[str]:
    """SHA-256 of each image's bytes: the test checks it sees the images of the reference."""
    return [hashlib.sha256(np.ascontiguousarray(image).tobytes()).hexdigest()
            for image in uint8_images]


def state_dict_spec() -> dict[str, tuple[tuple[int, ...], str]]:
    """pytorch-fid's state-dict names -> (shape, dtype), derived from jaxgen's key map plus
    BatchNorm's `num_batches_tracked` counters; `state_dict.json` records torch's own."""
    from flax import nnx

    from jaxgen.models.inception import FIDInceptionV3
    from jaxgen.pretrained.inception import key_map
    from jaxgen.pretrained.weights import torch_shape

    model = nnx.eval_shape(lambda: FIDInceptionV3(rngs=nnx.Rngs(0)))
    shapes = nnx.state(model).to_pure_dict()
    spec = {}
    for entry in key_map(model):
        node = shapes
        for k in entry.path:
            node = node[k]
        spec[entry.keys[0]] = (torch_shape(tuple(node.shape), entry.layout), "float32")
        if entry.keys[0].endswith(".bn.running_var"):
            spec[entry.keys[0].replace("running_var", "num_batches_tracked")] = ((), "int64")
    return spec


def random_state_dict(seed: int = SEED) -> dict[str, np.ndarray]:
    """Random weights for pytorch-fid's network under its names and shapes: He-scaled convs,
    BatchNorms with scales near 1, small shifts and means, positive variances, so activations
    stay of order one through all 94 layers. Drawn in sorted name order, so the same on every
    machine."""
    rng = np.random.default_rng(seed)
    out = {}
    for name, (shape, dtype) in sorted(state_dict_spec().items()):
        kind = name.rsplit(".", 1)[-1]
        if dtype == "int64":  # num_batches_tracked
            out[name] = np.asarray(int(rng.integers(0, 1000)), np.int64)
            continue
        if name.startswith("fc."):
            scale = 1 / np.sqrt(shape[-1]) if kind == "weight" else 0.1
            out[name] = np.float32(scale) * rng.standard_normal(shape, dtype=np.float32)
        elif name.endswith(".conv.weight"):
            fan_in = int(np.prod(shape[1:]))
            out[name] = np.float32(np.sqrt(2 / fan_in)) * rng.standard_normal(
                shape, dtype=np.float32)
        elif kind == "weight":
            out[name] = rng.uniform(0.7, 1.3, shape).astype(np.float32)
        elif kind == "running_var":
            out[name] = rng.uniform(0.5, 2.0, shape).astype(np.float32)
        else:  # bias, running_mean
            out[name] = 0.2 * rng.standard_normal(shape, dtype=np.float32)
    return out


def written_tensors(torch) -> dict:
    """The tensors of `torch_written*.pth`: dtypes and views a state dict may hold."""
    generator = torch.Generator().manual_seed(3)
    base = torch.randn(6, 5, generator=generator)
    return {
        "float32": torch.randn(2, 3, 4, generator=generator),
        "float16": torch.randn(7, generator=generator).half(),
        "bfloat16": torch.randn(3, 2, generator=generator).bfloat16(),
        "int64": torch.arange(-3, 5),
        "scalar": torch.tensor(2.5),
        "base": base,
        "offset_view": base[2:4],  # shares `base`'s storage from element 10
        "transposed": base.t(),  # strides (1, 5)
        "strided": base[1:, ::2],  # offset 5, strides (5, 2)
    }


def _import_pytorch_fid():
    """pytorch-fid's modules. torchvision wheels built for another torch variant (a CUDA build
    beside a CPU torch) fail to load their native ops and then to register two of them at
    import; FID's network needs none of those ops, so their schemas are declared first."""
    try:
        import torchvision  # noqa: F401
    except RuntimeError as error:
        if "torchvision::nms" not in str(error):
            raise
        import sys

        from torch import library as torch_ops

        for name in [m for m in sys.modules if m.split(".")[0] == "torchvision"]:
            del sys.modules[name]
        global _TORCHVISION_SCHEMAS
        _TORCHVISION_SCHEMAS = torch_ops.Library("torchvision", "DEF")
        for op in ("nms", "qnms"):
            _TORCHVISION_SCHEMAS.define(f"{op}(Tensor dets, Tensor scores, float iou_threshold)"
                                        " -> Tensor")
        import torchvision  # noqa: F401
    from pytorch_fid import fid_score, inception

    return inception, fid_score


def pytorch_fid_networks(state_dict: dict[str, np.ndarray]):
    """(`InceptionV3([3])`, `fid_inception_v3()`) of pytorch-fid, built by its own code with
    `state_dict` in place of the downloaded weights (loaded strictly, as pytorch-fid does)."""
    import torch

    inception, _ = _import_pytorch_fid()
    tensors = {k: torch.from_numpy(np.array(v)) for k, v in state_dict.items()}
    original = inception.load_state_dict_from_url
    inception.load_state_dict_from_url = lambda url, **kwargs: dict(tensors)
    try:
        model = inception.InceptionV3([inception.InceptionV3.BLOCK_INDEX_BY_DIM[2048]]).eval()
        network = inception.fid_inception_v3().eval()
    finally:
        inception.load_state_dict_from_url = original
    return model, network


def pytorch_fid_reference(networks, uint8_images: list) -> dict:
    """pytorch-fid's features (its fid_score path, from PNG files) and its network's logits of
    `uint8_images`, from the `networks` of `pytorch_fid_networks`."""
    import tempfile

    import torch
    import torch.nn.functional as F
    from PIL import Image

    _, fid_score = _import_pytorch_fid()
    model, network = networks
    with tempfile.TemporaryDirectory() as folder:
        files = []
        for i, image in enumerate(uint8_images):
            files.append(f"{folder}/{i}.png")
            Image.fromarray(image).save(files[-1])
        features = fid_score.get_activations(files, model, batch_size=1, dims=2048,
                                             device="cpu", num_workers=0)
    logits = []
    with torch.no_grad():
        for image in uint8_images:
            x = torch.from_numpy(image).permute(2, 0, 1)[None].float() / 255  # TF.ToTensor
            x = F.interpolate(x, size=(299, 299), mode="bilinear", align_corners=False)
            logits.append(network(2 * x - 1).numpy()[0])
    return {"features": features.astype(np.float32), "logits": np.stack(logits)}


def main() -> None:
    import torch

    ROOT.mkdir(parents=True, exist_ok=True)
    networks = pytorch_fid_networks(random_state_dict(SEED))
    spec = [[name, list(t.shape), str(t.dtype).removeprefix("torch.")]
            for name, t in networks[1].state_dict().items()]
    (ROOT / "state_dict.json").write_text(
        "[\n" + ",\n".join(json.dumps(entry) for entry in spec) + "\n]\n")

    reference = pytorch_fid_reference(networks, images())
    np.savez(ROOT / "reference.npz", **reference, sizes=np.asarray(IMAGE_SIZES),
             seed=np.asarray(SEED), image_sha256=np.asarray(image_digests(images())))

    tensors = written_tensors(torch)
    torch.save(tensors, ROOT / "torch_written.pth")
    torch.save(tensors, ROOT / "torch_written_legacy.pth", _use_new_zipfile_serialization=False)
    np.savez(ROOT / "torch_written.npz",
             **{k: (v.float() if v.dtype == torch.bfloat16 else v).numpy()
                for k, v in tensors.items()})
    for path in sorted(ROOT.iterdir()):
        print(f"wrote {path} ({path.stat().st_size} bytes)")


if __name__ == "__main__":
    main()
