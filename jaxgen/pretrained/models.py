"""One model folder (config.json + weights) into jaxgen's module and its parameters."""

from pathlib import Path

import numpy as np
from flax import nnx

from jaxgen.models.unet import UNet
from jaxgen.pretrained import unet2d, unet2d_condition
from jaxgen.pretrained.configs import read_config
from jaxgen.pretrained.convert import abstract_params, load_params
from jaxgen.pretrained.weights import WeightsReader, weight_files

WEIGHTS = "diffusion_pytorch_model"  # diffusers' weights file stem
UNETS = {unet2d.WHAT: unet2d.unet_kwargs, unet2d_condition.WHAT: unet2d_condition.unet_kwargs}


def load_unet(folder, *, dtype=np.float32, mesh=None, variant: str | None = None):
    """(UNet kwargs, pure-dict params) of the diffusers `UNet2DModel` or
    `UNet2DConditionModel` in `folder`, each tensor read, converted, cast to `dtype` and
    placed on `mesh` (default: all devices) in turn. `nnx.merge(graphdef, params)` with the
    graphdef of `UNet(**kwargs)` is the model; `variant` picks e.g. the "fp16" weights."""
    folder = Path(folder)
    config = read_config(folder, tuple(UNETS))
    name = config["_class_name"]
    kwargs = UNETS[name](config)
    shapes = abstract_params(lambda rngs: UNet(**kwargs, rngs=rngs))
    model = nnx.eval_shape(lambda: UNet(**kwargs, rngs=nnx.Rngs(0)))
    reader = WeightsReader(weight_files(folder, WEIGHTS, variant))
    params = load_params(shapes, unet2d.key_map(model), reader, what=name, dtype=dtype,
                         mesh=mesh)
    return kwargs, params
