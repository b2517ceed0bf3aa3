"""Stable Diffusion 1.5's U-Net sampling, jaxgen beside diffusers: `--model sd15`.

Both sides build the U-Net from SD 1.5's own config (859,520,964 parameters, random weights:
nothing is downloaded) and run the loop a `StableDiffusionPipeline` runs between its text
encoder and its VAE: `steps` of DPM-Solver++ (or DDIM) on SD 1.5's scheduler config, with
classifier-free guidance as one U-Net forward over the doubled batch against the empty
prompt's context. The text context is random (77 x 768, what CLIP's encoder would hand over),
so what is timed is the U-Net and the solver, the part that is ~all of a pipeline's time.

jaxgen's loop is one jitted program (`Denoising.sample` under `lax.scan`), its weights fp32
with the compute dtype asked for; diffusers' loop is the pipeline's Python loop over
`UNet2DConditionModel`, eager or under `torch.compile`, its weights cast to the dtype (as the
CIFAR-10 rows). Guidance is jaxgen's w: diffusers' guidance_scale is 1 + w.
"""

import time

import jax
import jax.numpy as jnp
from flax import nnx

from benchmarks import harness

# runwayml/stable-diffusion-v1-5, unet/config.json (sample_size is set per run).
SD15_UNET = {
    "_class_name": "UNet2DConditionModel", "act_fn": "silu", "attention_head_dim": 8,
    "block_out_channels": [320, 640, 1280, 1280], "center_input_sample": False,
    "cross_attention_dim": 768,
    "down_block_types": ["CrossAttnDownBlock2D", "CrossAttnDownBlock2D",
                         "CrossAttnDownBlock2D", "DownBlock2D"],
    "downsample_padding": 1, "flip_sin_to_cos": True, "freq_shift": 0, "in_channels": 4,
    "layers_per_block": 2, "mid_block_scale_factor": 1, "norm_eps": 1e-05,
    "norm_num_groups": 32, "out_channels": 4, "sample_size": 64,
    "up_block_types": ["UpBlock2D", "CrossAttnUpBlock2D", "CrossAttnUpBlock2D",
                       "CrossAttnUpBlock2D"],
}
# runwayml/stable-diffusion-v1-5, scheduler/scheduler_config.json.
SD15_SCHEDULER = {
    "_class_name": "PNDMScheduler", "beta_end": 0.012, "beta_schedule": "scaled_linear",
    "beta_start": 0.00085, "clip_sample": False, "num_train_timesteps": 1000,
    "set_alpha_to_one": False, "skip_prk_steps": True, "steps_offset": 1,
    "trained_betas": None,
}
SAMPLERS = ("dpm_solver", "ddim")
CONTEXT = (77, 768)  # CLIP ViT-L/14's text tokens and width
VAE_FACTOR = 8  # SD's VAE: pixels per latent
PARAMETERS = 859_520_964


def latent_size(size: int) -> int:
    """Latent side of `size` x `size` images; the U-Net halves it three times."""
    if size <= 0 or size % (VAE_FACTOR * 8):
        raise ValueError(f"--size must be a positive multiple of 64 (SD's VAE divides by 8, "
                         f"its U-Net by 8 again), got {size}")
    return size // VAE_FACTOR


def unet_config(size: int) -> dict:
    """SD 1.5's U-Net config at `size` x `size` images."""
    return {**SD15_UNET, "sample_size": latent_size(size)}


def check_sampler(sampler: str | None) -> str:
    sampler = sampler or "dpm_solver"
    if sampler not in SAMPLERS:
        raise ValueError(f"--model sd15 samples with {' or '.join(SAMPLERS)}, got {sampler!r}")
    return sampler


def forward_flops_jaxgen(kwargs: dict, batch: int) -> float:
    """FLOPs of one jaxgen U-Net forward at `batch` (XLA's cost analysis, nothing allocated)."""
    from jaxgen.models.unet import UNet

    graphdef, state = nnx.split(nnx.eval_shape(lambda: UNet(**kwargs, rngs=nnx.Rngs(0))))
    x = jax.ShapeDtypeStruct((batch, *kwargs["data_shape"]), jnp.float32)
    context = jax.ShapeDtypeStruct((batch, *CONTEXT), jnp.float32)
    return harness.flops(lambda s, x, t, c: nnx.merge(graphdef, s)(x, t, None, c), state, x,
                         jax.ShapeDtypeStruct((batch,), jnp.float32), context)


def bench_jaxgen(batch: int, size: int, steps: int, sampler: str | None = None,
                 guidance: float | None = None, dtype: str = "float32",
                 devices: int | None = None, repeats: int = 5, attention: str = "auto") -> dict:
    """Images/s of jaxgen's sampling loop over SD 1.5's U-Net (latents in, latents out), the
    batch sharded over the first `devices` devices; `attention`: the kernel config ("auto":
    cuDNN's fused attention on a CUDA GPU in bf16), its choice per layer in the row."""
    from jaxgen import parallel
    from jaxgen.models.layers import attention_kernels, use_attention
    from jaxgen.models.unet import UNet
    from jaxgen.pretrained.ddpm import pretrained_config
    from jaxgen.pretrained.unet2d_condition import unet_kwargs
    from jaxgen.train.denoising import Denoising

    sampler = check_sampler(sampler)
    available = jax.devices()
    mesh = parallel.make_mesh(1, available[:devices or len(available)])
    parallel.check_batch_size(batch, mesh)
    kwargs = unet_kwargs(unet_config(size))
    denoising = Denoising(pretrained_config(kwargs, SD15_SCHEDULER))
    model = nnx.eval_shape(lambda: use_attention(UNet(**kwargs, dtype=dtype, rngs=nnx.Rngs(0)),
                                                 attention))
    graphdef, abstract = nnx.split(model)
    replicated = jax.sharding.NamedSharding(mesh, jax.sharding.PartitionSpec())
    params = jax.jit(lambda: nnx.split(UNet(**kwargs, dtype=dtype, rngs=nnx.Rngs(0)))[1],
                     out_shardings=jax.tree.map(lambda _: replicated, abstract))()
    data = parallel.batch_sharding(mesh)
    key_x, key_c, key_null = jax.random.split(jax.random.PRNGKey(0), 3)
    x_T = jax.device_put(jax.random.normal(key_x, (batch, *kwargs["data_shape"])), data)
    context = jax.device_put(jax.random.normal(key_c, (batch, *CONTEXT)), data)
    null = jax.device_put(jax.random.normal(key_null, (1, *CONTEXT)), replicated)
    scale = None if guidance is None else jnp.float32(guidance)

    def generate(params, x_T, context, null, scale):
        unet = nnx.merge(graphdef, params)

        def fn(x, t, c):
            return unet(x, t, None, c)

        empty = None if scale is None else jnp.broadcast_to(null, context.shape)
        model = denoising.guided(fn, context, empty, scale, None)
        return denoising.sample(model, x_T, jax.random.PRNGKey(1), sampler, steps)

    program = jax.jit(generate, out_shardings=data)
    args = (params, x_T, context, null, scale)
    compiled, compile_s = harness.compile_timed(program, *args)
    timing = harness.timed(lambda: compiled(*args), repeats)
    branches = 1 if guidance is None else 2
    return {"task": "sample", "batch": batch, "devices": mesh.size, "height": size,
            "width": size, "sampler": sampler, "steps": steps, "guidance": guidance,
            "nfe": steps, "parameters": int(sum(x.size for x in jax.tree.leaves(params))),
            "attention": attention_kernels(model),
            **timing, "compile_seconds": compile_s,
            "images_per_second": batch / timing["seconds_median"],
            "flops_per_call": steps * forward_flops_jaxgen(kwargs, branches * batch),
            "compiled_bytes": harness.compiled_bytes(compiled)}


def diffusers_unet(size: int, device=None):
    """diffusers' `UNet2DConditionModel` of SD 1.5's config, random weights (`device` "meta":
    shapes only, for counting)."""
    import torch
    from diffusers import UNet2DConditionModel

    config = {k: v for k, v in unet_config(size).items() if not k.startswith("_")}
    with torch.device(device or "cpu"):
        return UNet2DConditionModel(**config)


def forward_flops_torch(model, size: int, batch: int) -> float:
    """FLOPs of one diffusers U-Net forward at `batch` (torch's FlopCounterMode: matmuls,
    convolutions and attention, 2 per multiply-add)."""
    import torch

    from benchmarks import torch_ref

    weight = next(model.parameters())
    latents = latent_size(size)
    x = torch.zeros(batch, 4, latents, latents, dtype=weight.dtype, device=weight.device)
    context = torch.zeros(batch, *CONTEXT, dtype=weight.dtype, device=weight.device)
    t = torch.full((batch,), 500, device=weight.device)
    return torch_ref.counted_flops(lambda: model(x, t, encoder_hidden_states=context))


def bench_torch(batch: int, size: int, steps: int, sampler: str | None = None,
                guidance: float | None = None, dtype: str = "float32", mode: str = "eager",
                repeats: int = 5) -> dict:
    """Images/s of the same loop in diffusers: its scheduler of `sampler` from SD 1.5's
    scheduler config, the pipeline's guidance (one forward over [uncond, cond])."""
    from diffusers import DDIMScheduler, DPMSolverMultistepScheduler

    from benchmarks import torch_ref

    sampler = check_sampler(sampler)
    torch, device, model, sync = torch_ref._setup(mode, lambda: diffusers_unet(size))
    model = model.eval()
    branches = 1 if guidance is None else 2
    flops = steps * forward_flops_torch(model, size, branches * batch)
    torch_dtype = getattr(torch, dtype)
    model = model.to(torch_dtype)
    net = torch.compile(model) if mode == "compile" else model
    schedulers = {"dpm_solver": DPMSolverMultistepScheduler, "ddim": DDIMScheduler}
    scheduler = schedulers[sampler].from_config(SD15_SCHEDULER)
    scheduler.set_timesteps(steps)
    latents = latent_size(size)
    generator = torch.Generator().manual_seed(0)
    x_T = torch.randn(batch, 4, latents, latents, generator=generator).to(device)
    context = torch.randn(batch, *CONTEXT, generator=generator).to(device, torch_dtype)
    null = torch.randn(1, *CONTEXT, generator=generator).to(device, torch_dtype)
    both = torch.cat([null.expand(batch, -1, -1), context])

    def sample():
        scheduler.set_timesteps(steps)  # the multistep solver keeps state between steps
        x = x_T
        with torch.inference_mode():
            for t in scheduler.timesteps:
                if guidance is None:
                    eps = net(x.to(torch_dtype), t, encoder_hidden_states=context).sample
                    eps = eps.float()
                else:
                    out = net(torch.cat([x, x]).to(torch_dtype), t,
                              encoder_hidden_states=both).sample
                    uncond, cond = out.float().chunk(2)
                    eps = cond + guidance * (cond - uncond)  # guidance_scale 1 + w
                x = scheduler.step(eps, t, x).prev_sample
        return x

    start = time.perf_counter()
    sync(sample())  # the first call compiles under torch.compile
    compile_s = time.perf_counter() - start
    timing = harness.timed(sample, repeats, wait=sync)
    return {"task": "sample", "batch": batch, "devices": 1, "height": size, "width": size,
            "sampler": sampler, "steps": steps, "guidance": guidance, "nfe": steps,
            "parameters": torch_ref.parameter_count(model), **timing,
            "compile_seconds": compile_s,
            "images_per_second": batch / timing["seconds_median"], "flops_per_call": flops,
            **torch_ref._memory(torch, device)}
