"""The image tower of OpenAI's CLIP (Radford et al. 2021), a ViT (Dosovitskiy et al. 2021), as
transformers' `CLIPVisionModel` computes it, and `CLIPModel`: both towers with their
projections into the shared embedding space, as transformers' `CLIPModel` holds them.

`CLIPVisionModel`: non-overlapping patches embedded by a convolution without bias, a learned
class embedding in front, learned position embeddings, a LayerNorm before the encoder
(`pre_layrnorm`, transformers' spelling), the text tower's pre-norm layers without a mask, and
a LayerNorm of the class token's final state (the pooled output).
`__call__(pixels [B, S, S, C]) -> (hidden [B, 1 + (S // P)^2, D], pooled [B, D])`, NHWC pixels
normalised as the checkpoint's image processor does (`jaxgen.pretrained.clip_model`).
"""

import jax
import jax.numpy as jnp
from flax import nnx

from jaxgen.models.clip_text import ACTIVATIONS, CLIPTextModel, encoder_layers


class CLIPVisionModel(nnx.Module):
    """Args are transformers' `CLIPVisionConfig` fields of the same names."""

    def __init__(self, hidden_size=768, intermediate_size=3072, num_hidden_layers=12,
                 num_attention_heads=12, num_channels=3, image_size=224, patch_size=32,
                 hidden_act="quick_gelu", layer_norm_eps=1e-5, *, dtype=jnp.float32,
                 rngs: nnx.Rngs):
        if hidden_act not in ACTIVATIONS:
            raise ValueError(f"hidden_act must be one of {sorted(ACTIVATIONS)}, got "
                             f"{hidden_act!r}")
        self.image_size, self.num_channels, self.dtype = image_size, num_channels, dtype
        self.patch_embedding = nnx.Conv(num_channels, hidden_size, (patch_size, patch_size),
                                        strides=(patch_size, patch_size), padding="VALID",
                                        use_bias=False, dtype=dtype, rngs=rngs)
        self.class_embedding = nnx.Param(
            jax.random.normal(rngs.params(), (hidden_size,)) * hidden_size**-0.5)
        num_positions = (image_size // patch_size) ** 2 + 1
        self.position_embedding = nnx.Embed(num_positions, hidden_size, dtype=dtype, rngs=rngs)
        self.pre_layrnorm = nnx.LayerNorm(hidden_size, epsilon=layer_norm_eps, dtype=dtype,
                                          rngs=rngs)
        self.layers = encoder_layers(hidden_size, intermediate_size, num_hidden_layers,
                                     num_attention_heads, hidden_act, layer_norm_eps,
                                     dtype=dtype, rngs=rngs)
        self.post_layernorm = nnx.LayerNorm(hidden_size, epsilon=layer_norm_eps, dtype=dtype,
                                            rngs=rngs)

    def __call__(self, pixels: jax.Array) -> tuple[jax.Array, jax.Array]:
        want = (self.image_size, self.image_size, self.num_channels)
        if pixels.ndim != 4 or tuple(pixels.shape[1:]) != want:
            raise ValueError(f"the image tower takes pixels [B, {', '.join(map(str, want))}], "
                             f"got {list(pixels.shape)}")
        patches = self.patch_embedding(pixels.astype(self.dtype))
        batch, _, _, width = patches.shape
        # Row-major patch order, as PyTorch's flatten of [B, D, rows, cols].
        patches = patches.reshape(batch, -1, width)
        cls = jnp.broadcast_to(self.class_embedding[...].astype(patches.dtype),
                               (batch, 1, width))
        x = jnp.concatenate([cls, patches], axis=1)
        x = x + self.position_embedding(jnp.arange(x.shape[1]))[None]
        x = self.pre_layrnorm(x)
        for layer in self.layers:
            x = layer(x, None)
        pooled = self.post_layernorm(x[:, 0])
        return x.astype(jnp.float32), pooled.astype(jnp.float32)


class CLIPModel(nnx.Module):
    """The text and image towers and their projections (Linear without bias) to
    `projection_dim`; `text_config` / `vision_config` are the towers' keyword arguments.
    `logit_scale` is the checkpoint's learned temperature (log of CLIP's logit multiplier),
    kept for zero-shot logits; the CLIP score does not use it."""

    def __init__(self, text_config: dict, vision_config: dict, projection_dim: int = 512,
                 logit_scale_init_value: float = 2.6592, *, dtype=jnp.float32,
                 rngs: nnx.Rngs):
        self.text_model = CLIPTextModel(**text_config, dtype=dtype, rngs=rngs)
        self.vision_model = CLIPVisionModel(**vision_config, dtype=dtype, rngs=rngs)
        self.text_projection = nnx.Linear(self.text_model.final_norm.num_features,
                                          projection_dim, use_bias=False, dtype=dtype,
                                          rngs=rngs)
        self.visual_projection = nnx.Linear(self.vision_model.post_layernorm.num_features,
                                            projection_dim, use_bias=False, dtype=dtype,
                                            rngs=rngs)
        self.logit_scale = nnx.Param(jnp.asarray(logit_scale_init_value, jnp.float32))

    def embed_images(self, pixels: jax.Array) -> jax.Array:
        """[B, S, S, C] normalised pixels -> [B, projection_dim] float32, not normalised."""
        return self.visual_projection(self.vision_model(pixels)[1]).astype(jnp.float32)

    def embed_texts(self, ids: jax.Array) -> jax.Array:
        """[B, L] token ids -> [B, projection_dim] float32, not normalised."""
        return self.text_projection(self.text_model(ids)[1]).astype(jnp.float32)
