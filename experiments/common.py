"""The block every experiment config shares: seed, data source, optimizer, mesh, precision and
the run's intervals (logging, sample grids, checkpoints). A config states what makes it its
own (the family, model, batch, steps, optimizer settings) and takes the rest from here:

    common = config_lib.import_file(Path(__file__).with_name("common.py"))
    return common.experiment("vae", data=common.data("mnist5k"), batch_size=128, ...)

Not a config itself (it defines no `get_config`).
"""

import ml_collections


def data(name: str, num_threads: int = 2, **extra) -> dict:
    """The `data` section: a dataset by name (see `jaxgen.data`), read from TFDS's default
    directory, never downloaded unless `--set data.download=True`; `extra` adds entries
    (text_length for captions)."""
    return {"name": name, "data_dir": None, "download": False, "num_threads": num_threads,
            "train_examples": 0, **extra}


def gan(loss: str, update_order: str, *, n_critic: int = 1, pack: int = 1,
        gp_weight: float = 0.0, r1_weight: float = 0.0, r1_every: int = 1,
        spectral_norm: bool = False, augment: str = "", augment_p: float = 1.0,
        ada_target: float = 0.0, ada_kimg: float = 100.0) -> dict:
    """A `gan` section (see `jaxgen.train.gan`): the loss and update order, PacGAN's packing,
    the penalties (WGAN-GP, R1, lazy R1 every `r1_every` steps), and the tools for limited
    data, all off by default: spectral norm in the discriminator, DiffAugment's transforms
    (`augment`, e.g. "color,translation,cutout", each applied with probability `augment_p`)
    and ADA (`ada_target` > 0 adapts that probability toward r_t = target)."""
    return {"loss": loss, "update_order": update_order, "n_critic": n_critic, "pack": pack,
            "gp_weight": gp_weight, "r1_weight": r1_weight, "r1_every": r1_every,
            "spectral_norm": spectral_norm, "augment": augment, "augment_p": augment_p,
            "ada_target": ada_target, "ada_kimg": ada_kimg}


def optim(name: str = "adam", learning_rate: float = 1e-3, *, warmup_steps: int = 0,
          min_lr_ratio: float = 1.0, b1: float = 0.9, b2: float = 0.999,
          weight_decay: float = 0.0, grad_clip_norm: float = 0.0) -> dict:
    """An `optim` section (see `jaxgen.train.make_optimizer`): by default constant Adam, no
    warm-up, no clipping."""
    return {"name": name, "learning_rate": learning_rate, "warmup_steps": warmup_steps,
            "min_lr_ratio": min_lr_ratio, "b1": b1, "b2": b2, "weight_decay": weight_decay,
            "grad_clip_norm": grad_clip_norm}


def experiment(family: str, *, data: dict, batch_size: int, steps: int, model: dict,
               optim: dict, ema_decay: float, eval: dict, log_every: int,
               sample_every: int, checkpoint_every: int, keep_checkpoints: int = 2,
               seed: int = 0, **sections) -> ml_collections.ConfigDict:
    """A whole config: the family's own `sections` (diffusion, sample, gan, d_optim, ...)
    beside the shared ones. Compute runs in bfloat16 on accelerators and float32 on CPU
    ("auto"), attention in cuDNN's fused kernel where a CUDA GPU can take it and XLA's
    elsewhere ("auto"; "xla" or "cudnn" to insist), parameters are replicated (`mesh.fsdp`
    1), and a rerun resumes."""
    return ml_collections.ConfigDict({
        "family": family, "seed": seed, "data": data, "batch_size": batch_size, "steps": steps,
        "model": model, **sections, "optim": optim, "ema_decay": ema_decay,
        "compute_dtype": "auto", "attention_implementation": "auto",
        "mesh": {"fsdp": 1, "min_fsdp_size": 2**14}, "resume": True,
        "log_every": log_every, "sample_every": sample_every,
        "checkpoint_every": checkpoint_every, "keep_checkpoints": keep_checkpoints,
        "checkpoint_async": True, "eval": eval,
    })
