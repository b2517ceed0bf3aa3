"""The text tower of OpenAI's CLIP (Radford et al. 2021) as transformers' `CLIPTextModel`
computes it, the text encoder of Stable Diffusion 1.x (ViT-L/14's, quick GELU) and 2.x
(OpenCLIP ViT-H's, exact GELU, 23 layers).

Token and learned position embeddings; pre-norm transformer layers (LayerNorm, causal
multi-head self-attention, LayerNorm, a two-layer MLP), each added to its input; a final
LayerNorm. `__call__(ids [B, L]) -> (hidden [B, L, D], pooled [B, D])`: `hidden` is what SD
cross-attends to; `pooled` is the final state at the end-of-text token (the first position
holding `eos_token_id`, or the largest id for configs from before transformers fixed that id
to 2, as transformers does).
"""

import jax
import jax.numpy as jnp
from flax import nnx

from jaxgen.models.layers import Attention

ACTIVATIONS = {"quick_gelu": lambda x: x * jax.nn.sigmoid(1.702 * x),
               "gelu": lambda x: jax.nn.gelu(x, approximate=False)}


class EncoderLayer(nnx.Module):
    def __init__(self, width, mlp_width, num_heads, activation, eps, *, dtype, rngs):
        self.norm1 = nnx.LayerNorm(width, epsilon=eps, dtype=dtype, rngs=rngs)
        self.attn = Attention(width, width, num_heads, dtype=dtype, rngs=rngs)
        self.norm2 = nnx.LayerNorm(width, epsilon=eps, dtype=dtype, rngs=rngs)
        self.fc1 = nnx.Linear(width, mlp_width, dtype=dtype, rngs=rngs)
        self.fc2 = nnx.Linear(mlp_width, width, dtype=dtype, rngs=rngs)
        self.activation = activation

    def __call__(self, x, mask):
        normed = self.norm1(x)
        x = x + self.attn(normed, normed, mask)
        return x + self.fc2(ACTIVATIONS[self.activation](self.fc1(self.norm2(x))))


def encoder_layers(hidden_size, intermediate_size, num_layers, num_heads, hidden_act,
                   layer_norm_eps, *, dtype, rngs) -> nnx.List:
    """The pre-LN transformer blocks of CLIP's text and image towers."""
    return nnx.List([EncoderLayer(hidden_size, intermediate_size, num_heads, hidden_act,
                                  layer_norm_eps, dtype=dtype, rngs=rngs)
                     for _ in range(num_layers)])


class CLIPTextModel(nnx.Module):
    """Args are transformers' `CLIPTextConfig` fields of the same names."""

    def __init__(self, vocab_size=49408, hidden_size=512, intermediate_size=2048,
                 num_hidden_layers=12, num_attention_heads=8, max_position_embeddings=77,
                 hidden_act="quick_gelu", layer_norm_eps=1e-5, eos_token_id=49407, *,
                 dtype=jnp.float32, rngs: nnx.Rngs):
        if hidden_act not in ACTIVATIONS:
            raise ValueError(f"hidden_act must be one of {sorted(ACTIVATIONS)}, got "
                             f"{hidden_act!r}")
        self.eos_token_id, self.max_length = eos_token_id, max_position_embeddings
        self.dtype = dtype
        self.token_embedding = nnx.Embed(vocab_size, hidden_size, dtype=dtype, rngs=rngs)
        self.position_embedding = nnx.Embed(max_position_embeddings, hidden_size, dtype=dtype,
                                            rngs=rngs)
        self.layers = encoder_layers(hidden_size, intermediate_size, num_hidden_layers,
                                     num_attention_heads, hidden_act, layer_norm_eps,
                                     dtype=dtype, rngs=rngs)
        self.final_norm = nnx.LayerNorm(hidden_size, epsilon=layer_norm_eps, dtype=dtype,
                                        rngs=rngs)

    def __call__(self, ids: jax.Array) -> tuple[jax.Array, jax.Array]:
        if ids.ndim != 2 or not jnp.issubdtype(ids.dtype, jnp.integer):
            raise ValueError(f"token ids must be integers [B, L], got {ids.dtype} {ids.shape}")
        length = ids.shape[1]
        if length > self.max_length:
            raise ValueError(f"{length} tokens exceed the text encoder's {self.max_length}")
        x = self.token_embedding(ids) + self.position_embedding(jnp.arange(length))[None]
        causal = jnp.tril(jnp.ones((length, length), bool))[None, None]
        for layer in self.layers:
            x = layer(x, causal)
        hidden = self.final_norm(x)
        eos = (jnp.argmax(ids, axis=-1) if self.eos_token_id == 2
               else jnp.argmax(ids == self.eos_token_id, axis=-1))
        pooled = hidden[jnp.arange(ids.shape[0]), eos]
        return hidden.astype(jnp.float32), pooled.astype(jnp.float32)
