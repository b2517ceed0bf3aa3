"""Text-to-image latent diffusion (Rombach et al. 2022), a small Stable Diffusion: a frozen
autoencoder maps images to a latent grid, a frozen CLIP text tower maps the prompt to token
features, and a U-Net learns to denoise the (scaled) latents while cross-attending to those
features. Captions are replaced by the empty prompt with probability `p_uncond`, so the one
network is also the unconditional model that classifier-free guidance contrasts against. The
denoising itself (schedule, loss, guidance, samplers) is the core the class-conditional
diffusion objective also composes (`train.denoising`), with the text context as condition.

The state's `params` hold {"unet", "autoencoder", "text", "latent_scale"}: the run's checkpoint
is the whole pipeline, prompt in, image out. Only "unet" is trained (the others get no update
and no gradient); the engine reads them from the autoencoder and CLIP runs this objective
names (`frozen_runs`) when a run starts and hands them to `with_frozen`. `latent_scale`
multiplies the autoencoder's latents so they have unit variance over the training images
(Stable Diffusion's 0.18215, measured here at the start instead of fixed, on the posterior
means; the training draws add the posterior's own noise, 2% more spread on the CPU config).

Config `ldm` fields: autoencoder and text (the full configs of those runs, so this run builds
them without their directories), autoencoder_run and text_run (where their weights are read
from at the start), latent_scale (0: measure it), p_uncond, prompts (the sample grid's).
`model` is the U-Net's, with data_shape the latent grid and context_dim the text width.
"""

import functools

import jax
import jax.numpy as jnp
import numpy as np
import optax
from flax import nnx

from jaxgen import parallel, viz
from jaxgen.data.text import tokenize
from jaxgen.eval import ldm as ldm_eval
from jaxgen.models.vae import reparameterize
from jaxgen.train.clip import CLIPObjective
from jaxgen.train.denoising import Denoising, build_denoiser
from jaxgen.train.objectives import (
    EvalOptions,
    Evaluator,
    FrozenRun,
    Objective,
    PromptToImage,
    Run,
    SampleOptions,
    Sampler,
    UsesFrozenRuns,
)
from jaxgen.train.state import TrainState, gradient_step, make_optimizer
from jaxgen.train.vae import GRID_KINDS, VAEObjective

FROZEN = ("autoencoder", "text", "latent_scale")

# The config entries the frozen parts depend on: the whole autoencoder model (its likelihood
# and binarisation decide what it decodes), and of a CLIP run only the text tower.
AUTOENCODER_SECTIONS = ("model", "compute_dtype")
TEXT_SECTIONS = ("model.text_width", "model.text_depth", "model.text_heads", "model.embed_dim",
                 "data.text_length", "compute_dtype")


class LatentDiffusionObjective(Objective, Sampler, PromptToImage, Evaluator, UsesFrozenRuns):
    example_shape_key = "ldm.autoencoder.model.data_shape"  # the U-Net's data are latents
    sample_options = ("sampler", "steps", "guidance", "interval")

    def __init__(self, config):
        self.config = config
        ldm = config.ldm
        self.autoencoder = VAEObjective(ldm.autoencoder)
        self.clip = CLIPObjective(ldm.text)
        if ldm.autoencoder.model.kind not in GRID_KINDS:
            raise ValueError(f"latent diffusion needs an autoencoder with a latent grid "
                             f"(model.kind one of {GRID_KINDS}), got "
                             f"{ldm.autoencoder.model.kind!r}")
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
        self.denoising = Denoising(config)
        self.data_shape = self.denoising.data_shape
        self.ema_decay = config.ema_decay
        self.graphdef = nnx.graphdef(nnx.eval_shape(lambda: build_denoiser(config,
                                                                           nnx.Rngs(0))))
        self.tx = optax.multi_transform(
            {"train": make_optimizer(config.optim, config.steps), "frozen": optax.set_to_zero()},
            _trained_or_frozen)
        self.empty_tokens = jnp.asarray(tokenize("", self.text_length))
        self._images_of_tokens = jax.jit(self._images_of_tokens_fn,
                                         static_argnames=("sampler", "steps"))

    # The parameter tree: the U-Net trained, the rest frozen.

    def init_state(self, key: jax.Array) -> TrainState:
        init_key, ae_key, text_key, rng = jax.random.split(key, 4)
        unet = nnx.state(build_denoiser(self.config, nnx.Rngs(init_key)),
                         nnx.Param).to_pure_dict()
        autoencoder = nnx.state(self.autoencoder.build(nnx.Rngs(ae_key)),
                                nnx.Param).to_pure_dict()
        text = nnx.state(self.clip.build(nnx.Rngs(text_key)).text, nnx.Param).to_pure_dict()
        params = {"unet": unet, "autoencoder": autoencoder, "text": text,
                  "latent_scale": jnp.ones((), jnp.float32)}
        return TrainState.create(params, self.tx, rng, use_ema=self.ema_decay > 0)

    def frozen_runs(self) -> dict[str, FrozenRun]:
        """The autoencoder run (all of its evaluation parameters) and the CLIP run (its text
        tower), each checked against the config this run was given for it."""
        ldm = self.config.ldm
        return {"autoencoder": FrozenRun("ldm.autoencoder_run", ldm.autoencoder_run,
                                         ldm.autoencoder, "ldm.autoencoder",
                                         AUTOENCODER_SECTIONS),
                "text": FrozenRun("ldm.text_run", ldm.text_run, ldm.text, "ldm.text",
                                  TEXT_SECTIONS, subtree="text")}

    def with_frozen(self, state: TrainState, parts: dict, shardings) -> TrainState:
        """The state with the autoencoder's and text tower's trained weights (their runs' EMA
        weights where they kept one) and the measured latent scale in place of the random
        ones, in `params` and in the EMA alike. Called once, when a run starts."""
        ldm = self.config.ldm
        expected = jax.eval_shape(self.init_state, jax.random.PRNGKey(0)).params
        _check_shapes(parts["autoencoder"], expected["autoencoder"], f"ldm.autoencoder_run "
                      f"{ldm.autoencoder_run}")
        _check_shapes(parts["text"], expected["text"], f"ldm.text_run {ldm.text_run}")
        scale = ldm.latent_scale or self.autoencoder.latent_scale(
            parts["autoencoder"], self.config.data, self.config.seed)
        frozen = {"autoencoder": parts["autoencoder"], "text": parts["text"],
                  "latent_scale": np.asarray(scale, np.float32)}
        # Only the frozen parts travel from the host: the U-Net and its optimizer state stay
        # where they are (with fsdp on many hosts, no process holds all of them).
        # The EMA gets buffers of its own: the step donates the state, and one buffer donated
        # twice is undefined behaviour.
        def place():
            return jax.tree.map(_place, frozen, {k: shardings.params[k] for k in FROZEN})

        ema = None if state.ema_params is None else {**state.ema_params, **place()}
        return state.replace(params={**state.params, **place()}, ema_params=ema)

    def step(self, state: TrainState, batch, key: jax.Array):
        new_state, metrics = gradient_step(state, self.loss, batch, key, self.tx,
                                           self.ema_decay)
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
        network = self.denoising.network(self.graphdef, params["unet"], dropout_key)
        return lambda x, t, context: network(x, t, None, context)

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
        return self.denoising.loss(lambda x, t: fn(x, t, context), latents, t_key, noise_key)

    # Sampling: prompt tokens in, images out.

    def check_sampler(self, name: str) -> None:
        self.denoising.check_sampler(name)

    def _guided_fn(self, params, context, guidance, interval):
        """The sampler's `fn(x, t)` for token features `context` (None: the empty prompt's),
        guided against the empty prompt when `guidance` is set."""
        fn = self.denoiser(params)

        def broadcast_fn(x, t, condition):  # one context serves the whole batch
            return fn(x, t, jnp.broadcast_to(condition, (x.shape[0], *condition.shape[1:])))

        if context is None:
            context = self.context(params, self.empty_tokens)
        null = None
        if guidance is not None:
            null = jnp.broadcast_to(self.context(params, self.empty_tokens), context.shape)
        return self.denoising.guided(broadcast_fn, context, null, guidance, interval)

    def generate(self, params, x_T, key, context=None, guidance=None, interval=None, *,
                 sampler=None, steps=None):
        """Latents from noise x_T [B, *latent_shape] for token features `context`."""
        return self.denoising.sample(self._guided_fn(params, context, guidance, interval), x_T,
                                     key, sampler, steps)

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

    def draw(self, params, key: jax.Array, num: int, options: SampleOptions, mesh):
        """`sample` with the options' sampler, steps, guidance and interval."""
        del mesh
        self.check_options(options)
        sampler, steps, guidance, interval = self.denoising.settings(
            options.sampler, options.steps, options.guidance, options.interval)
        tokens = self.prompt_tokens(tuple(self.config.ldm.prompts), num)
        generate = jax.jit(self.generate_images, static_argnames=("sampler", "steps"))
        return generate(params, tokens, key, guidance, interval, sampler=sampler,
                        steps=steps), None

    def _images_of_tokens_fn(self, params, tokens, keys, guidance, interval, *, sampler, steps):
        """Images [B, H, W, C] for tokens [B, T], each drawn from its own key."""

        def one(token_row, key):
            return self.generate_images(params, token_row[None], key, guidance, interval,
                                        sampler=sampler, steps=steps)[0]

        return jax.vmap(one)(tokens, keys)

    def text_to_image(self, params, mesh, prompts, num: int | None = None, *, guidance=None,
                      interval=None, seed: int = 0, sampler=None, steps=None,
                      batch_size: int = 64) -> np.ndarray:
        """uint8 images [num, H, W, C] of `prompts` (a string, or a list taken in turn; num
        defaults to one per prompt), each image's noise from (seed, its index), in chunks of
        `batch_size` sharded over `mesh` when its size divides the chunk. guidance: w, cond +
        w (cond - uncond) against the empty prompt (default: `sample.guidance`)."""
        prompts = [prompts] if isinstance(prompts, str) else list(prompts)
        if not prompts:
            raise ValueError("give at least one prompt")
        num = len(prompts) if num is None else num
        if num < 1:
            raise ValueError(f"num must be at least 1, got {num}")
        sampler, steps, guidance, interval = self.denoising.settings(sampler, steps, guidance,
                                                                     interval)
        if interval is not None:
            interval = jnp.asarray(interval, jnp.float32)
        tokens = self.prompt_tokens(prompts, num)
        keys = jax.vmap(lambda i: jax.random.fold_in(jax.random.PRNGKey(seed), i))(
            jnp.arange(num))
        images = []
        for i in range(0, num, batch_size):
            chunk = (tokens[i:i + batch_size], keys[i:i + batch_size])
            if len(chunk[0]) % mesh.size == 0:  # sharded over the batch
                chunk = jax.device_put(chunk, parallel.batch_sharding(mesh))
            images.append(np.asarray(self._images_of_tokens(params, *chunk, guidance, interval,
                                                            sampler=sampler, steps=steps)))
        return viz.to_uint8(np.concatenate(images))

    def evaluation_runs(self) -> dict[str, FrozenRun]:
        """The whole CLIP run whose text tower conditions this one (its image tower too), for
        the CLIP score of `evaluate`."""
        ldm = self.config.ldm
        return {"clip": FrozenRun("ldm.text_run", ldm.text_run, ldm.text, "ldm.text",
                                  TEXT_SECTIONS)}

    def clip_embeddings(self, clip_params, images, tokens) -> tuple[jax.Array, jax.Array]:
        """(image embeddings, caption embeddings) [N, embed_dim] by the CLIP run's towers, of
        images [N, H, W, C] in [-1, 1] and byte tokens [N, T]."""
        return (self.clip.embed_images(clip_params, images),
                self.clip.embed_texts(clip_params, tokens))

    def evaluate(self, run: Run, options: EvalOptions) -> dict:
        """Prompt following per guidance scale (`jaxgen.eval.ldm`), with the CLIP score by the
        CLIP run's own towers where that run is there."""
        clip_params = (options.frozen or {}).get("clip")
        clip_embed = None
        if clip_params is not None:
            embed = jax.jit(self.clip_embeddings)

            def clip_embed(images, prompts):
                tokens = jnp.asarray(tokenize(list(prompts), self.text_length))
                return embed(clip_params, jnp.asarray(images), tokens)

        return ldm_eval.evaluate_run(
            run, options, functools.partial(self.text_to_image, run.params, run.mesh),
            clip_embed=clip_embed)


def _trained_or_frozen(params: dict) -> dict:
    """optax.multi_transform's labels: "frozen" for the FROZEN parts, "train" for the U-Net."""

    def label(name, subtree):
        tag = "frozen" if name in FROZEN else "train"
        return jax.tree.map(lambda _: tag, subtree)

    return {name: label(name, subtree) for name, subtree in params.items()}


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


def _place(x, sharding):
    x = np.asarray(x)
    return jax.make_array_from_callback(x.shape, sharding, lambda index: x[index])
