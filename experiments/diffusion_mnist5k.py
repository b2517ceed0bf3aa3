"""Class-conditional diffusion on the 4,000 offline MNIST training digits, sized for a 2-core CPU.

A small U-Net (16-32-32 channels over 28, 14 and 7 pixels, attention at 7x7), v-prediction on
the cosine schedule, labels dropped to the null class 10% of the time so the one network serves
classifier-free guidance, and an EMA of the weights for sampling. v rather than DDPM's epsilon:
at the noisiest step an eps model's x0 = (x_T - sigma eps) / alpha divides its error by alpha
(0.006 at t = 999 on the linear schedule), and this narrow model's eps errors there turned
whole samples white; a v model predicts x0 directly at that end.

    python -m jaxgen train --config experiments/diffusion_mnist5k.py --workdir runs/diff_mnist5k
    python -m jaxgen sample --run runs/diff_mnist5k --sampler ddim --steps 50 --guidance 2 \\
        --labels 0,1,2,3,4,5,6,7,8,9

`--set diffusion.parameterization=flow --set sample.sampler=heun` trains rectified flow instead;
`--set model.kind=dit` the DiT.
"""

from pathlib import Path

import ml_collections

from jaxgen import config as config_lib

common = config_lib.import_file(Path(__file__).with_name("common.py"))


def model(**overrides):
    """The denoiser's fields; both kinds' keys are present, so `--set` can switch kind."""
    fields = {
        "kind": "unet",
        "data_shape": (28, 28, 1),
        "num_classes": 10,
        "context_dim": 0,
        "dropout": 0.1,
        # U-Net
        "channels": 16,
        "channel_mults": (1, 2, 2),
        "num_res_blocks": 1,
        "attention_resolutions": (7,),
        "num_heads": 4,
        "head_channels": 0,
        "scale_shift": False,
        "norm_groups": None,  # None: 32 groups of at least 4 channels; an int: that many
        # DiT
        "patch_size": 2,
        "hidden": 128,
        "depth": 6,
        "mlp_ratio": 4.0,
    }
    fields.update(overrides)
    return fields


def diffusion(**overrides):
    fields = {"parameterization": "v", "schedule": "cosine", "num_train_steps": 1000,
              "weighting": "simple", "snr_gamma": 5.0, "time_sampling": "uniform",
              "p_uncond": 0.1}
    fields.update(overrides)
    return fields


def sample(**overrides):
    fields = {"sampler": "ddim", "steps": 50, "eta": 0.0, "spacing": "trailing",
              "flow_shift": 1.0, "guidance": 1.0, "guidance_interval": None, "clip_x0": 1.0}
    fields.update(overrides)
    return fields


def get_config() -> ml_collections.ConfigDict:
    return common.experiment(
        "diffusion",
        data=common.data("mnist5k"),
        batch_size=32,
        steps=3000,
        model=model(),
        diffusion=diffusion(),
        sample=sample(),
        optim=common.optim("adam", 2e-3, warmup_steps=200, min_lr_ratio=0.1,
                           grad_clip_norm=1.0),
        ema_decay=0.999,
        log_every=50,
        sample_every=1000,
        checkpoint_every=1000,
        eval={"split": "test", "num_samples": 1000, "guidance": (0.0, 1.0, 2.0, 4.0)},
    )
