"""The first stage of latent diffusion on the 4,000 offline MNIST digits: a fully
convolutional VAE from 28x28 pixels to a 7x7x4 latent grid (4x fewer numbers), trained with a
small KL weight as Stable Diffusion's autoencoder is (Rombach et al. 2022 use 1e-6 against
their per-image reconstruction sum; here 1e-3 against the Bernoulli log-likelihood), so it
reconstructs sharply while its latents stay near a unit Gaussian's scale. Targets are the grey
levels, not binarised draws: the denoiser's samples are decoded to the decoder's means.

    python -m jaxgen train --config experiments/autoencoder_mnist5k.py   # runs/autoencoder_mnist5k
"""

from pathlib import Path

from jaxgen import config as config_lib


def get_config():
    config = config_lib.load(Path(__file__).with_name("vae_mnist5k.py"))
    config.model.update(kind="spatial", channels=(32, 64), latent_channels=4, beta=1e-3,
                        binarize=False)
    config.update(steps=3000, batch_size=64)
    return config
