"""The diffusion objective: a denoiser (U-Net or DiT) conditioned on class labels, trained and
sampled through the shared denoising core (`train.denoising`: schedule, loss, guidance,
samplers), with classifier-free guidance against the null class.

Config: `model` as `denoising.build_denoiser` reads it, `diffusion` and `sample` as the core
reads them, and `diffusion.p_uncond`: the probability of dropping a label to the null class
during training, so one network is both the conditional and the unconditional model (CFG).
"""

import jax
import jax.numpy as jnp
import numpy as np
from flax import nnx

from jaxgen import parallel
from jaxgen.eval import diffusion as diffusion_eval
from jaxgen.train import state as state_lib
from jaxgen.train.denoising import Denoising, build_denoiser
from jaxgen.train.objectives import (
    Encoder,
    EvalOptions,
    Evaluator,
    Objective,
    Run,
    SampleOptions,
    Sampler,
)
from jaxgen.train.state import TrainState, gradient_step, make_optimizer


class DiffusionObjective(Objective, Sampler, Encoder, Evaluator):
    """Config `model` fields: see `denoising.build_denoiser`; num_classes 0 is unconditional."""

    sample_options = ("sampler", "steps", "guidance", "interval", "labels")
    walk_tour = {"anchors": 4, "steps_between": 8, "grid": 4}  # each frame a sampler run

    def __init__(self, config):
        self.config = config
        self.denoising = Denoising(config)
        if not 0.0 <= config.diffusion.p_uncond < 1.0:
            raise ValueError(f"diffusion.p_uncond must be in [0, 1), got "
                             f"{config.diffusion.p_uncond}")
        self.num_classes = config.model.num_classes
        self.data_shape = self.denoising.data_shape
        self.tx = make_optimizer(config.optim, config.steps)
        self.ema_decay = config.ema_decay
        self.graphdef = nnx.graphdef(nnx.eval_shape(lambda: self.build(nnx.Rngs(0))))

    def build(self, rngs: nnx.Rngs):
        return build_denoiser(self.config, rngs)

    def init_state(self, key: jax.Array) -> TrainState:
        return state_lib.init_state(self.build, self.tx, self.ema_decay, key)

    def denoiser(self, params, dropout_key=None):
        """`fn(x, t, labels) -> prediction`, t the sampler's time (timestep or flow time)."""
        return self.denoising.network(self.graphdef, params, dropout_key)

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
        return self.denoising.loss(lambda x, t: fn(x, t, labels), batch["image"], t_key,
                                   noise_key)

    def step(self, state: TrainState, batch, key: jax.Array):
        return gradient_step(state, self.loss, batch, key, self.tx, self.ema_decay)

    # Sampling.

    def check_sampler(self, name: str) -> None:
        self.denoising.check_sampler(name)

    def default_labels(self, num: int):
        """Classes 0, 1, ..., K-1, 0, 1, ... (a grid shows one class per column), or None."""
        return jnp.arange(num) % self.num_classes if self.num_classes else None

    def _guided_fn(self, params, labels, guidance, interval):
        null = None
        if guidance is not None:
            if not self.num_classes or labels is None:
                raise ValueError("guidance needs a class-conditional model (model.num_classes "
                                 "> 0) and the labels to guide toward")
            null = jnp.full_like(labels, self.num_classes)
        return self.denoising.guided(self.denoiser(params), labels, null, guidance, interval)

    def generate(self, params, x_T, key, labels=None, guidance=None, interval=None, *,
                 sampler=None, steps=None):
        """Samples from noise x_T [B, H, W, C] with `labels` [B] (None: the null class or an
        unconditional model). `guidance` (w) and `interval` may be traced; `sampler` and
        `steps` are static (default: the config's)."""
        return self.denoising.sample(self._guided_fn(params, labels, guidance, interval), x_T,
                                     key, sampler, steps)

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

    def draw(self, params, key: jax.Array, num: int, options: SampleOptions, mesh):
        """`num` images with the options' sampler, steps, guidance, interval and classes
        (cycled to `num`; default 0, 1, ..., K-1 in turn), sharded over `mesh` when its size
        divides `num`. Returns (images, classes or None)."""
        self.check_options(options)
        sampler, steps, guidance, interval = self.denoising.settings(
            options.sampler, options.steps, options.guidance, options.interval)
        labels = None
        if self.num_classes:
            if options.labels:
                wanted = np.array(options.labels, np.int32)
                if wanted.min() < 0 or wanted.max() >= self.num_classes:
                    raise ValueError(f"--labels must lie in [0, {self.num_classes}), got "
                                     f"{','.join(map(str, options.labels))}")
                labels = np.resize(wanted, num)  # cycled: one class per grid column
            else:
                labels = np.asarray(self.default_labels(num))
        elif options.labels or options.guidance:
            raise ValueError("--labels and --guidance need a class-conditional run "
                             "(model.num_classes > 0); this one is unconditional")
        guidance = guidance if labels is not None else None
        noise_key, sampler_key = jax.random.split(key)
        x_T = jax.random.normal(noise_key, (num, *self.data_shape))
        if num % mesh.size == 0:  # sampling is sharded over the batch
            x_T = jax.device_put(x_T, parallel.batch_sharding(mesh))
        generate = jax.jit(self.generate, static_argnames=("sampler", "steps"))
        images = generate(params, x_T, sampler_key,
                          None if labels is None else jnp.asarray(labels), guidance, interval,
                          sampler=sampler, steps=steps)
        return np.clip(np.asarray(images), -1.0, 1.0), labels

    # The latent toolkit: deterministic inversion makes the noise a code of the image.

    @property
    def latent_dim(self) -> int:
        return int(np.prod(self.data_shape))

    def encode(self, params, images: jax.Array) -> tuple[jax.Array, None]:
        """Flattened noise [B, H*W*C] that the deterministic sampler (unconditional) maps back
        to `images`: DDIM inversion, or the flow ODE run from t = 0 to 1."""
        noise = self.denoising.invert(self._guided_fn(params, None, None, None), images)
        return noise.reshape(noise.shape[0], -1), None

    def decode(self, params, z: jax.Array) -> jax.Array:
        """Images from flattened noise codes, with the deterministic sampler (DDIM at eta 0,
        or the flow ODE) and no condition."""
        x_T = z.reshape(z.shape[0], *self.data_shape)
        x = self.denoising.deterministic(self._guided_fn(params, None, None, None), x_T)
        return jnp.clip(x, -1.0, 1.0)

    def evaluate(self, run: Run, options: EvalOptions) -> dict:
        """Class accuracy and feature Frechet distance per guidance scale
        (`jaxgen.eval.diffusion`)."""
        return diffusion_eval.evaluate_run(run, options)
