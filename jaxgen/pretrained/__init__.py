"""The PyTorch ecosystem's checkpoints, read into jaxgen and written back: diffusers'
`UNet2DModel` pipelines (`load_run`, `export_run`) with their scheduler configs, streamed
tensor by tensor from safetensors and strict about every key (see `convert`)."""

from jaxgen.pretrained.ddpm import export_run, load_run, load_unet
from jaxgen.pretrained.scheduler import scheduler_config, scheduler_settings
from jaxgen.pretrained.weights import PretrainedError, WeightsReader

__all__ = ["PretrainedError", "WeightsReader", "export_run", "load_run", "load_unet",
           "scheduler_config", "scheduler_settings"]
