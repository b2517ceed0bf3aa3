"""DCGAN on the full TFDS MNIST (60,000 digits) for accelerators: wider players, batch 256.

    python -m jaxgen train --config experiments/dcgan_mnist.py --workdir runs/dcgan_mnist
"""

from pathlib import Path

from jaxgen import config as config_lib


def get_config():
    config = config_lib.load(Path(__file__).with_name("dcgan_mnist5k.py"))
    config.data.num_threads = 16
    config.data.name = "tfds:mnist"
    config.batch_size = 256
    config.steps = 20_000
    config.model.latent_dim = 100
    config.model.g_channels = (256, 128)
    config.model.d_channels = (64, 128)
    config.sample_every = 2000
    config.checkpoint_every = 2000
    return config
