"""DCGAN on TFDS CIFAR-10 (32x32x3) for accelerators: 4x4 base, three 2x upsamplings, the
channel widths 512-256-128 (the usual 32x32 cut of Radford et al. 2016), batch 128.

    python -m jaxgen train --config experiments/dcgan_cifar10.py --workdir runs/dcgan_cifar10
"""

from pathlib import Path

from jaxgen import config as config_lib


def get_config():
    config = config_lib.load(Path(__file__).with_name("dcgan_mnist5k.py"))
    config.data.num_threads = 16
    config.data.name = "tfds:cifar10"
    config.batch_size = 128
    config.steps = 50_000
    config.model.data_shape = (32, 32, 3)
    config.model.latent_dim = 100
    config.model.g_channels = (512, 256, 128)
    config.model.d_channels = (128, 256, 512)
    config.sample_every = 5000
    config.checkpoint_every = 5000
    return config
