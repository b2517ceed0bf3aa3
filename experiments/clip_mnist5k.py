"""CLIP on the 4,000 offline MNIST training digits and captions measured from their pixels,
sized for a 2-core CPU.

A 2-block transformer over the captions' bytes against a 3-stage conv image encoder, both
projected to 64 dimensions; CLIP's symmetric InfoNCE over the global batch of 128 with a
learnable temperature (`--set model.loss=siglip` trains SigLIP's sigmoid loss instead).
The captions name the class and the thickness, size and slant the pixels measure
("a thick, slanted seven", "the digit 3 written small"); see `jaxgen.data.captions`.

    python -m jaxgen train --config experiments/clip_mnist5k.py --workdir runs/clip_mnist5k
    python -m jaxgen eval --run runs/clip_mnist5k     # zero-shot vs linear probe, held out
"""

from pathlib import Path

import ml_collections

from jaxgen import config as config_lib

common = config_lib.import_file(Path(__file__).with_name("common.py"))


def get_config() -> ml_collections.ConfigDict:
    return common.experiment(
        "clip",
        # The longest caption ("the digit 7 written thick and small and slanted") is 47
        # bytes; with BOS and EOS it fits 56 tokens.
        data=common.data("mnist5k", text_length=56),
        batch_size=128,
        steps=2000,
        model={
            "data_shape": (28, 28, 1),
            "embed_dim": 64,
            "loss": "clip",
            "text_width": 64,
            "text_depth": 2,
            "text_heads": 4,
            "image_channels": (32, 64, 128),
        },
        optim=common.optim("adamw", 1e-3, warmup_steps=100, min_lr_ratio=0.1, b2=0.98,
                           weight_decay=0.01, grad_clip_norm=1.0),
        ema_decay=0.0,
        log_every=50,
        sample_every=0,
        checkpoint_every=500,
        eval={"split": "test"},
    )
