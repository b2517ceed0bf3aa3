"""Mode collapse on `ring8`, the protocol of PacGAN (Lin et al. 2018), following VEEGAN
(Srivastava et al. 2017): 8 Gaussians of std 0.01 on the unit circle; a generator of 4 hidden
layers of 400 ReLU units with batch norm from a 2-D Gaussian latent; a discriminator of 3 layers
of 200 maxout units (5 pieces); non-saturating loss, simultaneous updates, Adam(1e-4, b1=0.8),
batch 100. `--set gan.pack=2` is PacGAN2. Scored by `python -m jaxgen eval`.

    python -m jaxgen train --config experiments/gan_ring8.py --workdir runs/gan_ring8
"""

from pathlib import Path

import ml_collections

from jaxgen import config as config_lib

common = config_lib.import_file(Path(__file__).with_name("common.py"))


def get_config() -> ml_collections.ConfigDict:
    return common.experiment(
        "gan",
        data=common.data("ring8", num_threads=1),
        batch_size=100,
        steps=20_000,
        model={
            "kind": "mlp",
            "data_shape": (2,),
            "latent_dim": 2,
            "num_classes": 0,
            "g_hidden": (400, 400, 400, 400),
            "g_batch_norm": True,
            "d_hidden": (200, 200, 200),
            "d_maxout_pieces": 5,
            "g_channels": (),
            "d_channels": (),
        },
        gan=common.gan("non_saturating", "simultaneous"),
        # Adam(1e-4, b1=0.8), constant, unclipped: the protocol's optimizer for either player.
        optim=common.optim("adam", 1e-4, b1=0.8),
        d_optim=common.optim("adam", 1e-4, b1=0.8),
        ema_decay=0.0,
        log_every=500,
        sample_every=0,
        checkpoint_every=5000,
        eval={"split": "test", "num_samples": 2500},
    )
