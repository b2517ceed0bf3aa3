"""DDPM on TFDS CIFAR-10 for accelerators: the paper's 35.7M-parameter U-Net (128 channels,
multipliers 1-2-2-2, two residual blocks per level, attention at 16x16, dropout 0.1), the linear
schedule over 1,000 steps, epsilon prediction, Adam at 2e-4 after 5,000 warm-up steps, gradient
clipping at 1, batch 128 and an EMA of 0.9999 (Ho et al. 2020, appendix B). Class-conditional
here, with labels dropped 10% of the time for classifier-free guidance (`--set
model.num_classes=0` for the paper's unconditional model). bf16 compute on accelerators.

    python -m jaxgen train --config experiments/diffusion_cifar10.py --workdir runs/ddpm_cifar10
"""

from pathlib import Path

from jaxgen import config as config_lib


def get_config():
    return config_lib.for_accelerators(
        Path(__file__).with_name("diffusion_mnist5k.py"), "tfds:cifar10", batch_size=128,
        steps=800_000, every=10_000,
        model={"data_shape": (32, 32, 3), "channels": 128, "channel_mults": (1, 2, 2, 2),
               "num_res_blocks": 2, "attention_resolutions": (16,), "num_heads": 1,
               "dropout": 0.1},
        diffusion={"parameterization": "eps", "schedule": "linear"},
        optim={"learning_rate": 2e-4, "warmup_steps": 5000, "min_lr_ratio": 1.0},
        ema_decay=0.9999)
