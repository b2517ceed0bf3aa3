"""DCGAN on TFDS CelebA at 64x64 for accelerators: the architecture of Radford et al. (2016),
section 4 (4x4 base, four 2x upsamplings, widths 512-256-128-64, z of 100 dimensions, batch
128, Adam 2e-4 with b1 0.5). Unconditional: CelebA has no class label. `tfds:celeb_a@64` takes
the central 178x178 square of each 218x178 photo and resizes it to 64x64.

Prepare the data once where the network is reachable (about 1.4 GB):
`tfds build celeb_a --file_format=array_record`, then

    python -m jaxgen train --config experiments/dcgan_celeba.py --workdir runs/dcgan_celeba
"""

from pathlib import Path

from jaxgen import config as config_lib


def get_config():
    return config_lib.for_accelerators(
        Path(__file__).with_name("dcgan_mnist5k.py"), "tfds:celeb_a@64", batch_size=128,
        steps=50_000, every=5000,
        model={"data_shape": (64, 64, 3), "latent_dim": 100,
               "g_channels": (512, 256, 128, 64), "d_channels": (64, 128, 256, 512)})
