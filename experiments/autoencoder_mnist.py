"""Latent diffusion's first stage on TFDS MNIST (60,000 digits) for accelerators: the CPU
config's fully convolutional VAE (28x28x1 to a 7x7x4 grid, KL weight 1e-3), wider (64-128
channels), batch 256, 20,000 steps.

    python -m jaxgen train --config experiments/autoencoder_mnist.py   # runs/autoencoder_mnist
"""

from pathlib import Path

from jaxgen import config as config_lib


def get_config():
    return config_lib.for_accelerators(
        Path(__file__).with_name("autoencoder_mnist5k.py"), "tfds:mnist", batch_size=256,
        steps=20_000, every=5000, model={"channels": (64, 128)})
