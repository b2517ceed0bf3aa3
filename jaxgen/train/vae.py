"""The VAE objective: its model from the config, its pure step, sampling and evaluation."""

import jax
import jax.numpy as jnp
import numpy as np
from flax import nnx

from jaxgen import data, losses
from jaxgen.eval import vae as vae_eval
from jaxgen.models import KLVAE, ConvVAE, MlpVAE, SpatialVAE
from jaxgen.models.layers import use_attention
from jaxgen.train import state as state_lib
from jaxgen.train.objectives import Encoder, EvalOptions, Evaluator, Objective, Run, Sampler
from jaxgen.train.state import (
    TrainState,
    attention_kernel,
    compute_dtype,
    gradient_step,
    make_optimizer,
)

KINDS = ("conv", "mlp", "spatial", "kl")
GRID_KINDS = ("spatial", "kl")  # latent grids, which latent diffusion can denoise
SCALE_IMAGES = 1000  # training images whose latents set `latent_scale`


def binarize(key: jax.Array, images: jax.Array) -> jax.Array:
    """Dynamic binarisation: pixels in [-1, 1] become Bernoulli draws with p = (x + 1) / 2."""
    return jax.random.bernoulli(key, (images + 1.0) / 2.0).astype(jnp.float32)


class VAEObjective(Objective, Sampler, Encoder, Evaluator):
    """Config `model` fields: kind ("conv" | "mlp" | "spatial" | "kl"), data_shape,
    latent_dim, channels, hidden, mlp_hidden, likelihood ("bernoulli" | "gaussian"), beta,
    binarize (dynamic binarisation for the Bernoulli likelihood). The two latent-grid kinds
    (autoencoders of latent diffusion) read latent_channels instead of latent_dim: "spatial"
    (jaxgen's own) and "kl" (Stable Diffusion's AutoencoderKL, which also reads
    layers_per_block and norm_groups, and exports to diffusers).
    """

    def __init__(self, config):
        self.config = config
        model = config.model
        self.likelihood = model.likelihood
        self.binarize = model.likelihood == "bernoulli" and model.binarize
        self.beta = model.beta
        self.tx = make_optimizer(config.optim, config.steps)
        self.ema_decay = config.ema_decay
        abstract = nnx.eval_shape(lambda: self.build(nnx.Rngs(0)))
        self.graphdef = nnx.graphdef(abstract)
        self._latent_dim = abstract.latent_dim
        self.latent_shape = getattr(abstract, "latent_shape", (abstract.latent_dim,))

    def build(self, rngs: nnx.Rngs):
        model = self.config.model
        common = dict(
            data_shape=tuple(model.data_shape),
            likelihood=model.likelihood,
            dtype=compute_dtype(self.config.compute_dtype),
            rngs=rngs,
        )
        if model.kind == "spatial":
            return SpatialVAE(latent_channels=model.latent_channels,
                              channels=tuple(model.channels), **common)
        if model.kind == "kl":
            return use_attention(
                KLVAE(latent_channels=model.latent_channels, channels=tuple(model.channels),
                      layers_per_block=model.layers_per_block, norm_groups=model.norm_groups,
                      **common), attention_kernel(self.config))
        common["latent_dim"] = model.latent_dim
        if model.kind == "conv":
            return ConvVAE(channels=tuple(model.channels), hidden=model.hidden, **common)
        if model.kind == "mlp":
            return MlpVAE(hidden=tuple(model.mlp_hidden), **common)
        raise ValueError(f"model.kind must be one of {KINDS}, got {model.kind!r}")

    @property
    def latent_dim(self) -> int:
        """The size of a flat latent (a spatial VAE's grid, flattened)."""
        return self._latent_dim

    def model(self, params):
        return nnx.merge(self.graphdef, params)

    def init_state(self, key: jax.Array) -> TrainState:
        return state_lib.init_state(self.build, self.tx, self.ema_decay, key)

    def prepare(self, key: jax.Array, images: jax.Array) -> tuple[jax.Array, jax.Array]:
        """(encoder inputs, likelihood targets) for a batch of data in [-1, 1].

        Bernoulli: targets are binarised (a fresh draw per call) or [0, 1] pixels, and the
        encoder sees the same binary digit rescaled to {-1, 1}, as in the binarised-MNIST
        literature, so reported bounds are comparable. Gaussian: both are the data itself.
        """
        if self.likelihood == "gaussian":
            return images, images
        if not self.binarize:
            return images, (images + 1.0) / 2.0
        targets = binarize(key, images)
        return 2.0 * targets - 1.0, targets

    def log_likelihood(self, model, outputs: jax.Array, targets: jax.Array) -> jax.Array:
        if self.likelihood == "gaussian":
            return losses.gaussian_log_likelihood(targets, outputs, model.log_scale[...])
        return losses.bernoulli_log_likelihood(outputs, targets)

    def loss(self, params, batch, key):
        data_key, z_key = jax.random.split(key)
        model = self.model(params)
        inputs, targets = self.prepare(data_key, batch["image"])
        outputs, mean, log_var, _ = model(inputs, z_key)
        log_likelihood = self.log_likelihood(model, outputs, targets)
        loss, aux = losses.elbo_loss(log_likelihood, losses.gaussian_kl(mean, log_var), self.beta)
        return loss, {k: jnp.mean(v) for k, v in aux.items()}

    def step(self, state: TrainState, batch, key: jax.Array):
        return gradient_step(state, self.loss, batch, key, self.tx, self.ema_decay)

    def sample(self, params, key: jax.Array, num: int) -> jax.Array:
        """`num` images from the prior, as means in [-1, 1] (sigmoid of logits, rescaled)."""
        z = jax.random.normal(key, (num, self.latent_dim))
        return self.decode(params, z)

    def encode(self, params, images: jax.Array) -> tuple[jax.Array, jax.Array]:
        return self.model(params).encode(images)

    def decode(self, params, z: jax.Array) -> jax.Array:
        """Decoder means mapped to the data range: [-1, 1] for images."""
        outputs = self.model(params).decode(z)
        if self.likelihood == "bernoulli":
            return 2.0 * jax.nn.sigmoid(outputs) - 1.0
        return outputs

    def latent_scale(self, params, data_config, seed: int) -> float:
        """1 / the standard deviation of the posterior means over the first SCALE_IMAGES
        training images of `data_config`: the factor (Stable Diffusion's `scaling_factor`)
        that brings latents to about unit variance for a denoiser."""
        _, images, _ = data.load_arrays(data_config.name, "train", seed=seed,
                                        data_dir=data_config.data_dir)
        encode = jax.jit(lambda x: self.encode(params, x)[0])
        means = np.concatenate([np.asarray(encode(images[i:i + 250]))
                                for i in range(0, min(len(images), SCALE_IMAGES), 250)])
        return float(1.0 / means.std())

    def evaluate(self, run: Run, options: EvalOptions) -> dict:
        """The test split's mean ELBO and IWAE NLL (`jaxgen.eval.vae`)."""
        return vae_eval.evaluate_run(run, options)
