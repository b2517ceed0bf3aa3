"""The diffusion objective: a denoiser (U-Net or DiT), its pure denoising step, and sampling with
any of the library's samplers and classifier-free guidance.

Config `diffusion` fields:
  parameterization  "eps" | "x0" | "v" (variance-preserving, on the discrete `schedule`) or
                    "flow" (rectified flow: x_t = (1 - t) x0 + t eps, velocity target)
  schedule, num_train_steps   the noise schedule ("linear" | "cosine") and its T
  weighting, snr_gamma        "simple" | "min_snr" (see `losses.loss_weight`)
  time_sampling     flow only: "uniform" | "logit_normal" (SD3's, N(0, 1) in logit space)
  p_uncond          the probability of dropping a label to the null class during training, so
                    one network is both the conditional and the unconditional model (CFG)
Config `sample` fields: sampler ("ddim" | "ddpm" | "dpm_solver" for the VP models, "euler" |
"heun" for flow), steps, eta (ddim), spacing (see `sample.diffusion.timesteps`), flow_shift,
guidance (w; None for none), guidance_interval ((low, high] of sigma / alpha, or None),
clip_x0 (clip each predicted x0 to [-c, c] in the VP samplers, as DDPM does; None: off).

The network sees a float time: the timestep t in [0, T) for VP models, 1000 t for flow.
"""

import jax
import jax.numpy as jnp
import numpy as np
from flax import nnx

from jaxgen import losses
from jaxgen.models.dit import DiT
from jaxgen.models.unet import UNet
from jaxgen.sample import diffusion as samplers
from jaxgen.train.state import TrainState, compute_dtype, gradient_step, make_optimizer

VP_SAMPLERS = ("ddim", "ddpm", "dpm_solver")
FLOW_SAMPLERS = ("euler", "heun")
FLOW_TIME_SCALE = 1000.0  # flow time t in [0, 1] enters the network as 1000 t


class DiffusionObjective:
    """Config `model` fields: kind ("unet" | "dit"), data_shape, num_classes (0: unconditional),
    context_dim, dropout; U-Net: channels, channel_mults, num_res_blocks, attention_resolutions,
    num_heads, head_channels, scale_shift; DiT: patch_size, hidden, depth, num_heads, mlp_ratio.
    """

    progress_metrics = ("loss",)

    def __init__(self, config):
        self.config = config
        d = config.diffusion
        self.flow = d.parameterization == "flow"
        if not self.flow and d.parameterization not in losses.PARAMETERIZATIONS:
            raise ValueError(f"diffusion.parameterization must be one of "
                             f"{(*losses.PARAMETERIZATIONS, 'flow')}, got {d.parameterization!r}")
        if self.flow and d.time_sampling not in ("uniform", "logit_normal"):
            raise ValueError("diffusion.time_sampling must be 'uniform' or 'logit_normal', got "
                             f"{d.time_sampling!r}")
        if not 0.0 <= d.p_uncond < 1.0:
            raise ValueError(f"diffusion.p_uncond must be in [0, 1), got {d.p_uncond}")
        self.schedule = losses.make_schedule(d.schedule, d.num_train_steps)
        self.num_classes = config.model.num_classes
        self.data_shape = tuple(config.model.data_shape)
        self.check_sampler(config.sample.sampler)
        self.tx = make_optimizer(config.optim, config.steps)
        self.ema_decay = config.ema_decay
        self.graphdef = nnx.graphdef(nnx.eval_shape(lambda: self.build(nnx.Rngs(0))))

    def build(self, rngs: nnx.Rngs):
        m = self.config.model
        common = dict(data_shape=self.data_shape, num_classes=m.num_classes,
                      context_dim=m.context_dim, dropout=m.dropout,
                      dtype=compute_dtype(self.config.compute_dtype), rngs=rngs)
        if m.kind == "unet":
            return UNet(channels=m.channels, channel_mults=tuple(m.channel_mults),
                        num_res_blocks=m.num_res_blocks,
                        attention_resolutions=tuple(m.attention_resolutions),
                        num_heads=m.num_heads, head_channels=m.head_channels,
                        scale_shift=m.scale_shift, **common)
        if m.kind == "dit":
            return DiT(patch_size=m.patch_size, hidden=m.hidden, depth=m.depth,
                       num_heads=m.num_heads, mlp_ratio=m.mlp_ratio, **common)
        raise ValueError(f"model.kind must be 'unet' or 'dit', got {m.kind!r}")

    def init_state(self, key: jax.Array) -> TrainState:
        init_key, rng = jax.random.split(key)
        params = nnx.state(self.build(nnx.Rngs(init_key))).to_pure_dict()
        return TrainState.create(params, self.tx, rng, use_ema=self.ema_decay > 0)

    # The network as a function of its parameters.

    def denoiser(self, params, dropout_key=None):
        """`fn(x, t, labels) -> prediction`, t the sampler's time (timestep or flow time)."""
        model = nnx.merge(self.graphdef, params)
        scale = FLOW_TIME_SCALE if self.flow else 1.0

        def fn(x, t, labels=None):
            return model(x, scale * jnp.asarray(t, jnp.float32), labels,
                         dropout_key=dropout_key)

        return fn

    def drop_labels(self, key: jax.Array, labels: jax.Array) -> jax.Array | None:
        """Labels with each replaced by the null class with probability p_uncond (CFG)."""
        if not self.num_classes:
            return None
        drop = jax.random.bernoulli(key, self.config.diffusion.p_uncond, labels.shape)
        return jnp.where(drop, self.num_classes, labels)

    def loss(self, params, batch, key):
        t_key, noise_key, label_key, dropout_key = jax.random.split(key, 4)
        labels = self.drop_labels(label_key, batch["label"])
        fn = self.denoiser(params, dropout_key if self.config.model.dropout else None)
        return self.denoising_loss(lambda x, t: fn(x, t, labels), batch["image"], t_key,
                                   noise_key)

    def denoising_loss(self, fn, x0, t_key, noise_key):
        """The configured denoising loss of `fn(x_t, t) -> prediction` on clean data x0."""
        d = self.config.diffusion
        noise = jax.random.normal(noise_key, x0.shape, x0.dtype)
        batch_size = x0.shape[0]
        if self.flow:
            t = (losses.logit_normal_times(t_key, batch_size) if d.time_sampling == "logit_normal"
                 else jax.random.uniform(t_key, (batch_size,)))
            loss, aux = losses.flow_matching_loss(fn(losses.flow_interpolate(x0, noise, t), t),
                                                  x0, noise)
        else:
            t = jax.random.randint(t_key, (batch_size,), 0, self.schedule.num_steps)
            alpha, sigma = self.schedule.alpha[t], self.schedule.sigma[t]
            x_t = losses.add_noise(x0, noise, alpha, sigma)
            loss, aux = losses.diffusion_loss(fn(x_t, t), x0, noise, alpha, sigma,
                                              d.parameterization, d.weighting, d.snr_gamma)
        return loss, {"mse": jnp.mean(aux["mse"])}

    def step(self, state: TrainState, batch, key: jax.Array):
        return gradient_step(state, self.loss, batch, key, self.tx, self.ema_decay)

    # Sampling.

    def check_sampler(self, name: str) -> None:
        allowed = FLOW_SAMPLERS if self.flow else VP_SAMPLERS
        if name not in allowed:
            kind = "flow-matching" if self.flow else "variance-preserving"
            raise ValueError(f"a {kind} model samples with one of {allowed}, got {name!r}")

    def noise_level(self, t: jax.Array) -> jax.Array:
        """sigma / alpha at the sampler's time t (the noise level CFG intervals are given in)."""
        if self.flow:
            return t / jnp.maximum(1.0 - t, 1e-12)
        acp = self.schedule.alphas_cumprod[t]
        return jnp.sqrt((1.0 - acp) / acp)

    def default_labels(self, num: int):
        """Classes 0, 1, ..., K-1, 0, 1, ... (a grid shows one class per column), or None."""
        return jnp.arange(num) % self.num_classes if self.num_classes else None

    def _guided_fn(self, params, labels, guidance, interval):
        fn = self.denoiser(params)
        if guidance is None:
            return lambda x, t: fn(x, t, labels)
        if not self.num_classes or labels is None:
            raise ValueError("guidance needs a class-conditional model (model.num_classes > 0) "
                             "and the labels to guide toward")
        null = jnp.full_like(labels, self.num_classes)
        interval = (0.0, jnp.inf) if interval is None else (interval[0], interval[1])
        return samplers.guided(fn, labels, null, guidance, self.noise_level, interval)

    def generate(self, params, x_T, key, labels=None, guidance=None, interval=None, *,
                 sampler=None, steps=None):
        """Samples from noise x_T [B, H, W, C] with `labels` [B] (None: the null class or an
        unconditional model). `guidance` (w) and `interval` may be traced; `sampler` and
        `steps` are static (default: the config's)."""
        s = self.config.sample
        sampler, steps = sampler or s.sampler, steps or s.steps
        self.check_sampler(sampler)
        fn = self._guided_fn(params, labels, guidance, interval)
        if self.flow:
            times = samplers.flow_times(steps, s.flow_shift)
            run = samplers.euler_sample if sampler == "euler" else samplers.heun_sample
            return run(fn, x_T, times)
        p, clip = self.config.diffusion.parameterization, s.get("clip_x0")
        if sampler == "ddpm":
            return samplers.ddpm_sample(fn, self.schedule, x_T, key, p, clip)
        grid = samplers.timesteps(self.schedule.num_steps, steps, s.spacing)
        if sampler == "dpm_solver":
            return samplers.dpm_solver_sample(fn, self.schedule, x_T, grid, p, clip_x0=clip)
        return samplers.ddim_sample(fn, self.schedule, x_T, grid, key, s.eta, p, clip_x0=clip)

    def sample(self, params, key: jax.Array, num: int, labels=None) -> jax.Array:
        """`num` images in [-1, 1] with the config's sampler and guidance; labels default to
        0, 1, ..., K-1 in turn."""
        noise_key, sampler_key = jax.random.split(key)
        x_T = jax.random.normal(noise_key, (num, *self.data_shape))
        labels = self.default_labels(num) if labels is None else labels
        guidance = self.config.sample.guidance if self.num_classes else None
        interval = self.config.sample.guidance_interval
        return jnp.clip(self.generate(params, x_T, sampler_key, labels, guidance, interval),
                        -1.0, 1.0)

    # The latent toolkit: deterministic inversion makes the noise a code of the image.

    def encode(self, params, images: jax.Array) -> tuple[jax.Array, None]:
        """Flattened noise [B, H*W*C] that the deterministic sampler (unconditional) maps back
        to `images`: DDIM inversion, or the flow ODE run from t = 0 to 1."""
        fn = self._guided_fn(params, None, None, None)
        s = self.config.sample
        if self.flow:
            run = samplers.heun_sample if s.sampler == "heun" else samplers.euler_sample
            noise = run(fn, images, samplers.flow_times(s.steps, s.flow_shift)[::-1].copy())
        else:
            grid = samplers.timesteps(self.schedule.num_steps, s.steps, s.spacing)
            noise = samplers.ddim_invert(fn, self.schedule, images, grid,
                                         self.config.diffusion.parameterization)
        return noise.reshape(noise.shape[0], -1), None

    def decode(self, params, z: jax.Array) -> jax.Array:
        """Images from flattened noise codes, with the deterministic sampler (DDIM at eta 0,
        or the flow ODE) and no condition."""
        s = self.config.sample
        x_T = z.reshape(z.shape[0], *self.data_shape)
        if self.flow:
            return jnp.clip(self.generate(params, x_T, jax.random.PRNGKey(0)), -1.0, 1.0)
        grid = samplers.timesteps(self.schedule.num_steps, s.steps, s.spacing)
        x = samplers.ddim_sample(self._guided_fn(params, None, None, None), self.schedule, x_T,
                                 grid, jax.random.PRNGKey(0), 0.0,
                                 self.config.diffusion.parameterization, clip_x0=s.get("clip_x0"))
        return jnp.clip(x, -1.0, 1.0)

    @property
    def latent_dim(self) -> int:
        return int(np.prod(self.data_shape))
