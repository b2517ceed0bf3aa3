"""Text-to-image latent diffusion (Rombach et al. 2022), a small Stable Diffusion: a frozen
autoencoder maps images to a latent grid, a frozen CLIP text tower maps the prompt to token
features, and a U-Net learns to denoise the (scaled) latents while cross-attending to those
features. Captions are replaced by the empty prompt with probability `p_uncond`, so the one
network is also the unconditional model that classifier-free guidance contrasts against.

The state's `params` hold {"unet", "autoencoder", "text", "latent_scale"}: the run's checkpoint
is the whole pipeline, prompt in, image out. Only "unet" is trained (the others get no update
and no gradient); they are loaded from the autoencoder and CLIP runs named in `ldm` when a run
starts. `latent_scale` multiplies the autoencoder's latents so they have unit variance over the
training images (Stable Diffusion's 0.18215, measured here at the start instead of fixed, on
the posterior means; the training draws add the posterior's own noise, 2% more spread on the CPU
config).

Config `ldm` fields: autoencoder and text (the full configs of those runs, so this run builds
them without their directories), autoencoder_run and text_run (where their weights are read
from at the start), latent_scale (0: measure it), p_uncond, prompts (the sample grid's).
`model` is the U-Net's, with data_shape the latent grid and context_dim the text width.
"""

import json
from pathlib import Path

import jax
import jax.numpy as jnp
import numpy as np
import optax
from flax import nnx

from jaxgen import data
from jaxgen.data.text import tokenize
from jaxgen.models.vae import reparameterize
from jaxgen.sample import diffusion as samplers
from jaxgen.train.clip import CLIPObjective
from jaxgen.train.diffusion import FLOW_TIME_SCALE, DiffusionObjective
from jaxgen.train.state import TrainState, make_optimizer
from jaxgen.train.vae import VAEObjective

FROZEN = ("autoencoder", "text", "latent_scale")
SCALE_IMAGES = 1000  # training images whose latents set `latent_scale`


class LatentDiffusionObjective(DiffusionObjective):
    progress_metrics = ("loss",)

    def __init__(self, config):
        ldm = config.ldm
        self.autoencoder = VAEObjective(ldm.autoencoder)
        self.clip = CLIPObjective(ldm.text)
        if ldm.autoencoder.model.kind != "spatial":
            raise ValueError("latent diffusion needs a spatial autoencoder (model.kind "
                             f"'spatial'), got {ldm.autoencoder.model.kind!r}")
        latent_shape = tuple(self.autoencoder.latent_shape)
        if tuple(config.model.data_shape) != latent_shape:
            raise ValueError(f"model.data_shape must be the autoencoder's latent grid "
                             f"{latent_shape}, got {tuple(config.model.data_shape)}")
        if config.model.context_dim != ldm.text.model.text_width:
            raise ValueError(f"model.context_dim must be the text tower's width "
                             f"{ldm.text.model.text_width}, got {config.model.context_dim}")
        if config.model.num_classes:
            raise ValueError("a text-conditioned U-Net takes no class labels: set "
                             "model.num_classes=0")
        self.text_length = self.clip.text_length
        if config.data.get("text_length", 0) != self.text_length:
            raise ValueError(f"data.text_length must be the text tower's context "
                             f"{self.text_length}, got {config.data.get('text_length', 0)}")
        if not 0.0 <= ldm.p_uncond < 1.0:
            raise ValueError(f"ldm.p_uncond must be in [0, 1), got {ldm.p_uncond}")
        if self.autoencoder.binarize:
            raise ValueError("latent diffusion encodes grey levels, but this autoencoder is "
                             "trained on binarised digits: set ldm.autoencoder.model.binarize="
                             "False (and train it so)")
        if not ldm.prompts:
            raise ValueError("ldm.prompts (the sample grid's prompts) is empty")
        self.text_graphdef = nnx.graphdef(nnx.eval_shape(
            lambda: self.clip.build(nnx.Rngs(0))).text)
        super().__init__(config)
        self.tx = optax.multi_transform(
            {"train": make_optimizer(config.optim, config.steps), "frozen": optax.set_to_zero()},
            _trained_or_frozen)
        self.empty_tokens = jnp.asarray(tokenize("", self.text_length))

    # The parameter tree: the U-Net trained, the rest frozen.

    def init_state(self, key: jax.Array) -> TrainState:
        init_key, ae_key, text_key, rng = jax.random.split(key, 4)
        unet = nnx.state(self.build(nnx.Rngs(init_key))).to_pure_dict()
        autoencoder = nnx.state(self.autoencoder.build(nnx.Rngs(ae_key))).to_pure_dict()
        text = nnx.state(self.clip.build(nnx.Rngs(text_key)).text).to_pure_dict()
        params = {"unet": unet, "autoencoder": autoencoder, "text": text,
                  "latent_scale": jnp.ones((), jnp.float32)}
        return TrainState.create(params, self.tx, rng, use_ema=self.ema_decay > 0)

    def load_pretrained(self, state: TrainState, shardings) -> TrainState:
        """The state with the autoencoder's and text tower's trained weights (their runs' EMA
        weights where they kept one) and the measured latent scale in place of the random
        ones, in `params` and in the EMA alike. Called once, when a run starts."""
        from jaxgen.train.run import load_run

        ldm = self.config.ldm
        autoencoder = _load_matching(load_run, ldm.autoencoder_run, ldm.autoencoder,
                                     "autoencoder", AUTOENCODER_SECTIONS)
        text = _load_matching(load_run, ldm.text_run, ldm.text, "text", TEXT_SECTIONS)["text"]
        expected = jax.eval_shape(self.init_state, jax.random.PRNGKey(0)).params
        _check_shapes(autoencoder, expected["autoencoder"], f"ldm.autoencoder_run "
                      f"{ldm.autoencoder_run}")
        _check_shapes(text, expected["text"], f"ldm.text_run {ldm.text_run}")
        scale = ldm.latent_scale or self.measure_latent_scale(autoencoder)
        frozen = {"autoencoder": autoencoder, "text": text,
                  "latent_scale": np.asarray(scale, np.float32)}
        # Only the frozen parts travel from the host: the U-Net and its optimizer state stay
        # where they are (with fsdp on many hosts, no process holds all of them).
        # The EMA gets buffers of its own: the step donates the state, and one buffer donated
        # twice is undefined behaviour.
        def place():
            return jax.tree.map(_place, frozen, {k: shardings.params[k] for k in FROZEN})

        ema = None if state.ema_params is None else {**state.ema_params, **place()}
        return state.replace(params={**state.params, **place()}, ema_params=ema)

    def measure_latent_scale(self, autoencoder_params) -> float:
        """1 / the standard deviation of the autoencoder's posterior means over the first
        SCALE_IMAGES training images."""
        _, images, _ = data.load_arrays(self.config.data.name, "train", seed=self.config.seed,
                                        data_dir=self.config.data.data_dir)
        encode = jax.jit(lambda x: self.autoencoder.encode(autoencoder_params, x)[0])
        means = np.concatenate([np.asarray(encode(images[i:i + 250]))
                                for i in range(0, min(len(images), SCALE_IMAGES), 250)])
        return float(1.0 / means.std())

    def step(self, state: TrainState, batch, key: jax.Array):
        new_state, metrics = super().step(state, batch, key)
        if new_state.ema_params is not None:  # the frozen parts, exactly as they were
            new_state = new_state.replace(ema_params={
                **new_state.ema_params, **{k: state.ema_params[k] for k in FROZEN}})
        return new_state, metrics

    # The pipeline's pieces, each a function of the parameter tree.

    def encode_images(self, params, images, key):
        """Scaled latents [B, *latent_shape]: a draw from the autoencoder's posterior."""
        model = self.autoencoder.model(params["autoencoder"])
        mean, log_var = model.encode_grid(images)
        return reparameterize(key, mean, log_var) * params["latent_scale"]

    def decode_latents(self, params, latents) -> jax.Array:
        """Images in [-1, 1] from scaled latents (the decoder's means)."""
        flat = (latents / params["latent_scale"]).reshape(latents.shape[0], -1)
        return jnp.clip(self.autoencoder.decode(params["autoencoder"], flat), -1.0, 1.0)

    def context(self, params, tokens) -> jax.Array:
        """The text tower's token features [B, T, width] of byte tokens [B, T]."""
        return nnx.merge(self.text_graphdef, params["text"])(tokens)[1]

    def denoiser(self, params, dropout_key=None):
        """`fn(x, t, context) -> prediction` on latents, from the full parameter tree."""
        model = nnx.merge(self.graphdef, params["unet"])
        scale = FLOW_TIME_SCALE if self.flow else 1.0
        return lambda x, t, context: model(x, scale * jnp.asarray(t, jnp.float32), None,
                                           context, dropout_key=dropout_key)

    def loss(self, params, batch, key):
        if "text" not in batch:
            raise ValueError("latent diffusion trains on captions: set data.text_length")
        frozen = jax.lax.stop_gradient({k: params[k] for k in FROZEN})
        params = {**params, **frozen}
        t_key, noise_key, latent_key, drop_key, dropout_key = jax.random.split(key, 5)
        latents = self.encode_images(params, batch["image"], latent_key)
        drop = jax.random.bernoulli(drop_key, self.config.ldm.p_uncond, (latents.shape[0], 1))
        tokens = jnp.where(drop, self.empty_tokens, batch["text"])
        context = self.context(params, tokens)
        fn = self.denoiser(params, dropout_key if self.config.model.dropout else None)
        return self.denoising_loss(lambda x, t: fn(x, t, context), latents, t_key, noise_key)

    # Sampling: prompt tokens in, images out.

    def _guided_fn(self, params, context, guidance, interval):
        fn = self.denoiser(params)
        if context is None:
            context = self.context(params, self.empty_tokens)
        if guidance is None:
            return lambda x, t: fn(x, t, jnp.broadcast_to(context, (x.shape[0],
                                                                    *context.shape[1:])))
        null = jnp.broadcast_to(self.context(params, self.empty_tokens), context.shape)
        interval = (0.0, jnp.inf) if interval is None else (interval[0], interval[1])
        return samplers.guided(fn, context, null, guidance, self.noise_level, interval)

    def generate_images(self, params, tokens, key, guidance=None, interval=None, *,
                        sampler=None, steps=None):
        """Images [B, H, W, C] in [-1, 1] for prompt tokens [B, T]; `guidance` (w) and
        `interval` may be traced, `sampler` and `steps` are static."""
        noise_key, sampler_key = jax.random.split(key)
        x_T = jax.random.normal(noise_key, (tokens.shape[0], *self.data_shape))
        latents = self.generate(params, x_T, sampler_key, self.context(params, tokens),
                                guidance, interval, sampler=sampler, steps=steps)
        return self.decode_latents(params, latents)

    def prompt_tokens(self, prompts, num: int) -> jax.Array:
        """Tokens [num, T] of `prompts` repeated in turn."""
        prompts = [prompts] if isinstance(prompts, str) else list(prompts)
        room = self.text_length - 2  # BOS and EOS
        for prompt in prompts:
            if len(prompt.encode("utf-8")) > room:
                raise ValueError(f"prompt {prompt!r} is {len(prompt.encode('utf-8'))} bytes; the "
                                 f"text tower reads at most {room}")
        return jnp.asarray(tokenize([prompts[i % len(prompts)] for i in range(num)],
                                    self.text_length))

    def sample(self, params, key: jax.Array, num: int) -> jax.Array:
        """`num` images of the config's prompts in turn (`ldm.prompts`), with its guidance."""
        tokens = self.prompt_tokens(tuple(self.config.ldm.prompts), num)
        return self.generate_images(params, tokens, key, self.config.sample.guidance,
                                    self.config.sample.guidance_interval)

    def default_labels(self, num: int):
        return None

    def encode(self, params, images):
        raise NotImplementedError("latent walks of latent diffusion runs are not supported yet")

    decode = encode

    @property
    def latent_dim(self) -> int:
        return int(np.prod(self.data_shape))


def _trained_or_frozen(params: dict) -> dict:
    """optax.multi_transform's labels: "frozen" for the FROZEN parts, "train" for the U-Net."""

    def label(name, subtree):
        tag = "frozen" if name in FROZEN else "train"
        return jax.tree.map(lambda _: tag, subtree)

    return {name: label(name, subtree) for name, subtree in params.items()}


# The config entries the frozen parts depend on: the whole autoencoder model (its likelihood
# and binarisation decide what it decodes), and of a CLIP run only the text tower.
AUTOENCODER_SECTIONS = ("model", "compute_dtype")
TEXT_SECTIONS = ("model.text_width", "model.text_depth", "model.text_heads", "model.embed_dim",
                 "data.text_length", "compute_dtype")


def _entry(config: dict, dotted: str):
    for key in dotted.split("."):
        config = config.get(key) if isinstance(config, dict) else None
    return config


def _check_shapes(loaded, expected, where: str) -> None:
    got = jax.tree_util.tree_flatten_with_path(loaded)[0]
    want = dict(jax.tree_util.tree_flatten_with_path(expected)[0])
    if len(got) != len(want) or any(path not in want for path, _ in got):
        raise ValueError(f"{where}: its parameters do not have this config's structure")
    for path, leaf in got:
        if tuple(np.shape(leaf)) != tuple(want[path].shape):
            raise ValueError(f"{where}: {jax.tree_util.keystr(path)} has shape "
                             f"{tuple(np.shape(leaf))}, this config expects "
                             f"{tuple(want[path].shape)}")


def _load_matching(load_run, run_dir, expected, what: str, sections):
    """A run's evaluation parameters, after checking it was trained with `expected`'s
    `sections` (dotted config entries)."""
    run_dir = Path(run_dir)
    config_path = run_dir / "config.json"
    if not config_path.exists():
        raise FileNotFoundError(
            f"ldm.{what}_run: {run_dir} is not a training run (no config.json); train the "
            f"{what} first (see experiments/ldm_mnist5k.py) or point "
            f"--set ldm.{what}_run=DIR at one.")
    saved = json.loads(config_path.read_text())
    want = json.loads(expected.to_json())
    for section in sections:
        if _entry(saved, section) != _entry(want, section):
            raise ValueError(
                f"ldm.{what}_run: {run_dir} was trained with {section} "
                f"{_entry(saved, section)} but this run's ldm.{what}.{section} is "
                f"{_entry(want, section)}; make them match.")
    return jax.device_get(load_run(run_dir).state.eval_params)


def _place(x, sharding):
    x = np.asarray(x)
    return jax.make_array_from_callback(x.shape, sharding, lambda index: x[index])
