"""DCGAN on TFDS CIFAR-10 (32x32x3) for accelerators: 4x4 base, three 2x upsamplings, the
channel widths 512-256-128 (the usual 32x32 cut of Radford et al. 2016), batch 128.

    python -m jaxgen train --config experiments/dcgan_cifar10.py --workdir runs/dcgan_cifar10
"""

from pathlib import Path

from jaxgen import config as config_lib


def get_config():
    return config_lib.for_accelerators(
        Path(__file__).with_name("dcgan_mnist5k.py"), "tfds:cifar10", batch_size=128,
        steps=50_000, every=5000,
        model={"data_shape": (32, 32, 3), "latent_dim": 100, "g_channels": (512, 256, 128),
               "d_channels": (128, 256, 512)})
