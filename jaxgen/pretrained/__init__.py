"""The PyTorch ecosystem's checkpoints, read into jaxgen and written back, streamed tensor by
tensor from safetensors and strict about every key and option (see `convert`)::

  diffusers `UNet2DModel` pipelines     `load_run` (a sampling run), `export_run` (back)
  diffusers `UNet2DConditionModel`      `load_unet` (SD 1.x / 2.x; also UNet2DModel)
  diffusers `AutoencoderKL`             `load_vae` (SD's VAE and its scaling_factor);
                                        `export_run` writes a "kl" autoencoder back
  transformers `CLIPTextModel`          `load_text_encoder`, and `CLIPTokenizer`
  scheduler configs                     `scheduler_settings` / `scheduler_config`
"""

from jaxgen.pretrained.autoencoder_kl import load_vae
from jaxgen.pretrained.clip_text import CLIPTokenizer, load_text_encoder
from jaxgen.pretrained.ddpm import load_run
from jaxgen.pretrained.export import Exported, export_run
from jaxgen.pretrained.models import load_unet
from jaxgen.pretrained.scheduler import scheduler_config, scheduler_settings
from jaxgen.pretrained.weights import PretrainedError, WeightsReader

__all__ = ["CLIPTokenizer", "Exported", "PretrainedError", "WeightsReader", "export_run",
           "load_run", "load_text_encoder", "load_unet", "load_vae", "scheduler_config",
           "scheduler_settings"]
