"""CLIP score (Hessel et al. 2021) with a pretrained transformers `CLIPModel` read from a local
folder, computed as torchmetrics' `CLIPScore` computes it (its default model is
openai/clip-vit-large-patch14):

    clip = PretrainedCLIP.from_pretrained("/models/clip-vit-large-patch14")
    score = clip.score(images_uint8, prompts)          # 100 * mean max(cos, 0)

Images are uint8 [H, W, 3] of any sizes (an array [N, H, W, 3] or a list), prepared on the
host as transformers' `CLIPImageProcessor` prepares them (`jaxgen.pretrained.clip_model`);
samples in [-1, 1] go through `jaxgen.viz.to_uint8` first, as they would be saved. Prompts
are tokenized by the folder's CLIP tokenizer and, as torchmetrics does, cut to the text
tower's 77 positions: [start, tokens..., end][:77], so a prompt of more than 75 tokens loses
its end token and is pooled where transformers pools it then. The embeddings come from one
jitted program per batch shape, the state replicated and the batch split over the mesh, and
the score from `jaxgen.metrics.clip_score`, which clips each pair's cosine at 0 before the
mean; torchmetrics clips the mean, the same figure whenever no pair's cosine is negative
(as for real images and a real CLIP).
"""

from collections.abc import Sequence
from pathlib import Path

import jax
import jax.numpy as jnp
import numpy as np
from flax import nnx

from jaxgen import metrics, parallel
from jaxgen.models.clip_vision import CLIPModel
from jaxgen.pretrained.clip_model import (
    ImageProcessing,
    image_processing,
    load_clip_model,
    preprocess,
)
from jaxgen.pretrained.clip_text import CLIPTokenizer
from jaxgen.pretrained.weights import PretrainedError


def _image_list(images) -> list:
    if isinstance(images, np.ndarray | jax.Array) and images.ndim != 4:
        raise ValueError(f"pass images as [N, H, W, 3] or a list of [H, W, 3] arrays, got "
                         f"shape {list(images.shape)}")
    images = list(images)
    if not images:
        raise ValueError("no images given")
    return images


class PretrainedCLIP:
    """A pretrained CLIP's two towers as jitted functions of images and prompts."""

    def __init__(self, model: CLIPModel, tokenizer: CLIPTokenizer, processing: ImageProcessing,
                 *, mesh=None, batch_size: int = 32):
        self.mesh = mesh or parallel.make_mesh(1)
        self.tokenizer, self.processing, self.batch_size = tokenizer, processing, batch_size
        self.text_length = model.text_model.max_length
        self.image_size = model.vision_model.image_size
        if processing.output_size not in (None, (self.image_size, self.image_size)):
            height, width = processing.output_size
            raise PretrainedError(f"the image processor makes {height}x{width} images; the "
                                  f"image tower takes {self.image_size}x{self.image_size}")
        graphdef, state = nnx.split(model)
        self.state = jax.device_put(state, parallel.replicated(self.mesh))
        self._images = jax.jit(lambda state, x: nnx.merge(graphdef, state).embed_images(x))
        self._texts = jax.jit(lambda state, ids: nnx.merge(graphdef, state).embed_texts(ids))

    @classmethod
    def from_pretrained(cls, folder, *, dtype=jnp.float32, mesh=None,
                        batch_size: int = 32) -> "PretrainedCLIP":
        """From a transformers CLIPModel folder (config.json, model.safetensors, vocab.json,
        merges.txt, and processor_config.json or preprocessor_config.json if the images are
        not prepared with CLIP's defaults). Parameters are float32; `dtype` is the compute
        dtype."""
        folder = Path(folder)
        mesh = mesh or parallel.make_mesh(1)
        kwargs, params = load_clip_model(folder, mesh=mesh)
        abstract = nnx.eval_shape(lambda: CLIPModel(**kwargs, dtype=dtype, rngs=nnx.Rngs(0)))
        model = nnx.merge(nnx.graphdef(abstract), params)
        tokenizer = CLIPTokenizer(folder, length=kwargs["text_config"]["max_position_embeddings"])
        return cls(model, tokenizer, image_processing(folder), mesh=mesh, batch_size=batch_size)

    def pixel_values(self, images) -> np.ndarray:
        """float32 [N, S, S, 3]: each uint8 image prepared as the image tower takes it."""
        return np.stack([preprocess(image, self.processing) for image in _image_list(images)])

    def tokenize(self, prompts: str | Sequence[str]) -> np.ndarray:
        """int32 [N, 77]: [start, tokens..., end] cut to the text tower's length (as
        torchmetrics cuts them), then padded with the folder's pad token."""
        prompts = [prompts] if isinstance(prompts, str) else list(prompts)
        vocab, tokenizer = self.tokenizer.vocab, self.tokenizer
        bos, eos, pad = (vocab[t] for t in (tokenizer.bos_token, tokenizer.eos_token,
                                            tokenizer.pad_token))
        rows = []
        for prompt in prompts:
            ids = tokenizer.tokenizer.encode(prompt, add_special_tokens=False).ids
            ids = [bos, *ids, eos][: self.text_length]
            rows.append(ids + [pad] * (self.text_length - len(ids)))
        return np.asarray(rows, np.int32).reshape(len(prompts), self.text_length)

    def _batched(self, apply, inputs: np.ndarray) -> np.ndarray:
        out = []
        for start in range(0, len(inputs), self.batch_size):
            chunk = inputs[start:start + self.batch_size]
            pad = -len(chunk) % self.mesh.size
            padded = np.concatenate([chunk, np.repeat(chunk[:1], pad, axis=0)]) if pad else chunk
            result = apply(self.state, jax.device_put(padded, parallel.batch_sharding(self.mesh)))
            out.append(np.asarray(result)[: len(chunk)])
        return np.concatenate(out)

    def embed_images(self, images) -> np.ndarray:
        """float32 [N, projection_dim] image embeddings (not normalised) of uint8 images."""
        return self._batched(self._images, self.pixel_values(images))

    def embed_texts(self, prompts: str | Sequence[str]) -> np.ndarray:
        """float32 [N, projection_dim] text embeddings (not normalised) of prompts."""
        ids = self.tokenize(prompts)
        if not len(ids):
            raise ValueError("no prompts given")
        return self._batched(self._texts, ids)

    def score(self, images, prompts: str | Sequence[str]) -> float:
        """The CLIP score of each image with its own prompt: 100 * mean max(cos, 0)."""
        prompts = [prompts] if isinstance(prompts, str) else list(prompts)
        images = _image_list(images)
        if len(images) != len(prompts):
            raise ValueError(f"{len(images)} images and {len(prompts)} prompts: the CLIP score "
                             "pairs each image with its own prompt")
        return metrics.clip_score(self.embed_images(images), self.embed_texts(prompts))
