"""Full-size convolutional VAE on the 60,000 TFDS MNIST digits, for a GPU or TPU.

Prepare the data once (network needed): `--set data.download=True` on first use, or
`tfds build mnist --file_format=array_record`. Compute runs in bfloat16 on accelerators
(`compute_dtype="auto"`), parameters stay float32. The batch must divide by the device count.

    python -m jaxgen train --config experiments/vae_mnist.py --workdir runs/vae_mnist
"""

from pathlib import Path

import ml_collections

from jaxgen import config as config_lib

common = config_lib.import_file(Path(__file__).with_name("common.py"))


def get_config() -> ml_collections.ConfigDict:
    return common.experiment(
        "vae",
        data=common.data("tfds:mnist", num_threads=16),
        batch_size=256,
        steps=50_000,
        model={
            "kind": "conv",
            "data_shape": (28, 28, 1),
            "latent_dim": 32,
            "channels": (64, 128),
            "hidden": 512,
            "mlp_hidden": (1024, 512),
            "likelihood": "bernoulli",
            "binarize": True,
            "beta": 1.0,
        },
        optim=common.optim("adamw", 1e-3, warmup_steps=1000, min_lr_ratio=0.01,
                           weight_decay=1e-4, grad_clip_norm=10.0),
        ema_decay=0.999,
        log_every=100,
        sample_every=2500,
        checkpoint_every=2500,
        keep_checkpoints=3,
        eval={"split": "test", "num_examples": 10_000, "iwae_samples": 5000,
              "batch_size": 256},
    )
