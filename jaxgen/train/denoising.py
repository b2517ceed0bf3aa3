"""The denoising core that both diffusion objectives compose: the noise schedule (or the flow
path), the configured denoising loss, classifier-free guidance and the samplers chosen by name.

The condition is a parameter, never a subclass: the class-conditional model passes labels (its
null is the extra class K), latent diffusion passes the text tower's token features (its null
is the empty prompt's). A network function here is `fn(x, t, condition) -> prediction`, `t`
the sampler's time: the timestep in [0, T) for VP models, the flow time in [0, 1] for flow
(which enters the network as 1000 t).

Config `diffusion` fields:
  parameterization  "eps" | "x0" | "v" (variance-preserving, on the discrete `schedule`) or
                    "flow" (rectified flow: x_t = (1 - t) x0 + t eps, velocity target)
  schedule, num_train_steps   the noise schedule ("linear" | "cosine" | "scaled_linear") and
                    its T; optional beta_start, beta_end (see `schedules.make_schedule`)
  weighting, snr_gamma        "simple" | "min_snr" (see `losses.loss_weight`)
  time_sampling     flow only: "uniform" | "logit_normal" (SD3's, N(0, 1) in logit space)
Config `sample` fields: sampler ("ddim" | "ddpm" | "dpm_solver" for the VP models, "euler" |
"heun" for flow), steps, eta (ddim), spacing and optional steps_offset (see
`sample.diffusion.timesteps`), optional set_alpha_to_one (see `final_alpha_cumprod`),
flow_shift,
guidance (w; None for none), guidance_interval ((low, high] of sigma / alpha, or None),
clip_x0 (clip each predicted x0 to [-c, c] in the VP samplers, as DDPM does; None: off).
"""

import jax
import jax.numpy as jnp
from flax import nnx

from jaxgen import losses, schedules
from jaxgen.models.dit import DiT
from jaxgen.models.layers import use_attention
from jaxgen.models.unet import UNet
from jaxgen.sample import diffusion as samplers
from jaxgen.train.state import attention_kernel, compute_dtype

VP_SAMPLERS = ("ddim", "ddpm", "dpm_solver")
FLOW_SAMPLERS = ("euler", "heun")
# The timestep spacing of diffusers' DDIMScheduler and DPMSolverMultistepScheduler when their
# config names none.
DIFFUSERS_SPACING = {"ddim": "leading", "dpm_solver": "linspace"}
FLOW_TIME_SCALE = 1000.0  # flow time t in [0, 1] enters the network as 1000 t


# U-Net fields a config may leave out (their `UNet` defaults); checkpoints read from diffusers
# set them (`jaxgen.pretrained`).
UNET_EXTRAS = {"out_channels": None, "norm_groups": None, "norm_eps": 1e-6,
               "downsample_padding": None, "freq_shift": 1.0, "flip_sin_to_cos": False,
               "attention": "plain", "transformer_depth": 1, "linear_projection": False,
               "upcast_attention": False}


def build_denoiser(config, rngs: nnx.Rngs):
    """The U-Net or DiT of `config.model`: kind ("unet" | "dit"), data_shape, num_classes
    (0: unconditional), context_dim, dropout; U-Net: channels, channel_mults, num_res_blocks,
    attention_resolutions, num_heads, head_channels, scale_shift and optionally the
    `UNET_EXTRAS`; DiT: patch_size, hidden, depth, num_heads, mlp_ratio."""
    m = config.model
    common = dict(data_shape=tuple(m.data_shape), num_classes=m.num_classes,
                  context_dim=m.context_dim, dropout=m.dropout,
                  dtype=compute_dtype(config.compute_dtype), rngs=rngs)
    if m.kind == "unet":
        return use_attention(UNet(channels=m.channels, channel_mults=tuple(m.channel_mults),
                    num_res_blocks=m.num_res_blocks,
                    attention_resolutions=tuple(m.attention_resolutions),
                    num_heads=m.num_heads, head_channels=m.head_channels,
                    scale_shift=m.scale_shift, **{k: m.get(k, v) for k, v in UNET_EXTRAS.items()},
                    **common), attention_kernel(config))
    if m.kind == "dit":
        return use_attention(DiT(patch_size=m.patch_size, hidden=m.hidden, depth=m.depth,
                                 num_heads=m.num_heads, mlp_ratio=m.mlp_ratio, **common),
                             attention_kernel(config))
    raise ValueError(f"model.kind must be 'unet' or 'dit', got {m.kind!r}")


class Denoising:
    """Schedule, loss, guidance and samplers of one run's `diffusion` and `sample` config over
    data (or latents) of shape `model.data_shape`."""

    def __init__(self, config):
        d = config.diffusion
        self.flow = d.parameterization == "flow"
        if not self.flow and d.parameterization not in schedules.PARAMETERIZATIONS:
            raise ValueError(f"diffusion.parameterization must be one of "
                             f"{(*schedules.PARAMETERIZATIONS, 'flow')}, got "
                             f"{d.parameterization!r}")
        if self.flow and d.time_sampling not in ("uniform", "logit_normal"):
            raise ValueError("diffusion.time_sampling must be 'uniform' or 'logit_normal', got "
                             f"{d.time_sampling!r}")
        self.diffusion, self.sampling = d, config.sample
        self.schedule = schedules.make_schedule(d.schedule, d.num_train_steps,
                                                d.get("beta_start"), d.get("beta_end"))
        self.data_shape = tuple(config.model.data_shape)
        self.check_sampler(config.sample.sampler)

    @property
    def parameterization(self) -> str:
        return self.diffusion.parameterization

    def network(self, graphdef, params, dropout_key=None):
        """`fn(x, t, labels=None, context=None) -> prediction`: the denoiser `graphdef` with
        `params`, at the sampler's time t."""
        model = nnx.merge(graphdef, params)
        scale = FLOW_TIME_SCALE if self.flow else 1.0

        def fn(x, t, labels=None, context=None):
            return model(x, scale * jnp.asarray(t, jnp.float32), labels, context,
                         dropout_key=dropout_key)

        return fn

    # Training.

    def loss(self, fn, x0, t_key, noise_key):
        """The configured denoising loss of `fn(x_t, t) -> prediction` on clean data x0."""
        d = self.diffusion
        noise = jax.random.normal(noise_key, x0.shape, x0.dtype)
        batch_size = x0.shape[0]
        if self.flow:
            t = (losses.logit_normal_times(t_key, batch_size) if d.time_sampling == "logit_normal"
                 else jax.random.uniform(t_key, (batch_size,)))
            loss, aux = losses.flow_matching_loss(
                fn(schedules.flow_interpolate(x0, noise, t), t), x0, noise)
        else:
            t = jax.random.randint(t_key, (batch_size,), 0, self.schedule.num_steps)
            alpha, sigma = self.schedule.alpha[t], self.schedule.sigma[t]
            x_t = schedules.add_noise(x0, noise, alpha, sigma)
            loss, aux = losses.diffusion_loss(fn(x_t, t), x0, noise, alpha, sigma,
                                              d.parameterization, d.weighting, d.snr_gamma)
        return loss, {"mse": jnp.mean(aux["mse"])}

    # Sampling.

    def check_sampler(self, name: str) -> None:
        allowed = FLOW_SAMPLERS if self.flow else VP_SAMPLERS
        if name not in allowed:
            kind = "flow-matching" if self.flow else "variance-preserving"
            raise ValueError(f"a {kind} model samples with one of {allowed}, got {name!r}")

    def settings(self, sampler=None, steps=None, guidance=None, interval=None):
        """(sampler, steps, guidance, interval), the config's `sample` defaults in place of
        those not given (None); the sampler checked against the parameterization."""
        s = self.sampling
        sampler = sampler or s.sampler
        self.check_sampler(sampler)
        return (sampler, steps or s.steps, s.guidance if guidance is None else guidance,
                s.guidance_interval if interval is None else tuple(interval))

    def noise_level(self, t: jax.Array) -> jax.Array:
        """sigma / alpha at the sampler's time t (the noise level CFG intervals are given in)."""
        if self.flow:
            return t / jnp.maximum(1.0 - t, 1e-12)
        acp = self.schedule.alphas_cumprod[t]
        return jnp.sqrt((1.0 - acp) / acp)

    def guided(self, fn, condition, null, guidance, interval):
        """`fn(x, t, condition)` as a sampler's `fn(x, t)`: with classifier-free guidance of
        scale `guidance` against the `null` condition inside the noise `interval`, or the
        plain conditional model when `guidance` is None."""
        if guidance is None:
            return lambda x, t: fn(x, t, condition)
        interval = (0.0, jnp.inf) if interval is None else (interval[0], interval[1])
        return samplers.guided(fn, condition, null, guidance, self.noise_level, interval)

    @property
    def final_alpha_cumprod(self) -> float:
        """Where DDIM's last step lands: clean data (1), or with the optional config entry
        `sample.set_alpha_to_one` False (SD's schedulers) alphas_cumprod[0], as diffusers."""
        if self.sampling.get("set_alpha_to_one", True):
            return 1.0
        return self.schedule.alphas_cumprod[0]

    def grid(self, steps: int, sampler: str = "ddim"):
        """The timesteps a VP sampler of `steps` steps visits: the config's spacing laid out as
        diffusers' scheduler of that sampler does; with no spacing (a checkpoint's scheduler
        config that names none), that scheduler's default."""
        s = self.sampling
        spacing = s.spacing or DIFFUSERS_SPACING["dpm_solver" if sampler == "dpm_solver"
                                                 else "ddim"]
        return samplers.timesteps(self.schedule.num_steps, steps, spacing,
                                  s.get("steps_offset", 0),
                                  "dpm_solver" if sampler == "dpm_solver" else "ddim")

    def sample(self, fn, x_T, key, sampler=None, steps=None):
        """Data from noise x_T with `fn(x, t)`, by the named sampler (default: the config's);
        `sampler` and `steps` are static."""
        s = self.sampling
        sampler, steps = sampler or s.sampler, steps or s.steps
        self.check_sampler(sampler)
        if self.flow:
            times = samplers.flow_times(steps, s.flow_shift)
            run = samplers.euler_sample if sampler == "euler" else samplers.heun_sample
            return run(fn, x_T, times)
        p, clip = self.parameterization, s.get("clip_x0")
        if sampler == "ddpm":
            return samplers.ddpm_sample(fn, self.schedule, x_T, key, p, clip)
        grid = self.grid(steps, sampler)
        if sampler == "dpm_solver":
            return samplers.dpm_solver_sample(fn, self.schedule, x_T, grid, p, clip_x0=clip)
        return samplers.ddim_sample(fn, self.schedule, x_T, grid, key, s.eta, p, clip_x0=clip,
                                    final_alpha_cumprod=self.final_alpha_cumprod)

    def invert(self, fn, x0):
        """The noise that the deterministic sampler maps back to x0: DDIM inversion, or the
        flow ODE run from t = 0 to 1."""
        s = self.sampling
        if self.flow:
            run = samplers.heun_sample if s.sampler == "heun" else samplers.euler_sample
            return run(fn, x0, samplers.flow_times(s.steps, s.flow_shift)[::-1].copy())
        grid = self.grid(s.steps)
        return samplers.ddim_invert(fn, self.schedule, x0, grid, self.parameterization)

    def deterministic(self, fn, x_T):
        """Data from x_T by the deterministic sampler that `invert` reverses: DDIM at eta 0,
        or the configured flow sampler."""
        if self.flow:
            return self.sample(fn, x_T, jax.random.PRNGKey(0))
        s = self.sampling
        grid = self.grid(s.steps)
        return samplers.ddim_sample(fn, self.schedule, x_T, grid, jax.random.PRNGKey(0), 0.0,
                                    self.parameterization, clip_x0=s.get("clip_x0"))
