"""Every family's train step and sampler lower for the accelerators it is built for.

Each accelerator config is exported with `jax.export` for CUDA and TPU from abstract inputs
(`jax.ShapeDtypeStruct`, nothing allocated), over the 8 fake CPU devices with the shardings an
8-chip host (v2-8, v5e-8, 8 GPUs) would get. An op or a sharding that cannot lower on either
platform fails here. Choices made per platform are checked in the programs: the compute dtype
"auto" is bfloat16 for an accelerator and float32 for the CPU, and a transposed convolution is
XLA's own on an accelerator and the sub-pixel form on the CPU. Stable Diffusion 1.5's
text-to-image program (CLIP ViT-L/14's text encoder, the 860M U-Net under 25 guided
DPM-Solver++ steps, the VAE's decoder, at 512 x 512) is exported at its real sizes from
abstract weights.
"""

import functools
from pathlib import Path

import jax
import jax.numpy as jnp
import pytest
from jax.sharding import NamedSharding

from jaxgen import config as config_lib
from jaxgen import parallel, platforms
from jaxgen.models.autoencoder_kl import AutoencoderKL
from jaxgen.models.clip_text import CLIPTextModel
from jaxgen.models.unet import UNet
from jaxgen.pretrained.autoencoder_kl import vae_kwargs
from jaxgen.pretrained.clip_text import text_kwargs
from jaxgen.pretrained.convert import abstract_params
from jaxgen.pretrained.stable_diffusion import StableDiffusion
from jaxgen.pretrained.unet2d_condition import unet_kwargs
from jaxgen.train import families
from jaxgen.train.checkpoint import with_shardings
from jaxgen.train.loop import jit_train_step
from jaxgen.train.objectives import Sampler, supports
from jaxgen.train.state import state_layout

EXPERIMENTS = Path(__file__).resolve().parent.parent / "experiments"
ACCELERATOR_CONFIGS = ("vae_mnist", "dcgan_mnist", "diffusion_mnist", "diffusion_cifar10",
                       "clip_mnist", "ldm_mnist")
PLATFORMS = ("cuda", "tpu")


@functools.cache
def _exports(name: str, targets: tuple[str, ...]):
    """(train step, sampler or None) of `name`'s config, exported for the `targets` platforms
    (one program for all of them: XLA resolves `platform_dependent` choices per platform; the
    choices made when the model is built, the compute dtype, are those of `targets[0]`)."""
    config = config_lib.load(EXPERIMENTS / f"{name}.py")
    mesh = parallel.make_mesh(config.mesh.fsdp)
    with platforms.target(targets[0]):
        objective = families.make(config)
        abstract, shardings = state_layout(objective, mesh, config.mesh.min_fsdp_size)
        state = with_shardings(abstract, shardings)
        size, batch_sharding = config.batch_size, parallel.batch_sharding(mesh)
        batch = {"image": jax.ShapeDtypeStruct((size, *families.image_shape(config)),
                                               jnp.float32, sharding=batch_sharding),
                 "label": jax.ShapeDtypeStruct((size,), jnp.int32, sharding=batch_sharding)}
        if config.data.get("text_length"):
            batch["text"] = jax.ShapeDtypeStruct((size, config.data.text_length), jnp.int32,
                                                 sharding=batch_sharding)
        step = jax.export.export(jit_train_step(objective, mesh, shardings),
                                 platforms=targets)(state, batch)
        sample = None
        if supports(objective, Sampler):
            sampler = jax.jit(objective.sample, static_argnums=2,
                              out_shardings=parallel.replicated(mesh))
            key = jax.ShapeDtypeStruct((2,), jnp.uint32,
                                       sharding=NamedSharding(mesh, jax.sharding.PartitionSpec()))
            sample = jax.export.export(sampler, platforms=targets)(
                state.eval_params, key, mesh.size)
    return step, sample


@pytest.mark.parametrize("name", ACCELERATOR_CONFIGS)
def test_train_step_and_sampler_lower_for_the_accelerators(name):
    step, sample = _exports(name, PLATFORMS)
    assert step.platforms == PLATFORMS and step.nr_devices == 8
    assert "bf16" in step.mlir_module()  # compute_dtype "auto" is bfloat16 on an accelerator
    if sample is not None:
        assert sample.platforms == PLATFORMS and sample.nr_devices == 8


@pytest.mark.parametrize("platform", [*PLATFORMS, "cpu"])
def test_platform_choices_follow_the_target_not_the_host(platform):
    """On this CPU host, a program exported for an accelerator computes in bfloat16 and uses
    XLA's transposed convolution (an input dilated by the stride); one for the CPU computes in
    float32 and uses the sub-pixel form (a stride-1 convolution and a pixel shuffle)."""
    step, sample = _exports("dcgan_mnist", (platform,))
    accelerator = platform != "cpu"
    assert ("bf16" in step.mlir_module()) == accelerator
    # The generator's forward pass (the sampler; in the train step a strided convolution's
    # input gradient also dilates its input)
    assert ("lhs_dilate = [2, 2]" in sample.mlir_module()) == accelerator


# runwayml/stable-diffusion-v1-5: vae/config.json and text_encoder/config.json (the U-Net's and
# the scheduler's are the benchmark's).
SD15_VAE = {"_class_name": "AutoencoderKL", "block_out_channels": [128, 256, 512, 512],
            "down_block_types": ["DownEncoderBlock2D"] * 4, "layers_per_block": 2,
            "up_block_types": ["UpDecoderBlock2D"] * 4, "sample_size": 512}
SD15_TEXT = {"hidden_size": 768, "intermediate_size": 3072, "num_attention_heads": 12,
             "num_hidden_layers": 12, "max_position_embeddings": 77, "hidden_act": "quick_gelu",
             "projection_dim": 768}


@pytest.mark.slow  # 35 s: traces and lowers the 860M U-Net's 25-step loop, CLIP ViT-L and the VAE
def test_stable_diffusion_text_to_image_lowers_at_its_real_sizes():
    """8 prompts of 77 tokens, one per device, to 512 x 512 images for CUDA and TPU with
    classifier-free guidance: weights float32, compute bfloat16 ("auto"), attention XLA's
    (this host cannot trace cuDNN's kernel, so "auto" keeps XLA's even for CUDA)."""
    from benchmarks import sd15

    mesh = parallel.make_mesh(1)
    replicated = NamedSharding(mesh, jax.sharding.PartitionSpec())
    data = parallel.batch_sharding(mesh)
    unet = unet_kwargs(sd15.unet_config(512))
    vae, scaling = vae_kwargs(SD15_VAE)
    text = text_kwargs(SD15_TEXT)
    builds = {"unet": lambda rngs: UNet(**unet, rngs=rngs),
              "vae": lambda rngs: AutoencoderKL(**vae, rngs=rngs),
              "text": lambda rngs: CLIPTextModel(**text, rngs=rngs)}
    params = jax.tree.map(lambda x: jax.ShapeDtypeStruct(x.shape, x.dtype, sharding=replicated),
                          {name: abstract_params(build) for name, build in builds.items()})
    assert sum(x.size for x in jax.tree.leaves(params["unet"])) == sd15.PARAMETERS
    with platforms.target(PLATFORMS[0]):
        pipe = StableDiffusion(unet, vae, text, params, None, scaling, sd15.SD15_SCHEDULER,
                               mesh=mesh, dtype="auto")
        program = pipe._program("dpm_solver", 25, (64, 64, 4), guided=True)
        ids = jax.ShapeDtypeStruct((8, 77), jnp.int32, sharding=data)
        null_ids = jax.ShapeDtypeStruct((1, 77), jnp.int32, sharding=replicated)
        x_T = jax.ShapeDtypeStruct((8, 64, 64, 4), jnp.float32, sharding=data)
        key = jax.ShapeDtypeStruct((2,), jnp.uint32, sharding=replicated)
        exported = jax.export.export(program, platforms=PLATFORMS)(
            params, ids, null_ids, x_T, key, jax.ShapeDtypeStruct((), jnp.float32))
    assert exported.platforms == PLATFORMS and exported.nr_devices == 8
    assert exported.out_avals[0].shape == (8, 512, 512, 3)
    module = exported.mlir_module()
    assert "bf16" in module and "__cudnn$fmha" not in module
