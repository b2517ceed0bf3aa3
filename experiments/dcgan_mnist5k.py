"""DCGAN (Radford et al. 2016) on the 4,000 offline MNIST training digits, sized for a 2-core CPU.

Adam(2e-4, b1=0.5) for both players, the non-saturating loss, alternating updates, batch norm
in the generator, and an EMA of the generator for sampling. With 4,000 digits the
discriminator memorises, so it trains with the tools for limited data: spectral norm in the
discriminator and adaptive augmentation (ADA: DiffAugment's colour, translation and cutout on
every image the discriminator sees, with a probability that follows r_t = E[sign(D(real))]
toward 0.6), for 6,000 steps. Against the plain DCGAN at 3,000 steps this is the best setting
measured within 15 minutes on this CPU (`experiments/studies/gan_limited_data.py`, table in
docs/results/gan_limited_data.md). `--set model.num_classes=10` trains the class-conditional
model (label embedding in G, projection discriminator).

    python -m jaxgen train --config experiments/dcgan_mnist5k.py --workdir runs/dcgan_mnist5k
"""

from pathlib import Path

import ml_collections

from jaxgen import config as config_lib

common = config_lib.import_file(Path(__file__).with_name("common.py"))


def get_config() -> ml_collections.ConfigDict:
    return common.experiment(
        "gan",
        data=common.data("mnist5k"),
        batch_size=64,
        steps=6000,
        model={
            "kind": "dcgan",
            "data_shape": (28, 28, 1),
            "latent_dim": 64,
            "num_classes": 0,
            "g_channels": (128, 64),
            "d_channels": (64, 128),
            "g_batch_norm": True,
            "g_hidden": (),
            "d_hidden": (),
            "d_maxout_pieces": 1,
        },
        gan=common.gan("non_saturating", "alternating", spectral_norm=True,
                       augment="color,translation,cutout", ada_target=0.6),
        optim=common.optim("adam", 2e-4, b1=0.5),
        d_optim=common.optim("adam", 2e-4, b1=0.5),
        ema_decay=0.999,
        log_every=50,
        sample_every=500,
        checkpoint_every=1000,
        eval={"split": "test", "num_samples": 2000},
    )
