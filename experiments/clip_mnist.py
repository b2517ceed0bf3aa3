"""CLIP on TFDS MNIST (60,000 digits, captions measured from their pixels) for accelerators:
wider towers (a 4-block, 256-wide text transformer; 64-128-256 image channels), 128-d
embeddings, batch 1024, 10,000 steps.

    python -m jaxgen train --config experiments/clip_mnist.py --workdir runs/clip_mnist
    python -m jaxgen eval --run runs/clip_mnist
"""

from pathlib import Path

from jaxgen import config as config_lib


def get_config():
    return config_lib.for_accelerators(
        Path(__file__).with_name("clip_mnist5k.py"), "tfds:mnist", batch_size=1024,
        steps=10_000, every=2000,
        model={"embed_dim": 128, "text_width": 256, "text_depth": 4, "text_heads": 8,
               "image_channels": (64, 128, 256)},
        optim={"learning_rate": 5e-4, "warmup_steps": 500, "weight_decay": 0.1})
