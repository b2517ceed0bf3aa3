"""jaxgen's side: sampling throughput and train-step speed of a model, sharded over the first
`devices` devices, on random inputs of the config's shapes (no dataset, no download)."""

import functools
import json

import jax
import jax.numpy as jnp
import ml_collections
from jax.extend import core as jax_core

from benchmarks import harness
from jaxgen import config as config_lib
from jaxgen import parallel
from jaxgen.data import text
from jaxgen.train import families, make_objective
from jaxgen.train.loop import jit_train_step
from jaxgen.train.state import state_layout

# name -> (experiment config, overrides). unet-cifar10 is DDPM's CIFAR-10 network exactly
# (unconditional, 35,746,307 parameters), the one diffusers' UNet2DModel reproduces.
MODELS = {
    "unet-cifar10": ("diffusion_cifar10.py", ["model.num_classes=0"]),
    "unet-mnist": ("diffusion_mnist5k.py", []),
    "vae": ("vae_mnist.py", []),
    "dcgan": ("dcgan_cifar10.py", []),
    # Text-to-image: the CPU latent diffusion pipeline (text tower, U-Net over the 7x7x4
    # latents, autoencoder decoder), random weights: the pretrained runs are not read.
    "ldm": ("ldm_mnist5k.py", []),
}
DTYPES = {"fp32": "float32", "bf16": "bfloat16"}


def load_config(model: str | None, config_path: str | None, overrides: list[str],
                dtype: str, guidance: float | None):
    """The experiment config of a registered `model` (or any `config_path`), with `overrides`,
    the compute dtype, and (for guidance on an unconditional registered U-Net) 10 classes."""
    if (model is None) == (config_path is None):
        raise ValueError("give exactly one of --model and --config")
    if model is not None:
        if model not in MODELS:
            raise ValueError(f"unknown model {model!r}; choose from {sorted(MODELS)}")
        path, fixed = MODELS[model]
        config = config_lib.load(config_lib.experiments_dir() / path)
        if guidance is not None and model == "unet-cifar10":
            fixed = ["model.num_classes=10"]  # guidance needs labels: the class-conditional net
        config = config_lib.override(config, fixed)
    else:
        config = config_lib.load(config_path)
    config = config_lib.override(config, overrides)
    config.compute_dtype = DTYPES[dtype]
    return config


def device_mesh(devices: int | None):
    """A data-parallel mesh over the first `devices` devices (all of them when None)."""
    available = jax.devices()
    devices = devices or len(available)
    if not 1 <= devices <= len(available):
        raise ValueError(f"--devices {devices}: this machine has {len(available)}")
    return parallel.make_mesh(1, available[:devices])


def parameter_count(params) -> int:
    return int(sum(x.size for x in jax.tree.leaves(params)))


def number_of_evaluations(objective, sampler: str, steps: int) -> int:
    """Denoiser calls of one sampling run (per image and branch)."""
    if sampler == "ddpm":
        return objective.denoising.schedule.num_steps
    if sampler == "heun":
        return 2 * steps - 1  # the last step, to t = 0, is Euler
    return steps


@functools.cache
def _objective_and_params(config_json: str):
    """The objective and random initial weights of a config, built once per config: a scaling
    sweep times many batches and device counts of the same network."""
    objective = make_objective(ml_collections.ConfigDict(json.loads(config_json)))
    return objective, jax.jit(objective.init_state)(jax.random.PRNGKey(0)).params


def bench_sample(config, batch: int, *, sampler: str | None = None, steps: int | None = None,
                 guidance: float | None = None, devices: int | None = None,
                 repeats: int = 5) -> dict:
    """Images/s of the model's sampler at global batch `batch` (a diffusion model: `steps` of
    `sampler`, classifier-free guidance if `guidance` is set; VAE/GAN: one decoder pass)."""
    mesh = device_mesh(devices)
    parallel.check_batch_size(batch, mesh)
    objective, params = _objective_and_params(config.to_json())
    key = jax.random.PRNGKey(0)
    data = parallel.batch_sharding(mesh)
    row = {"task": "sample", "batch": batch, "devices": mesh.size,
           "parameters": parameter_count(params)}
    if config.family == "ldm":
        row.update(_ldm_sample(objective, params, config, batch, data, key, sampler, steps,
                               guidance))
        generate, args, kwargs = row.pop("program")
        compiled, compile_s = harness.compile_timed(generate, *args, **kwargs)
        run = lambda: compiled(*args)  # noqa: E731
    elif config.family == "diffusion":
        sampler = sampler or config.sample.sampler
        steps = steps or config.sample.steps
        shape = (batch, *objective.data_shape)
        x_T = jax.device_put(jax.random.normal(key, shape), data)
        labels = (jax.device_put(jnp.arange(batch) % objective.num_classes, data)
                  if objective.num_classes else None)
        if guidance is not None and labels is None:
            raise ValueError("--guidance needs a class-conditional model")
        scale = None if guidance is None else jnp.float32(guidance)
        generate = jax.jit(objective.generate, static_argnames=("sampler", "steps"),
                           out_shardings=data)
        compiled, compile_s = harness.compile_timed(generate, params, x_T, key, labels, scale,
                                                    None, sampler=sampler, steps=steps)
        run = lambda: compiled(params, x_T, key, labels, scale, None)  # noqa: E731
        branches = 1 if guidance is None else 2
        forward_batch = branches * batch
        t = jnp.zeros((forward_batch,), jnp.float32)
        y = None if labels is None else jnp.zeros((forward_batch,), jnp.int32)
        forward = harness.flops(lambda p, x, t, y: objective.denoiser(p)(x, t, y), params,
                                jax.ShapeDtypeStruct((forward_batch, *shape[1:]), jnp.float32),
                                t, y)
        nfe = number_of_evaluations(objective, sampler, steps)
        row.update(sampler=sampler, steps=steps, guidance=guidance, nfe=nfe,
                   flops_per_call=forward * nfe)
    else:
        z = jax.device_put(jax.random.normal(key, (batch, objective.latent_dim)), data)
        decode = jax.jit(objective.decode, out_shardings=data)
        compiled, compile_s = harness.compile_timed(decode, params, z)
        run = lambda: compiled(params, z)  # noqa: E731
        row.update(nfe=1, flops_per_call=harness.flops(objective.decode, params, z))
    timing = harness.timed(run, repeats)
    row.update(timing, call=run, compile_seconds=compile_s,
               images_per_second=batch / timing["seconds_median"],
               compiled_bytes=harness.compiled_bytes(compiled))
    return row


def _ldm_sample(objective, params, config, batch, data, key, sampler, steps, guidance):
    """Prompt tokens in, decoded images out: the text tower once (and once on the empty
    prompt with guidance), the U-Net at every sampler step (on the doubled batch with
    guidance), the decoder once. FLOPs add the three, the U-Net's times its evaluations."""
    sampler = sampler or config.sample.sampler
    steps = steps or config.sample.steps
    tokens = jax.device_put(objective.prompt_tokens(tuple(config.ldm.prompts), batch), data)
    scale = None if guidance is None else jnp.float32(guidance)
    generate = jax.jit(objective.generate_images, static_argnames=("sampler", "steps"),
                       out_shardings=data)
    branches = 1 if guidance is None else 2
    latents = jax.ShapeDtypeStruct((branches * batch, *objective.data_shape), jnp.float32)
    context = jax.eval_shape(objective.context, params, tokens)
    context = jax.ShapeDtypeStruct((branches * batch, *context.shape[1:]), context.dtype)
    t = jnp.zeros((branches * batch,), jnp.float32)
    unet = harness.flops(lambda p, x, t, c: objective.denoiser(p)(x, t, c), params, latents, t,
                         context)
    text = harness.flops(objective.context, params, tokens)
    decode = harness.flops(objective.decode_latents, params,
                           jax.ShapeDtypeStruct((batch, *objective.data_shape), jnp.float32))
    nfe = number_of_evaluations(objective, sampler, steps)
    return {"sampler": sampler, "steps": steps, "guidance": guidance, "nfe": nfe,
            # the text tower reads the B prompts, and with guidance the one empty prompt
            "flops_per_call": unet * nfe + text * (1 + (branches - 1) / batch) + decode,
            "program": (generate, (params, tokens, key, scale, None),
                        {"sampler": sampler, "steps": steps})}


def train_setup(config, batch: int, devices: int | None = None):
    """(objective, mesh, abstract state, state, host batch, sharded batch, jitted step) of
    the engine's train step at global batch `batch`, on random images, labels and tokens."""
    mesh = device_mesh(devices)
    parallel.check_batch_size(batch, mesh)
    config.batch_size = batch
    objective = make_objective(config)
    key = jax.random.PRNGKey(0)
    abstract, shardings = state_layout(objective, mesh, config.mesh.min_fsdp_size)
    state = jax.jit(objective.init_state, out_shardings=shardings)(key)
    images = jax.random.uniform(key, (batch, *families.image_shape(config)), minval=-1.0)
    labels = jnp.arange(batch, dtype=jnp.int32) % max(int(config.model.get("num_classes", 0)), 1)
    host_batch = {"image": images, "label": labels}
    if config.data.get("text_length"):  # CLIP and latent diffusion train on caption tokens
        host_batch["text"] = jax.random.randint(key, (batch, config.data.text_length), 0,
                                                text.VOCAB_SIZE, jnp.int32)
    train_batch = parallel.shard_batch(host_batch, mesh)
    return (objective, mesh, abstract, state, host_batch, train_batch,
            jit_train_step(objective, mesh, shardings))


def bench_train(config, batch: int, *, devices: int | None = None, repeats: int = 5,
                calls: int = 5) -> dict:
    """Steps/s and examples/s of the engine's jitted, sharded train step at global batch
    `batch` (random images and labels), the optimizer update and EMA included."""
    objective, mesh, abstract, state, host_batch, train_batch, step = train_setup(
        config, batch, devices)
    key = jax.random.PRNGKey(0)
    compiled, compile_s = harness.compile_timed(step, state, train_batch)
    step_flops = harness.flops(objective.step, abstract,
                               {k: jax.ShapeDtypeStruct(v.shape, v.dtype)
                                for k, v in host_batch.items()}, key)

    holder = [state]

    def run():
        holder[0], metrics = compiled(holder[0], train_batch)  # the state is donated
        return metrics

    timing = harness.timed(run, repeats, calls)
    return {"task": "train", "batch": batch, "devices": mesh.size, **timing, "call": run,
            "compile_seconds": compile_s, "steps_per_second": 1.0 / timing["seconds_median"],
            "examples_per_second": batch / timing["seconds_median"],
            "flops_per_call": step_flops, "compiled_bytes": harness.compiled_bytes(compiled),
            "parameters": parameter_count(abstract.params)}


def profile(call, directory: str) -> None:
    """One more call of a benchmarked program under `jax.profiler.trace`: the kernels and
    their times, to see what limits it."""
    with jax.profiler.trace(directory):
        jax.block_until_ready(call())


# One convolution at a time: where a network's step goes, layer by layer.

def conv_layers(config, batch: int) -> list[dict]:
    """The distinct convolutions of one forward of a diffusion config's network at `batch`,
    each with how many times it runs, read from the traced program (so what is listed is
    what runs): input and kernel shapes (NHWC, HWIO), strides, padding and dtype."""
    if config.family != "diffusion":
        raise ValueError(f"layers lists a diffusion U-Net's convolutions, not a {config.family!r}"
                         " model's")
    objective = make_objective(config)
    params = jax.eval_shape(objective.init_state, jax.random.PRNGKey(0)).params
    x = jax.ShapeDtypeStruct((batch, *objective.data_shape), jnp.float32)
    labels = (jax.ShapeDtypeStruct((batch,), jnp.int32) if objective.num_classes else None)
    jaxpr = jax.make_jaxpr(lambda p, x, t, y: objective.denoiser(p)(x, t, y))(
        params, x, jax.ShapeDtypeStruct((batch,), jnp.float32), labels)
    found: dict[tuple, dict] = {}
    for eqn in _equations(jaxpr.jaxpr):
        if eqn.primitive.name != "conv_general_dilated":
            continue
        p = eqn.params
        lhs, rhs = eqn.invars[0].aval, eqn.invars[1].aval
        if (p["dimension_numbers"] != jax.lax.conv_dimension_numbers(
                lhs.shape, rhs.shape, ("NHWC", "HWIO", "NHWC"))
                or p["feature_group_count"] != 1 or p["batch_group_count"] != 1
                or set(p["lhs_dilation"]) | set(p["rhs_dilation"]) != {1}):
            raise ValueError(f"layers times plain NHWC/HWIO convolutions, not {eqn}")
        layer = {"input": list(lhs.shape), "kernel": list(rhs.shape),
                 "strides": list(p["window_strides"]),
                 "padding": [list(pair) for pair in p["padding"]], "dtype": str(lhs.dtype)}
        key = json.dumps(layer)
        found.setdefault(key, {**layer, "count": 0})["count"] += 1
    return sorted(found.values(), key=_conv_flops, reverse=True)


def _equations(jaxpr):
    for eqn in jaxpr.eqns:
        yield eqn
        for value in eqn.params.values():
            for sub in value if isinstance(value, tuple | list) else (value,):
                if isinstance(sub, jax_core.ClosedJaxpr):
                    yield from _equations(sub.jaxpr)
                elif isinstance(sub, jax_core.Jaxpr):
                    yield from _equations(sub)


def _conv_flops(layer: dict) -> int:
    """Forward FLOPs of one call of a layer, every output pixel times the whole window (2 per
    multiply-add; zero padding counted, as PyTorch's counter does)."""
    (n, h, w, _), (kh, kw, c_in, c_out) = layer["input"], layer["kernel"]
    (sh, sw), ((ph0, ph1), (pw0, pw1)) = layer["strides"], layer["padding"]
    out_h, out_w = (h + ph0 + ph1 - kh) // sh + 1, (w + pw0 + pw1 - kw) // sw + 1
    return 2 * n * out_h * out_w * kh * kw * c_in * c_out


def bench_conv_layer(layer: dict, repeats: int = 5, calls: int = 3) -> dict:
    """Seconds of one layer's forward, input gradient and kernel gradient, each its own jitted
    program (the gradients are what a train step's backward runs: `jax.vjp` of the
    convolution, whose unused forward XLA drops)."""
    dtype = jnp.dtype(layer["dtype"])
    key_x, key_k = jax.random.split(jax.random.PRNGKey(0))
    x = jax.random.normal(key_x, layer["input"], dtype)
    kernel = (jax.random.normal(key_k, layer["kernel"]) * 0.05).astype(dtype)

    def conv(x, kernel):
        return jax.lax.conv_general_dilated(
            x, kernel, layer["strides"], [tuple(pair) for pair in layer["padding"]],
            dimension_numbers=("NHWC", "HWIO", "NHWC"))

    cotangent = jnp.ones_like(conv(x, kernel))
    programs = {
        "forward": jax.jit(conv),
        "input_grad": jax.jit(lambda x, k, g: jax.vjp(lambda x: conv(x, k), x)[1](g)[0]),
        "kernel_grad": jax.jit(lambda x, k, g: jax.vjp(lambda k: conv(x, k), k)[1](g)[0]),
    }
    row = {"task": "layer", **layer, "flops": _conv_flops(layer)}
    for name, program in programs.items():
        args = (x, kernel) if name == "forward" else (x, kernel, cotangent)
        row[f"{name}_s"] = harness.timed(lambda: program(*args), repeats, calls)[  # noqa: B023
            "seconds_median"]
    return row
