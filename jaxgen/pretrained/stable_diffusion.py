"""A diffusers `StableDiffusionPipeline` folder (SD 1.x / 2.x) as one jitted text-to-image
program: CLIP tokenizer and text encoder, the U-Net under jaxgen's samplers and
classifier-free guidance, SD's VAE decoder.

    from jaxgen.pretrained.stable_diffusion import StableDiffusion
    pipe = StableDiffusion.from_pretrained("stable-diffusion-v1-5")
    images = pipe("a photograph of an astronaut riding a horse", num=4, guidance=6.5,
                  sampler="dpm_solver", steps=25, height=512, width=512, seed=0)

`guidance` is jaxgen's w (cond + w (cond - uncond), against the empty prompt): diffusers'
`guidance_scale` is 1 + w (its default 7.5 is w = 6.5). The scheduler config sets the noise
schedule, the prediction (SD 2.x 768: v) and the timesteps each sampler visits, as diffusers'
DDIM and DPM-Solver++ schedulers would from it. One program per (sampler, steps, shape,
guided or not); prompts, guidance and the noise are traced. The batch is sharded over the
mesh where its size divides the batch. The folder's safety checker is not run.
"""

import json
from pathlib import Path

import jax
import jax.numpy as jnp
import numpy as np
from flax import nnx

from jaxgen import parallel, viz
from jaxgen.models.autoencoder_kl import AutoencoderKL
from jaxgen.models.clip_text import CLIPTextModel
from jaxgen.models.layers import use_attention
from jaxgen.models.unet import UNet
from jaxgen.pretrained.autoencoder_kl import load_vae
from jaxgen.pretrained.clip_text import CLIPTokenizer, load_text_encoder
from jaxgen.pretrained.ddpm import pretrained_config
from jaxgen.pretrained.models import load_unet
from jaxgen.pretrained.scheduler import read_scheduler
from jaxgen.pretrained.weights import PretrainedError
from jaxgen.train.denoising import Denoising
from jaxgen.train.state import compute_dtype

PIPELINES = ("StableDiffusionPipeline",)
PARTS = ("unet", "vae", "text_encoder", "tokenizer", "scheduler")


def _graphdef(build, attention: str):
    return nnx.graphdef(nnx.eval_shape(lambda: use_attention(build(nnx.Rngs(0)), attention)))


class StableDiffusion:
    def __init__(self, unet_kwargs, vae_kwargs, text_kwargs, params, tokenizer, scaling_factor,
                 scheduler: dict, *, mesh=None, dtype="float32", attention="auto"):
        self.unet_kwargs, self.params, self.tokenizer = unet_kwargs, params, tokenizer
        self.scaling_factor, self.mesh = scaling_factor, mesh or parallel.make_mesh(1)
        self.dtype, self.attention = compute_dtype(dtype), attention
        self.config = pretrained_config(unet_kwargs, scheduler)
        self.config.sample.sampler = "dpm_solver"
        self.config.sample.steps = 25
        self.denoising = Denoising(self.config)
        self.downsampling = 2 ** (len(vae_kwargs["block_out_channels"]) - 1)
        self.vae_graph = _graphdef(lambda rngs: AutoencoderKL(**vae_kwargs, dtype=self.dtype,
                                                             rngs=rngs), attention)
        self.text_graph = _graphdef(lambda rngs: CLIPTextModel(**text_kwargs, dtype=self.dtype,
                                                              rngs=rngs), attention)
        self._programs = {}

    @classmethod
    def from_pretrained(cls, path, *, mesh=None, dtype="float32", param_dtype=np.float32,
                        attention="auto"):
        """Reads `path` (model_index.json and its unet/, vae/, text_encoder/, tokenizer/,
        scheduler/). `dtype`: compute ("float32", "bfloat16", or "auto": bf16 on
        accelerators); `param_dtype`: how the weights are held (float32 by default; bfloat16
        halves their memory); `attention`: the kernel ("auto", "xla", "cudnn":
        `platforms.attention_implementation`)."""
        path = Path(path)
        index = path / "model_index.json"
        if not index.exists():
            raise PretrainedError(f"{index} is missing: point at a diffusers Stable Diffusion "
                                  "folder (e.g. `huggingface-cli download "
                                  "stable-diffusion-v1-5/stable-diffusion-v1-5 --local-dir DIR`)")
        pipeline = json.loads(index.read_text())
        if pipeline.get("_class_name") not in PIPELINES:
            raise PretrainedError(f"{index} is a {pipeline.get('_class_name')}, not one of "
                                  f"{list(PIPELINES)}")
        missing = [p for p in PARTS if not (path / p).is_dir()]
        if missing:
            raise PretrainedError(f"{path} lacks {', '.join(m + '/' for m in missing)}")
        mesh = mesh or parallel.make_mesh(1)
        unet_kwargs, unet = load_unet(path / "unet", dtype=param_dtype, mesh=mesh)
        vae_kwargs, vae, scaling = load_vae(path / "vae", dtype=param_dtype, mesh=mesh)
        text_kwargs, text = load_text_encoder(path / "text_encoder", dtype=param_dtype,
                                              mesh=mesh)
        if text_kwargs["hidden_size"] != unet_kwargs["context_dim"]:
            raise PretrainedError(f"the text encoder's width {text_kwargs['hidden_size']} is "
                                  f"not the U-Net's cross_attention_dim "
                                  f"{unet_kwargs['context_dim']}")
        scheduler = read_scheduler(path / "scheduler")
        tokenizer = CLIPTokenizer(path / "tokenizer", text_kwargs["max_position_embeddings"])
        return cls(unet_kwargs, vae_kwargs, text_kwargs,
                   {"unet": unet, "vae": vae, "text": text}, tokenizer, scaling, scheduler,
                   mesh=mesh, dtype=dtype, attention=attention)

    def _unet_graph(self, height: int, width: int):
        """The U-Net's graphdef at latents of (height, width): attention stays at the same
        levels as at the checkpoint's sample_size."""
        k = self.unet_kwargs
        sample_height = k["data_shape"][0]
        levels = [i for i in range(len(k["channel_mults"]))
                  if sample_height // 2**i in k["attention_resolutions"]]
        kwargs = {**k, "data_shape": (height, width, k["data_shape"][2]),
                  "attention_resolutions": tuple(height // 2**i for i in levels)}
        return _graphdef(lambda rngs: UNet(**kwargs, dtype=self.dtype, rngs=rngs),
                         self.attention)

    def _program(self, sampler, steps, latent_shape, guided: bool):
        key = (sampler, steps, latent_shape, guided)
        if key not in self._programs:
            unet_graph = self._unet_graph(*latent_shape[:2])
            denoising, scaling = self.denoising, self.scaling_factor

            def generate(params, ids, null_ids, x_T, noise_key, guidance):
                text = nnx.merge(self.text_graph, params["text"])
                unet = nnx.merge(unet_graph, params["unet"])
                context = text(ids)[0]

                def fn(x, t, c):
                    return unet(x, t, None, c)

                if guided:
                    null = jnp.broadcast_to(text(null_ids)[0], context.shape)
                    model = denoising.guided(fn, context, null, guidance, None)
                else:
                    model = denoising.guided(fn, context, None, None, None)
                latents = denoising.sample(model, x_T, noise_key, sampler, steps)
                images = nnx.merge(self.vae_graph, params["vae"]).decode(latents / scaling)
                return jnp.clip(images, -1.0, 1.0)

            self._programs[key] = jax.jit(generate)
        return self._programs[key]

    def __call__(self, prompts, num: int | None = None, *, guidance: float | None = 6.5,
                 sampler: str | None = None, steps: int | None = None, height: int = 512,
                 width: int = 512, seed: int = 0, latents=None,
                 truncate: bool = False) -> np.ndarray:
        """uint8 images [num, height, width, 3] of `prompts` (a string, or a list taken in
        turn; num defaults to one per prompt). `latents` [num, height/8, width/8, 4]: the
        initial noise (default: drawn from `seed`), so a run can be compared with another
        implementation's from the same noise. `guidance` None: the conditional model alone.
        `truncate`: cut prompts longer than the encoder takes (diffusers' behaviour) instead
        of refusing them."""
        prompts = [prompts] if isinstance(prompts, str) else list(prompts)
        num = num or len(prompts)
        sampler, steps, _, _ = self.denoising.settings(sampler, steps)
        f = self.downsampling * 2 ** (len(self.unet_kwargs["channel_mults"]) - 1)
        if height % f or width % f:
            raise ValueError(f"height and width must be multiples of {f}, got "
                             f"{height}x{width}")
        shape = (num, height // self.downsampling, width // self.downsampling,
                 self.unet_kwargs["data_shape"][2])
        ids = self.tokenizer([prompts[i % len(prompts)] for i in range(num)], truncate)
        null_ids = self.tokenizer([""])
        noise_key, sampler_key = jax.random.split(jax.random.PRNGKey(seed))
        if latents is None:
            x_T = jax.random.normal(noise_key, shape)
        else:
            x_T = jnp.asarray(latents, jnp.float32)
            if x_T.shape != shape:
                raise ValueError(f"latents must have shape {list(shape)}, got "
                                 f"{list(x_T.shape)}")
        if num % self.mesh.size == 0:
            x_T = jax.device_put(x_T, parallel.batch_sharding(self.mesh))
            ids = jax.device_put(ids, parallel.batch_sharding(self.mesh))
        program = self._program(sampler, steps, shape[1:], guidance is not None)
        images = program(self.params, ids, null_ids, x_T, sampler_key,
                         0.0 if guidance is None else guidance)
        return viz.to_uint8(np.asarray(images))

