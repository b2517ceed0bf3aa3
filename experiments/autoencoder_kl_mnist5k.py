"""Latent diffusion's first stage as Stable Diffusion builds it, on the 4,000 offline MNIST
digits: diffusers' `AutoencoderKL` architecture (three levels of 32-64-64 channels, one
residual block each, mid-block attention) from 28x28 pixels to a 7x7x4 latent grid, with a
Gaussian likelihood so its decoder outputs images as SD's does, and a small KL weight. Unlike
`autoencoder_mnist5k.py` (jaxgen's own spatial VAE) it exports to diffusers:

    python -m jaxgen train --config experiments/autoencoder_kl_mnist5k.py
    python -m jaxgen export --run runs/autoencoder_kl_mnist5k --to exported/vae
    # diffusers.AutoencoderKL.from_pretrained("exported/vae")

A latent diffusion run takes it with `ldm.autoencoder` set to this config and
`ldm.autoencoder_run` to its run.
"""

from pathlib import Path

from jaxgen import config as config_lib


def get_config():
    config = config_lib.load(Path(__file__).with_name("autoencoder_mnist5k.py"))
    config.model.update(kind="kl", channels=(32, 64, 64), layers_per_block=1, norm_groups=16,
                        likelihood="gaussian", beta=1e-3)
    return config
