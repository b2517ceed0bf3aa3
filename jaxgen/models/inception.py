"""The Inception-v3 network of FID (Flax NNX, NHWC): pytorch-fid's `fid_inception_v3()`.

Heusel et al. 2017 computed FID with the TensorFlow Inception graph of 2015-12-05
(`pool_3:0`, 2048-d); pytorch-fid ported it as torchvision's Inception-v3 with 1008 classes, no
auxiliary head, and four patched blocks: the A and C blocks and the first E block average-pool
without counting the zero padding (as TensorFlow does), and the last E block max-pools. Scores
comparable with published FID, KID, precision/recall (the pool features) and Inception Score
(the 1008-way logits of `fc`) need exactly this network and its input pipeline:

  uint8 [B, H, W, 3] -> [0, 1] -> bilinear resize to 299x299 (PyTorch's `align_corners=False`,
  no antialiasing, also when shrinking) -> [-1, 1]

`jaxgen.pretrained.inception.load_inception` fills it from pytorch-fid's weight file; the
attribute names are torchvision's, so the key map is the module tree itself.
"""

from typing import NamedTuple

import jax
import jax.numpy as jnp
import numpy as np
from flax import nnx

SIZE = 299  # the input side the network was trained at
FEATURES = 2048  # pool_3 width: FID, KID, precision/recall
CLASSES = 1008  # TF's 1000 ImageNet classes plus 8 unused outputs: Inception Score


class InceptionOutputs(NamedTuple):
    pool: jax.Array  # [B, 2048] float32: the pool_3 features of FID, KID, precision/recall
    logits: jax.Array  # [B, 1008] float32: Inception Score's softmax is over these


def _pair(value):
    return (value, value) if isinstance(value, int) else tuple(value)


class BasicConv2d(nnx.Module):
    """Conv without bias, BatchNorm with running statistics (eps 0.001), ReLU."""

    def __init__(self, cin: int, cout: int, kernel, *, stride=1, padding=0, dtype=jnp.float32,
                 precision=None, rngs: nnx.Rngs):
        ph, pw = _pair(padding)
        self.conv = nnx.Conv(cin, cout, _pair(kernel), strides=_pair(stride),
                             padding=((ph, ph), (pw, pw)), use_bias=False, dtype=dtype,
                             precision=precision, rngs=rngs)
        self.bn = nnx.BatchNorm(cout, use_running_average=True, epsilon=1e-3, dtype=dtype,
                                rngs=rngs)

    def __call__(self, x):
        return nnx.relu(self.bn(self.conv(x)))


def _avg_pool_3x3(x):
    # TensorFlow's average pool leaves the padding out of the mean (pytorch-fid's
    # `count_include_pad=False` patch).
    return nnx.avg_pool(x, (3, 3), strides=(1, 1), padding=((1, 1), (1, 1)),
                        count_include_pad=False)


def _max_pool(x, stride, padding="VALID"):
    return nnx.max_pool(x, (3, 3), strides=(stride, stride), padding=padding)


class InceptionA(nnx.Module):
    """35x35 block: 1x1, 5x5, double 3x3 and pooled branches (`FIDInceptionA`)."""

    def __init__(self, cin: int, pool_features: int, **kw):
        self.branch1x1 = BasicConv2d(cin, 64, 1, **kw)
        self.branch5x5_1 = BasicConv2d(cin, 48, 1, **kw)
        self.branch5x5_2 = BasicConv2d(48, 64, 5, padding=2, **kw)
        self.branch3x3dbl_1 = BasicConv2d(cin, 64, 1, **kw)
        self.branch3x3dbl_2 = BasicConv2d(64, 96, 3, padding=1, **kw)
        self.branch3x3dbl_3 = BasicConv2d(96, 96, 3, padding=1, **kw)
        self.branch_pool = BasicConv2d(cin, pool_features, 1, **kw)

    def __call__(self, x):
        branch5x5 = self.branch5x5_2(self.branch5x5_1(x))
        branch3x3dbl = self.branch3x3dbl_3(self.branch3x3dbl_2(self.branch3x3dbl_1(x)))
        branch_pool = self.branch_pool(_avg_pool_3x3(x))
        return jnp.concatenate([self.branch1x1(x), branch5x5, branch3x3dbl, branch_pool], -1)


class InceptionB(nnx.Module):
    """35 -> 17 reduction (`Mixed_6a`)."""

    def __init__(self, cin: int, **kw):
        self.branch3x3 = BasicConv2d(cin, 384, 3, stride=2, **kw)
        self.branch3x3dbl_1 = BasicConv2d(cin, 64, 1, **kw)
        self.branch3x3dbl_2 = BasicConv2d(64, 96, 3, padding=1, **kw)
        self.branch3x3dbl_3 = BasicConv2d(96, 96, 3, stride=2, **kw)

    def __call__(self, x):
        branch3x3dbl = self.branch3x3dbl_3(self.branch3x3dbl_2(self.branch3x3dbl_1(x)))
        return jnp.concatenate([self.branch3x3(x), branch3x3dbl, _max_pool(x, 2)], -1)


class InceptionC(nnx.Module):
    """17x17 block with factorized 7x7 convolutions (`FIDInceptionC`)."""

    def __init__(self, cin: int, channels_7x7: int, **kw):
        c7 = channels_7x7
        self.branch1x1 = BasicConv2d(cin, 192, 1, **kw)
        self.branch7x7_1 = BasicConv2d(cin, c7, 1, **kw)
        self.branch7x7_2 = BasicConv2d(c7, c7, (1, 7), padding=(0, 3), **kw)
        self.branch7x7_3 = BasicConv2d(c7, 192, (7, 1), padding=(3, 0), **kw)
        self.branch7x7dbl_1 = BasicConv2d(cin, c7, 1, **kw)
        self.branch7x7dbl_2 = BasicConv2d(c7, c7, (7, 1), padding=(3, 0), **kw)
        self.branch7x7dbl_3 = BasicConv2d(c7, c7, (1, 7), padding=(0, 3), **kw)
        self.branch7x7dbl_4 = BasicConv2d(c7, c7, (7, 1), padding=(3, 0), **kw)
        self.branch7x7dbl_5 = BasicConv2d(c7, 192, (1, 7), padding=(0, 3), **kw)
        self.branch_pool = BasicConv2d(cin, 192, 1, **kw)

    def __call__(self, x):
        branch7x7 = self.branch7x7_3(self.branch7x7_2(self.branch7x7_1(x)))
        branch7x7dbl = x
        for i in range(1, 6):
            branch7x7dbl = getattr(self, f"branch7x7dbl_{i}")(branch7x7dbl)
        branch_pool = self.branch_pool(_avg_pool_3x3(x))
        return jnp.concatenate([self.branch1x1(x), branch7x7, branch7x7dbl, branch_pool], -1)


class InceptionD(nnx.Module):
    """17 -> 8 reduction (`Mixed_7a`)."""

    def __init__(self, cin: int, **kw):
        self.branch3x3_1 = BasicConv2d(cin, 192, 1, **kw)
        self.branch3x3_2 = BasicConv2d(192, 320, 3, stride=2, **kw)
        self.branch7x7x3_1 = BasicConv2d(cin, 192, 1, **kw)
        self.branch7x7x3_2 = BasicConv2d(192, 192, (1, 7), padding=(0, 3), **kw)
        self.branch7x7x3_3 = BasicConv2d(192, 192, (7, 1), padding=(3, 0), **kw)
        self.branch7x7x3_4 = BasicConv2d(192, 192, 3, stride=2, **kw)

    def __call__(self, x):
        branch3x3 = self.branch3x3_2(self.branch3x3_1(x))
        branch7x7x3 = x
        for i in range(1, 5):
            branch7x7x3 = getattr(self, f"branch7x7x3_{i}")(branch7x7x3)
        return jnp.concatenate([branch3x3, branch7x7x3, _max_pool(x, 2)], -1)


class InceptionE(nnx.Module):
    """8x8 block with split 1x3 / 3x1 outputs; `pool` is "avg" in `Mixed_7b`
    (`FIDInceptionE_1`) and "max" in `Mixed_7c` (`FIDInceptionE_2`)."""

    def __init__(self, cin: int, pool: str, **kw):
        if pool not in ("avg", "max"):
            raise ValueError(f"pool must be 'avg' or 'max', got {pool!r}")
        self.pool = pool
        self.branch1x1 = BasicConv2d(cin, 320, 1, **kw)
        self.branch3x3_1 = BasicConv2d(cin, 384, 1, **kw)
        self.branch3x3_2a = BasicConv2d(384, 384, (1, 3), padding=(0, 1), **kw)
        self.branch3x3_2b = BasicConv2d(384, 384, (3, 1), padding=(1, 0), **kw)
        self.branch3x3dbl_1 = BasicConv2d(cin, 448, 1, **kw)
        self.branch3x3dbl_2 = BasicConv2d(448, 384, 3, padding=1, **kw)
        self.branch3x3dbl_3a = BasicConv2d(384, 384, (1, 3), padding=(0, 1), **kw)
        self.branch3x3dbl_3b = BasicConv2d(384, 384, (3, 1), padding=(1, 0), **kw)
        self.branch_pool = BasicConv2d(cin, 192, 1, **kw)

    def __call__(self, x):
        branch3x3 = self.branch3x3_1(x)
        branch3x3 = [self.branch3x3_2a(branch3x3), self.branch3x3_2b(branch3x3)]
        branch3x3dbl = self.branch3x3dbl_2(self.branch3x3dbl_1(x))
        branch3x3dbl = [self.branch3x3dbl_3a(branch3x3dbl), self.branch3x3dbl_3b(branch3x3dbl)]
        pooled = _avg_pool_3x3(x) if self.pool == "avg" else _max_pool(x, 1, ((1, 1), (1, 1)))
        return jnp.concatenate([self.branch1x1(x), *branch3x3, *branch3x3dbl,
                                self.branch_pool(pooled)], -1)


def preprocess(images) -> jax.Array:
    """pytorch-fid's input pipeline: uint8 [B, H, W, 3] (or floats in [0, 1]) -> float32
    [B, 299, 299, 3] in [-1, 1], resized as `F.interpolate(mode="bilinear",
    align_corners=False)` does (no antialiasing when shrinking)."""
    check_images(images)
    images = jnp.asarray(images)
    x = images.astype(jnp.float32)
    if images.dtype == jnp.uint8:
        x = x / 255.0
    x = jax.image.resize(x, (x.shape[0], SIZE, SIZE, 3), method="linear", antialias=False)
    return 2.0 * x - 1.0


def check_images(images) -> None:
    """Raises one ValueError unless `images` is uint8 [B, H, W, 3], or floating [B, H, W, 3]
    with values in [0, 1] (the range is checked where the values are known, outside jit)."""
    shape, dtype = tuple(np.shape(images)), np.dtype(getattr(images, "dtype", np.float64))
    wrong = None
    if len(shape) != 4 or shape[-1] != 3 or 0 in shape:
        wrong = f"shape {list(shape)}"
    elif dtype != np.uint8 and not np.issubdtype(dtype, np.floating):
        wrong = f"dtype {dtype}"
    elif dtype != np.uint8:
        try:
            values = np.asarray(images)
        except jax.errors.TracerArrayConversionError:  # traced: the range is the caller's
            values = None
        if values is not None and not (np.all(np.isfinite(values)) and values.min() >= 0
                                       and values.max() <= 1):
            wrong = f"values in [{values.min():.3g}, {values.max():.3g}]"
    if wrong:
        raise ValueError(f"FID Inception takes RGB images as uint8 [batch, height, width, 3] "
                         f"(0..255) or floats in [0, 1] of that shape; got {wrong}. Map "
                         "[-1, 1] samples with (x + 1) / 2, repeat grayscale to 3 channels.")


class FIDInceptionV3(nnx.Module):
    """pytorch-fid's FID Inception-v3 (see the module docstring). `model(images)` is
    `InceptionOutputs(pool [B, 2048], logits [B, 1008])`, both float32, from one forward of
    `preprocess(images)`. Parameters are float32; `dtype` is the compute dtype, and float32
    convolutions run at full precision (`precision`) so that features match the reference
    also on accelerators whose default float32 matmul rounds its inputs."""

    def __init__(self, *, dtype=jnp.float32, precision="highest", rngs: nnx.Rngs):
        kw = dict(dtype=dtype, precision=precision, rngs=rngs)
        self.dtype = dtype
        self.Conv2d_1a_3x3 = BasicConv2d(3, 32, 3, stride=2, **kw)
        self.Conv2d_2a_3x3 = BasicConv2d(32, 32, 3, **kw)
        self.Conv2d_2b_3x3 = BasicConv2d(32, 64, 3, padding=1, **kw)
        self.Conv2d_3b_1x1 = BasicConv2d(64, 80, 1, **kw)
        self.Conv2d_4a_3x3 = BasicConv2d(80, 192, 3, **kw)
        self.Mixed_5b = InceptionA(192, pool_features=32, **kw)
        self.Mixed_5c = InceptionA(256, pool_features=64, **kw)
        self.Mixed_5d = InceptionA(288, pool_features=64, **kw)
        self.Mixed_6a = InceptionB(288, **kw)
        self.Mixed_6b = InceptionC(768, channels_7x7=128, **kw)
        self.Mixed_6c = InceptionC(768, channels_7x7=160, **kw)
        self.Mixed_6d = InceptionC(768, channels_7x7=160, **kw)
        self.Mixed_6e = InceptionC(768, channels_7x7=192, **kw)
        self.Mixed_7a = InceptionD(768, **kw)
        self.Mixed_7b = InceptionE(1280, pool="avg", **kw)
        self.Mixed_7c = InceptionE(2048, pool="max", **kw)
        self.fc = nnx.Linear(FEATURES, CLASSES, dtype=dtype, precision=precision, rngs=rngs)

    def forward(self, x) -> InceptionOutputs:
        """The outputs of preprocessed images [B, 299, 299, 3] in [-1, 1]."""
        if x.ndim != 4 or x.shape[1:] != (SIZE, SIZE, 3):
            raise ValueError(f"forward takes preprocessed images [batch, {SIZE}, {SIZE}, 3], "
                             f"got shape {list(x.shape)}; use the model's __call__ (or "
                             "`preprocess`) for images of any size")
        x = x.astype(self.dtype)
        x = self.Conv2d_2b_3x3(self.Conv2d_2a_3x3(self.Conv2d_1a_3x3(x)))
        x = self.Conv2d_4a_3x3(self.Conv2d_3b_1x1(_max_pool(x, 2)))
        x = _max_pool(x, 2)
        for name in ("5b", "5c", "5d", "6a", "6b", "6c", "6d", "6e", "7a", "7b", "7c"):
            x = getattr(self, f"Mixed_{name}")(x)
        pool = jnp.mean(x.astype(jnp.float32), axis=(1, 2))
        logits = self.fc(pool.astype(self.dtype)).astype(jnp.float32)
        return InceptionOutputs(pool, logits)

    def __call__(self, images) -> InceptionOutputs:
        """The outputs of uint8 images [B, H, W, 3] (or floats in [0, 1]), any H and W."""
        return self.forward(preprocess(images))

    def pool_features(self, images) -> jax.Array:
        """The 2048-d features FID, KID and precision/recall compare, [B, 2048] float32."""
        return self(images).pool

    def logits(self, images) -> jax.Array:
        """The 1008-way logits Inception Score uses (softmax over them), [B, 1008] float32."""
        return self(images).logits
