"""Text-to-image latent diffusion on TFDS MNIST (60,000 digits, captions measured from their
pixels) for accelerators: the autoencoder of `autoencoder_mnist.py`, the text tower of
`clip_mnist.py` (256 wide), and a 128-channel U-Net over the 7x7x4 latents (three residual
blocks with self- and cross-attention), batch 256, 50,000 steps.

    python -m jaxgen train --config experiments/autoencoder_mnist.py   # runs/autoencoder_mnist
    python -m jaxgen train --config experiments/clip_mnist.py          # runs/clip_mnist
    python -m jaxgen train --config experiments/ldm_mnist.py           # runs/ldm_mnist
    python -m jaxgen generate "a thick, slanted seven" --run runs/ldm_mnist --num 16
"""

from pathlib import Path

from jaxgen import config as config_lib

HERE = Path(__file__).parent


def get_config():
    text = config_lib.load(HERE / "clip_mnist.py")
    config = config_lib.for_accelerators(
        HERE / "ldm_mnist5k.py", "tfds:mnist", batch_size=256, steps=50_000, every=5000,
        model={"channels": 128, "num_res_blocks": 3, "num_heads": 8,
               "context_dim": text.model.text_width},
        optim={"learning_rate": 3e-4, "warmup_steps": 1000}, ema_decay=0.9999)
    config.data.text_length = text.data.text_length
    config.ldm.update(autoencoder=config_lib.load(HERE / "autoencoder_mnist.py"), text=text,
                      autoencoder_run="runs/autoencoder_mnist", text_run="runs/clip_mnist")
    return config
