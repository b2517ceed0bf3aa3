"""VAE on the 4,000 offline MNIST training digits, sized for a 2-core CPU (the demo's config).

The MLP encoder/decoder is used here because on a CPU a step costs ~25x less than with the
convolutional pair; `--set model.kind=conv` trains the conv VAE instead.

    python -m jaxgen train --config experiments/vae_mnist5k.py --workdir runs/vae_mnist5k
"""

from pathlib import Path

import ml_collections

from jaxgen import config as config_lib

common = config_lib.import_file(Path(__file__).with_name("common.py"))


def get_config() -> ml_collections.ConfigDict:
    return common.experiment(
        "vae",
        data=common.data("mnist5k"),
        batch_size=128,
        steps=3000,
        model={
            "kind": "mlp",
            "data_shape": (28, 28, 1),
            "latent_dim": 16,
            "latent_channels": 4,  # kind "spatial": the latent grid's channels
            "channels": (16, 32),
            "hidden": 256,
            "mlp_hidden": (512, 256),
            "likelihood": "bernoulli",
            "binarize": True,
            "beta": 1.0,
        },
        optim=common.optim("adam", 1e-3, warmup_steps=100, min_lr_ratio=0.1,
                           grad_clip_norm=10.0),
        ema_decay=0.999,
        log_every=50,
        sample_every=1000,
        checkpoint_every=1000,
        keep_checkpoints=3,
        eval={"split": "test", "num_examples": 1000, "iwae_samples": 500, "batch_size": 100},
    )
