"""DCGAN (Radford et al. 2016) on the 4,000 offline MNIST training digits, sized for a 2-core CPU.

Adam(2e-4, b1=0.5) for both players, the non-saturating loss, alternating updates, batch norm
in the generator, and an EMA of the generator for sampling. `--set model.num_classes=10` trains
the class-conditional model (label embedding in G, projection discriminator).

    python -m jaxgen train --config experiments/dcgan_mnist5k.py --workdir runs/dcgan_mnist5k
"""

import ml_collections


def optim(learning_rate=2e-4, b1=0.5):
    return {"name": "adam", "learning_rate": learning_rate, "warmup_steps": 0, "min_lr_ratio": 1.0,
            "b1": b1, "b2": 0.999, "weight_decay": 0.0, "grad_clip_norm": 0.0}


def get_config() -> ml_collections.ConfigDict:
    return ml_collections.ConfigDict(
        {
            "family": "gan",
            "seed": 0,
            "data": {"name": "mnist5k", "data_dir": None, "download": False, "num_threads": 2},
            "batch_size": 64,
            "steps": 3000,
            "model": {
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
            "gan": {
                "loss": "non_saturating",
                "update_order": "alternating",
                "n_critic": 1,
                "pack": 1,
                "gp_weight": 0.0,
                "r1_weight": 0.0,
            },
            "optim": optim(),
            "d_optim": optim(),
            "ema_decay": 0.999,
            "compute_dtype": "auto",
            "mesh": {"fsdp": 1, "min_fsdp_size": 2**14},
            "resume": True,
            "log_every": 50,
            "sample_every": 500,
            "checkpoint_every": 1000,
            "keep_checkpoints": 2,
            "eval": {"split": "test", "num_samples": 2000},
        }
    )
