"""Text-to-image latent diffusion on the 4,000 offline MNIST digits and their measured captions,
sized for a 2-core CPU: a small Stable Diffusion. Three runs, each a config of its own:

    python -m jaxgen train --config experiments/autoencoder_mnist5k.py   # runs/autoencoder_mnist5k
    python -m jaxgen train --config experiments/clip_mnist5k.py          # runs/clip_mnist5k
    python -m jaxgen train --config experiments/ldm_mnist5k.py           # runs/ldm_mnist5k
    python -m jaxgen generate "a thin seven" --run runs/ldm_mnist5k --guidance 4 --num 16 \\
        --out seven.png

The U-Net denoises the autoencoder's 7x7x4 latent grid (no down-sampling at that size: two
residual blocks, each followed by self-attention and cross-attention to the CLIP text tower's
token features), v-prediction on the cosine schedule; captions are replaced by the empty prompt
10% of the time for classifier-free guidance.
"""

from pathlib import Path

import ml_collections

from jaxgen import config as config_lib

HERE = Path(__file__).parent


def get_config() -> ml_collections.ConfigDict:
    diffusion = config_lib.load(HERE / "diffusion_mnist5k.py")
    autoencoder = config_lib.load(HERE / "autoencoder_mnist5k.py")
    text = config_lib.load(HERE / "clip_mnist5k.py")
    latent_shape = (7, 7, autoencoder.model.latent_channels)
    config = diffusion
    config.family = "ldm"
    config.data.text_length = text.data.text_length
    config.model.update(data_shape=latent_shape, num_classes=0, context_dim=text.model.text_width,
                        channels=64, channel_mults=(1,), num_res_blocks=2,
                        attention_resolutions=(7,), num_heads=4, dropout=0.0)
    config.sample.update(guidance=4.0, clip_x0=None)
    config.ldm = {
        "autoencoder": autoencoder,
        "text": text,
        "autoencoder_run": "runs/autoencoder_mnist5k",
        "text_run": "runs/clip_mnist5k",
        "latent_scale": 0.0,
        "p_uncond": 0.1,
        "prompts": ["a " + n for n in ("zero", "one", "two", "three", "four", "five", "six",
                                       "seven", "eight", "nine")],
    }
    config.diffusion.p_uncond = 0.0  # no labels: the captions are dropped (ldm.p_uncond)
    config.eval = {"split": "test", "num_per_prompt": 20, "guidance": (0.0, 2.0, 4.0)}
    return config
