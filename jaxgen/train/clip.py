"""The CLIP objective: a text tower and an image tower trained so that each image's embedding
is nearest its own caption's among the global batch (CLIP's symmetric InfoNCE, or SigLIP's
pairwise sigmoid).

The batch carries `text` tokens (set `data.text_length`); the loss sees the whole global batch:
under the engine's jit the batch is sharded over devices and GSPMD gathers the embeddings the
[B, B] similarity matrix needs, so training on 8 devices is training on one (tested).

Config `model` fields: data_shape, embed_dim, loss ("clip" | "siglip"), text_width,
text_depth, text_heads, image_channels. The text tower's context is `data.text_length`.
"""

import jax
import jax.numpy as jnp
from flax import nnx

from jaxgen import losses
from jaxgen.eval import clip as clip_eval
from jaxgen.models.clip import CLIP, ImageEncoder, TextEncoder
from jaxgen.models.layers import use_attention
from jaxgen.train import state as state_lib
from jaxgen.train.objectives import EvalOptions, Evaluator, Objective, Run
from jaxgen.train.state import (
    TrainState,
    attention_kernel,
    compute_dtype,
    gradient_step,
    make_optimizer,
)


class CLIPObjective(Objective, Evaluator):
    progress_metrics = ("loss", "image_to_text_accuracy")

    def __init__(self, config):
        self.config = config
        m = config.model
        if m.loss not in ("clip", "siglip"):
            raise ValueError(f"model.loss must be 'clip' or 'siglip', got {m.loss!r}")
        self.text_length = config.data.get("text_length", 0)
        if self.text_length < 3:
            raise ValueError("a CLIP run trains on captions: set data.text_length (at least 3 "
                             f"tokens: BOS, a byte, EOS), got {self.text_length}")
        self.data_shape = tuple(m.data_shape)
        self.tx = make_optimizer(config.optim, config.steps)
        self.ema_decay = config.ema_decay
        self.graphdef = nnx.graphdef(nnx.eval_shape(lambda: self.build(nnx.Rngs(0))))

    def build(self, rngs: nnx.Rngs) -> CLIP:
        m, dtype = self.config.model, compute_dtype(self.config.compute_dtype)
        text = TextEncoder(width=m.text_width, depth=m.text_depth, num_heads=m.text_heads,
                           max_length=self.text_length, embed_dim=m.embed_dim, dtype=dtype,
                           rngs=rngs)
        image = ImageEncoder(in_channels=self.data_shape[-1], channels=tuple(m.image_channels),
                             embed_dim=m.embed_dim, dtype=dtype, rngs=rngs)
        return use_attention(CLIP(text, image, loss=m.loss), attention_kernel(self.config))

    def model(self, params) -> CLIP:
        return nnx.merge(self.graphdef, params)

    def init_state(self, key: jax.Array) -> TrainState:
        return state_lib.init_state(self.build, self.tx, self.ema_decay, key)

    def loss(self, params, batch, key):
        del key  # deterministic towers
        if "text" not in batch:
            raise ValueError("the CLIP objective needs captions in the batch: set "
                             "data.text_length > 0")
        model = self.model(params)
        image_embeddings, text_embeddings = model(batch["image"], batch["text"])
        if self.config.model.loss == "siglip":
            return losses.siglip_loss(image_embeddings, text_embeddings, model.log_scale[...],
                                      model.bias[...])
        return losses.clip_loss(image_embeddings, text_embeddings, model.log_scale[...])

    def step(self, state: TrainState, batch, key: jax.Array):
        return gradient_step(state, self.loss, batch, key, self.tx, self.ema_decay)

    # Inference: the shared space and the probe features.

    def embed_images(self, params, images: jax.Array) -> jax.Array:
        """Unit-norm image embeddings [B, embed_dim]."""
        return _unit(self.model(params).image(images))

    def embed_texts(self, params, tokens: jax.Array) -> jax.Array:
        """Unit-norm caption embeddings [B, embed_dim] of byte tokens [B, T]."""
        return _unit(self.model(params).text(tokens)[0])

    def text_features(self, params, tokens: jax.Array) -> jax.Array:
        """Per-token features [B, T, text_width] (what a denoiser cross-attends to)."""
        return self.model(params).text(tokens)[1]

    def image_features(self, params, images: jax.Array) -> jax.Array:
        """The image tower's pooled features before the projection (what a linear probe reads)."""
        return self.model(params).image.features(images)

    def logit_scale(self, params) -> jax.Array:
        return jnp.exp(self.model(params).log_scale[...])

    def evaluate(self, run: Run, options: EvalOptions) -> dict:
        """Zero-shot vs linear-probe accuracy and attribute agreement (`jaxgen.eval.clip`)."""
        return clip_eval.evaluate_run(run, options)


def _unit(x: jax.Array) -> jax.Array:
    return x / jnp.linalg.norm(x, axis=-1, keepdims=True).clip(1e-6)
