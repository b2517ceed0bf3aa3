"""DCGAN on the full TFDS MNIST (60,000 digits) for accelerators: wider players, batch 256.

    python -m jaxgen train --config experiments/dcgan_mnist.py --workdir runs/dcgan_mnist
"""

from pathlib import Path

from jaxgen import config as config_lib


def get_config():
    return config_lib.for_accelerators(
        Path(__file__).with_name("dcgan_mnist5k.py"), "tfds:mnist", batch_size=256,
        steps=20_000, every=2000,
        model={"latent_dim": 100, "g_channels": (256, 128), "d_channels": (64, 128)})
