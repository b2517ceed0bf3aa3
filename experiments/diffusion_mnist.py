"""Class-conditional diffusion on TFDS MNIST (60,000 digits) for accelerators: the CPU config's
U-Net at 64 channels with two residual blocks per level, batch 128, 50,000 steps.

    python -m jaxgen train --config experiments/diffusion_mnist.py --workdir runs/diff_mnist
"""

from pathlib import Path

from jaxgen import config as config_lib


def get_config():
    return config_lib.for_accelerators(
        Path(__file__).with_name("diffusion_mnist5k.py"), "tfds:mnist", batch_size=128,
        steps=50_000, every=5000, model={"channels": 64, "num_res_blocks": 2},
        optim={"learning_rate": 2e-4, "warmup_steps": 1000}, ema_decay=0.9999)
