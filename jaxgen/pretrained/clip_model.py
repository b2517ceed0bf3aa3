"""A transformers `CLIPModel` folder (config.json with `text_config` and `vision_config`,
model.safetensors; e.g. openai/clip-vit-large-patch14, torchmetrics' CLIPScore model) as
`jaxgen.models.clip_vision.CLIPModel`, and its image preprocessing.

The folder's tokenizer is `jaxgen.pretrained.CLIPTokenizer(folder)` (vocab.json and
merges.txt at the top level of a CLIPModel folder). Its images are prepared as transformers'
PIL-backend `CLIPImageProcessor` prepares them, from the processor config the folder holds
(processor_config.json's `image_processor`, else preprocessor_config.json, else CLIP's
defaults): shortest side resized to `size` (the longer side truncated to an integer, as
transformers computes it) by PIL on the uint8 image, bicubic for CLIP; a center crop to
`crop_size`; x / 255; (x - mean) / std. transformers' torchvision backend, its default where
torchvision is installed, resamples in torch instead and differs in the last few bits of
pixels.
"""

import dataclasses
import json
from pathlib import Path

import numpy as np
from flax import nnx
from PIL import Image

from jaxgen.models.clip_text import ACTIVATIONS
from jaxgen.models.clip_vision import CLIPModel
from jaxgen.pretrained import clip_text
from jaxgen.pretrained.configs import check_options, read_config
from jaxgen.pretrained.convert import Entry, abstract_params, load_params, module_entries
from jaxgen.pretrained.weights import PretrainedError, WeightsReader, weight_files

WHAT = "CLIPModel"
VISION_FIELDS = ("hidden_size", "intermediate_size", "num_hidden_layers",
                 "num_attention_heads", "num_channels", "image_size", "patch_size",
                 "hidden_act", "layer_norm_eps")
VISION_DEFAULTS = dict(hidden_size=768, intermediate_size=3072, num_hidden_layers=12,
                       num_attention_heads=12, num_channels=3, image_size=224, patch_size=32,
                       hidden_act="quick_gelu", layer_norm_eps=1e-5)
# Every sub-config saved by transformers 4.x carries PretrainedConfig's generation and
# bookkeeping fields (openai/clip-vit-large-patch14's do); none changes what CLIP computes.
LEGACY = ("add_cross_attention", "bad_words_ids", "begin_suppress_tokens",
          "cross_attention_hidden_size", "decoder_start_token_id", "diversity_penalty",
          "do_sample", "early_stopping", "encoder_no_repeat_ngram_size",
          "exponential_decay_length_penalty", "finetuning_task", "forced_bos_token_id",
          "forced_eos_token_id", "is_decoder", "length_penalty", "max_length", "min_length",
          "no_repeat_ngram_size", "num_beam_groups", "num_beams", "num_return_sequences",
          "output_scores", "prefix", "remove_invalid_values", "repetition_penalty",
          "return_dict_in_generate", "sep_token_id", "suppress_tokens", "task_specific_params",
          "temperature", "tf_legacy_loss", "tie_encoder_decoder", "tokenizer_class", "top_k",
          "top_p", "torchscript", "typical_p", "pruned_heads")
TOP = ("text_config", "vision_config", "text_config_dict", "vision_config_dict",
       "projection_dim", "logit_scale_init_value", "initializer_factor", "architectures",
       "model_type", "torch_dtype", "dtype", "transformers_version", "return_dict",
       "output_hidden_states", "output_attentions", "use_bfloat16", "tie_word_embeddings",
       "chunk_size_feed_forward", "is_encoder_decoder", "id2label", "label2id",
       "problem_type", "bos_token_id", "eos_token_id", "pad_token_id", *LEGACY)


def _tower(config: dict, name: str) -> dict:
    # transformers lets `<name>_dict` (written by 4.x beside `<name>`) override it.
    tower = {**(config.get(name) or {}), **(config.get(f"{name}_dict") or {})}
    if tower.get("pruned_heads"):
        raise PretrainedError(f"{WHAT}: unsupported {name}.pruned_heads="
                              f"{json.dumps(tower['pruned_heads'])} (jaxgen builds every head)")
    return {k: v for k, v in tower.items() if k not in LEGACY}


def model_kwargs(config: dict) -> dict:
    """`CLIPModel` keyword arguments of a transformers `CLIPConfig`."""
    check_options(config, {**{k: None for k in TOP}, "model_type": ("clip",)}, WHAT)
    text = _tower(config, "text_config")
    vision = _tower(config, "vision_config")
    allowed = {**{k: None for k in (*VISION_FIELDS, *clip_text.INERT)},
               "hidden_act": tuple(ACTIVATIONS)}
    check_options(vision, allowed, f"{WHAT} vision_config")
    vision = {k: vision.get(k, VISION_DEFAULTS[k]) for k in VISION_FIELDS}
    size = vision["image_size"]
    if isinstance(size, list | tuple):
        if len(size) != 2 or size[0] != size[1]:
            raise PretrainedError(f"{WHAT}: unsupported vision_config.image_size={size} "
                                  "(jaxgen builds square inputs)")
        vision["image_size"] = size[0]
    if isinstance(vision["patch_size"], list | tuple):
        vision["patch_size"] = vision["patch_size"][0]
    return dict(text_config=clip_text.text_kwargs(text), vision_config=vision,
                projection_dim=config.get("projection_dim", 512),
                logit_scale_init_value=config.get("logit_scale_init_value", 2.6592))


def _layer_entries(layers, path: tuple, prefix: str) -> list[Entry]:
    names = {"norm1": "layer_norm1", "attn.query": "self_attn.q_proj",
             "attn.key": "self_attn.k_proj", "attn.value": "self_attn.v_proj",
             "attn.out": "self_attn.out_proj", "norm2": "layer_norm2", "fc1": "mlp.fc1",
             "fc2": "mlp.fc2"}
    entries = []
    for i, layer in enumerate(layers):
        for ours, theirs in names.items():
            module, where = layer, (*path, i)
            for part in ours.split("."):
                module, where = getattr(module, part), (*where, part)
            entries += module_entries(module, where, f"{prefix}.{i}.{theirs}")
    return entries


def key_map(model: CLIPModel) -> list[Entry]:
    """transformers' names for every parameter of `model`."""
    entries = [Entry(("text_model", *e.path), e.keys, e.layout)
               for e in clip_text.key_map(model.text_model, "text_model.")]
    vision, v = model.vision_model, "vision_model"
    entries += [Entry((v, "class_embedding"), (f"{v}.embeddings.class_embedding",), "same"),
                *module_entries(vision.patch_embedding, (v, "patch_embedding"),
                                f"{v}.embeddings.patch_embedding"),
                *module_entries(vision.position_embedding, (v, "position_embedding"),
                                f"{v}.embeddings.position_embedding"),
                *module_entries(vision.pre_layrnorm, (v, "pre_layrnorm"), f"{v}.pre_layrnorm"),
                *_layer_entries(vision.layers, (v, "layers"), f"{v}.encoder.layers"),
                *module_entries(vision.post_layernorm, (v, "post_layernorm"),
                                f"{v}.post_layernorm"),
                *module_entries(model.text_projection, ("text_projection",), "text_projection"),
                *module_entries(model.visual_projection, ("visual_projection",),
                                "visual_projection"),
                Entry(("logit_scale",), ("logit_scale",), "same")]
    return entries


def load_clip_model(folder, *, dtype=np.float32, mesh=None):
    """(CLIPModel kwargs, pure-dict params) of the transformers CLIPModel in `folder`; every
    tensor used, every parameter filled, or a `PretrainedError` naming the first offender."""
    folder = Path(folder)
    kwargs = model_kwargs(read_config(folder, (WHAT,)))
    shapes = abstract_params(lambda rngs: CLIPModel(**kwargs, rngs=rngs))
    model = nnx.eval_shape(lambda: CLIPModel(**kwargs, rngs=nnx.Rngs(0)))
    reader = WeightsReader(weight_files(folder, "model"))
    vision = kwargs["vision_config"]
    positions = {"text_model": kwargs["text_config"]["max_position_embeddings"],
                 "vision_model": (vision["image_size"] // vision["patch_size"]) ** 2 + 1}
    for tower, count in positions.items():
        buffer = f"{tower}.embeddings.position_ids"
        if buffer in reader:  # saved by transformers 4.x: 0 .. L-1, checked, not a parameter
            if not np.array_equal(reader.read(buffer).reshape(-1), np.arange(count)):
                raise PretrainedError(f"{WHAT}: {buffer} is not 0 .. {count - 1}; jaxgen reads "
                                      "only the standard positions")
    params = load_params(shapes, key_map(model), reader, what=WHAT, dtype=dtype, mesh=mesh)
    return kwargs, params


@dataclasses.dataclass(frozen=True)
class ImageProcessing:
    """The steps of transformers' `CLIPImageProcessor`, CLIP's defaults unless the folder's
    processor config says otherwise. `size`: an int resizes the shortest side to it, a
    (height, width) pair resizes to exactly that; `crop_size` is (height, width)."""

    do_resize: bool = True
    size: int | tuple[int, int] = 224
    resample: int = Image.Resampling.BICUBIC
    do_center_crop: bool = True
    crop_size: tuple[int, int] = (224, 224)
    do_rescale: bool = True
    rescale_factor: float = 1 / 255
    do_normalize: bool = True
    image_mean: tuple[float, ...] = (0.48145466, 0.4578275, 0.40821073)
    image_std: tuple[float, ...] = (0.26862954, 0.26130258, 0.27577711)

    @property
    def output_size(self) -> tuple[int, int] | None:
        """(height, width) of every prepared image, or None if it depends on the input."""
        if self.do_center_crop:
            return self.crop_size
        return self.size if isinstance(self.size, tuple) else None


PROCESSOR_INERT = ("do_convert_rgb", "image_processor_type", "feature_extractor_type",
                   "processor_class", "default_to_square", "data_format", "input_data_format",
                   "return_tensors", "device", "disable_grouping", "do_pad", "pad_size")


def _pair(value, what: str) -> tuple[int, int] | int:
    if isinstance(value, int):
        return value
    if isinstance(value, dict) and set(value) == {"shortest_edge"}:
        return int(value["shortest_edge"])
    if isinstance(value, dict) and set(value) == {"height", "width"}:
        return int(value["height"]), int(value["width"])
    raise PretrainedError(f"{WHAT} image processor: unsupported {what}={json.dumps(value)} "
                          '(jaxgen reads an int, {"shortest_edge": n} or {"height", "width"})')


def image_processing(folder) -> ImageProcessing:
    """The image preprocessing of `folder`, read as transformers reads it."""
    folder = Path(folder)
    config, processor = None, folder / "processor_config.json"
    if processor.exists():
        config = json.loads(processor.read_text()).get("image_processor")
    if config is None and (folder / "preprocessor_config.json").exists():
        config = json.loads((folder / "preprocessor_config.json").read_text())
    if config is None:
        return ImageProcessing()
    fields = {f.name for f in dataclasses.fields(ImageProcessing)}
    check_options(config, {**{k: None for k in (*fields, *PROCESSOR_INERT)},
                           "do_pad": (False, None)}, f"{WHAT} image processor")
    if not config.get("do_convert_rgb", True):
        raise PretrainedError(f"{WHAT} image processor: unsupported do_convert_rgb=false")
    values = {k: v for k, v in config.items() if k in fields}
    if "size" in values:
        values["size"] = _pair(values["size"], "size")
    if "crop_size" in values:
        crop = _pair(values["crop_size"], "crop_size")
        if isinstance(crop, int) and isinstance(config["crop_size"], dict):
            raise PretrainedError(f"{WHAT} image processor: crop_size needs height and width")
        values["crop_size"] = (crop, crop) if isinstance(crop, int) else crop
    for key in ("image_mean", "image_std"):
        if key in values:
            value = values[key]
            values[key] = tuple(value) if isinstance(value, list | tuple) else (value,) * 3
    return ImageProcessing(**values)


def _center_crop(image: np.ndarray, height: int, width: int) -> np.ndarray:
    # transformers pads with zeros, centred, where the image is smaller than the crop.
    rows, cols = image.shape[:2]
    pad_rows, pad_cols = max(height - rows, 0), max(width - cols, 0)
    if pad_rows or pad_cols:
        top, left = -(-pad_rows // 2), -(-pad_cols // 2)
        image = np.pad(image, ((top, pad_rows - top), (left, pad_cols - left), (0, 0)))
        rows, cols = image.shape[:2]
    top, left = (rows - height) // 2, (cols - width) // 2
    return image[top:top + height, left:left + width]


def preprocess(image: np.ndarray, processing: ImageProcessing) -> np.ndarray:
    """One uint8 image [H, W, 3] (or [H, W] / [H, W, 1] grey, repeated to RGB) -> float32
    [h, w, 3] pixels as the image tower takes them."""
    image = np.asarray(image)
    if image.ndim == 2:
        image = image[..., None]
    if image.dtype != np.uint8 or image.ndim != 3 or image.shape[-1] not in (1, 3):
        raise ValueError(f"CLIP takes uint8 images [H, W, 3] (or grey [H, W, 1]), got "
                         f"{image.dtype} {list(image.shape)}")
    image = np.repeat(image, 3, axis=-1) if image.shape[-1] == 1 else image
    if processing.do_resize:
        rows, cols = image.shape[:2]
        if isinstance(processing.size, tuple):
            rows, cols = processing.size
        else:  # shortest side to `size`, the longer one int(size * long / short)
            short, long = min(rows, cols), max(rows, cols)
            long = int(processing.size * long / short)
            rows, cols = (long, processing.size) if cols <= rows else (processing.size, long)
        image = np.asarray(Image.fromarray(image).resize((cols, rows),
                                                         resample=processing.resample))
    if processing.do_center_crop:
        image = _center_crop(image, *processing.crop_size)
    pixels = image.astype(np.float32)
    if processing.do_rescale:  # transformers rescales in float64, then rounds to float32
        pixels = (image.astype(np.float64) * processing.rescale_factor).astype(np.float32)
    if processing.do_normalize:
        mean = np.asarray(processing.image_mean, np.float32)
        std = np.asarray(processing.image_std, np.float32)
        pixels = (pixels - mean) / std
    return pixels
