"""Class-conditional diffusion on TFDS MNIST (60,000 digits) for accelerators: the CPU config's
U-Net at 64 channels with two residual blocks per level, batch 128, 50,000 steps.

    python -m jaxgen train --config experiments/diffusion_mnist.py --workdir runs/diff_mnist
"""

from pathlib import Path

from jaxgen import config as config_lib


def get_config():
    config = config_lib.load(Path(__file__).with_name("diffusion_mnist5k.py"))
    config.data.name = "tfds:mnist"
    config.data.num_threads = 16
    config.batch_size = 128
    config.steps = 50_000
    config.model.update(channels=64, num_res_blocks=2)
    config.optim.update(learning_rate=2e-4, warmup_steps=1000)
    config.ema_decay = 0.9999
    config.sample_every = 5000
    config.checkpoint_every = 5000
    return config
