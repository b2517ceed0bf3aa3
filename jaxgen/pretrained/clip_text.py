"""transformers' `CLIPTextModel` (a pipeline's `text_encoder/`) as
`jaxgen.models.clip_text.CLIPTextModel`, and the CLIP BPE tokenizer of its `tokenizer/`
(vocab.json + merges.txt) through the `tokenizers` library, set up as transformers'
`CLIPTokenizer` sets it up: NFC, whitespace runs to one space, lowercase; CLIP's word
regex and byte-level pre-tokenization; BPE with the "</w>" end-of-word suffix; start and end
tokens around the ids, padded to the encoder's length with the folder's pad token (SD 1.x:
<|endoftext|>, SD 2.x: "!").
"""

import json
from pathlib import Path

import numpy as np
from flax import nnx

from jaxgen.models.clip_text import ACTIVATIONS, CLIPTextModel
from jaxgen.pretrained.configs import check_options, read_config
from jaxgen.pretrained.convert import Entry, abstract_params, load_params, module_entries
from jaxgen.pretrained.weights import PretrainedError, WeightsReader, weight_files

WHAT = "CLIPTextModel"
FIELDS = ("vocab_size", "hidden_size", "intermediate_size", "num_hidden_layers",
          "num_attention_heads", "max_position_embeddings", "hidden_act", "layer_norm_eps",
          "eos_token_id")
# Entries of a saved CLIPTextConfig that do not change what the text tower computes.
INERT = ("architectures", "attention_dropout", "bos_token_id", "dropout", "initializer_factor",
         "initializer_range", "model_type", "pad_token_id", "projection_dim", "torch_dtype",
         "dtype", "transformers_version", "output_hidden_states", "return_dict",
         "chunk_size_feed_forward", "is_encoder_decoder", "id2label", "label2id",
         "problem_type", "output_attentions", "use_bfloat16", "tie_word_embeddings")
DEFAULTS = dict(vocab_size=49408, hidden_size=512, intermediate_size=2048,
                num_hidden_layers=12, num_attention_heads=8, max_position_embeddings=77,
                hidden_act="quick_gelu", layer_norm_eps=1e-5, eos_token_id=49407)


def text_kwargs(config: dict) -> dict:
    """`CLIPTextModel` keyword arguments of a transformers `CLIPTextConfig`."""
    allowed = {**{k: None for k in (*FIELDS, *INERT)}, "hidden_act": tuple(ACTIVATIONS)}
    check_options(config, allowed, WHAT)
    return {k: config.get(k, DEFAULTS[k]) for k in FIELDS}


def key_map(model: CLIPTextModel, prefix: str) -> list[Entry]:
    """transformers' names (with `prefix`, "text_model." in checkpoints saved before
    transformers 5) for every parameter of `model`."""
    entries = [*module_entries(model.token_embedding, ("token_embedding",),
                               f"{prefix}embeddings.token_embedding"),
               *module_entries(model.position_embedding, ("position_embedding",),
                               f"{prefix}embeddings.position_embedding"),
               *module_entries(model.final_norm, ("final_norm",),
                               f"{prefix}final_layer_norm")]
    names = {"norm1": "layer_norm1", "attn.query": "self_attn.q_proj",
             "attn.key": "self_attn.k_proj", "attn.value": "self_attn.v_proj",
             "attn.out": "self_attn.out_proj", "norm2": "layer_norm2", "fc1": "mlp.fc1",
             "fc2": "mlp.fc2"}
    for i, layer in enumerate(model.layers):
        for ours, theirs in names.items():
            module, path = layer, ("layers", i)
            for part in ours.split("."):
                module, path = getattr(module, part), (*path, part)
            entries += module_entries(module, path, f"{prefix}encoder.layers.{i}.{theirs}")
    return entries


def load_text_encoder(folder, *, dtype=np.float32, mesh=None):
    """(CLIPTextModel kwargs, pure-dict params) of the transformers model in `folder`."""
    folder = Path(folder)
    kwargs = text_kwargs(read_config(folder, (WHAT, "CLIPTextModelWithProjection")))
    shapes = abstract_params(lambda rngs: CLIPTextModel(**kwargs, rngs=rngs))
    model = nnx.eval_shape(lambda: CLIPTextModel(**kwargs, rngs=nnx.Rngs(0)))
    reader = WeightsReader(weight_files(folder, "model"))
    prefix = "text_model." if "text_model.final_layer_norm.weight" in reader else ""
    buffer = f"{prefix}embeddings.position_ids"
    if buffer in reader:  # a saved buffer, 0 .. L-1: checked, not a parameter
        ids = reader.read(buffer).reshape(-1)
        if not np.array_equal(ids, np.arange(kwargs["max_position_embeddings"])):
            raise PretrainedError(f"{WHAT}: {buffer} is not 0 .. L-1; jaxgen reads only the "
                                  "standard positions")
    params = load_params(shapes, key_map(model, prefix), reader, what=WHAT, dtype=dtype,
                         mesh=mesh)
    return kwargs, params


def _special(folder: Path, name: str, default: str) -> str:
    for file in ("special_tokens_map.json", "tokenizer_config.json"):
        path = folder / file
        if path.exists():
            value = json.loads(path.read_text()).get(name)
            if isinstance(value, dict):
                value = value.get("content")
            if value:
                return value
    return default


class CLIPTokenizer:
    """Prompts to CLIP token ids [N, length] int32, padded to `length` (the text encoder's
    max_position_embeddings, 77 for SD). A prompt longer than `length` - 2 tokens is an error
    unless `truncate` (then cut, keeping the end token, as diffusers' pipelines do)."""

    def __init__(self, folder, length: int = 77):
        from tokenizers import Regex, Tokenizer, decoders, normalizers, pre_tokenizers
        from tokenizers.models import BPE

        folder = Path(folder)
        for name in ("vocab.json", "merges.txt"):
            if not (folder / name).exists():
                raise PretrainedError(f"{folder / name} is missing: a CLIP tokenizer folder "
                                      "holds vocab.json and merges.txt")
        unk = _special(folder, "unk_token", "<|endoftext|>")
        self.bos_token = _special(folder, "bos_token", "<|startoftext|>")
        self.eos_token = _special(folder, "eos_token", "<|endoftext|>")
        self.pad_token = _special(folder, "pad_token", "<|endoftext|>")
        vocab, merges = BPE.read_file(str(folder / "vocab.json"), str(folder / "merges.txt"))
        tokenizer = Tokenizer(BPE(vocab, merges, continuing_subword_prefix="",
                                  end_of_word_suffix="</w>", fuse_unk=False, unk_token=unk))
        tokenizer.normalizer = normalizers.Sequence(
            [normalizers.NFC(), normalizers.Replace(Regex(r"\s+"), " "),
             normalizers.Lowercase()])
        # CLIP's word pattern (Radford et al. 2021's simple_tokenizer), then bytes to symbols.
        words = (r"""<\|startoftext\|>|<\|endoftext\|>|'s|'t|'re|'ve|'m|'ll|'d|[\p{L}]+|"""
                 r"""[\p{N}]|[^\s\p{L}\p{N}]+""")
        tokenizer.pre_tokenizer = pre_tokenizers.Sequence(
            [pre_tokenizers.Split(Regex(words), behavior="removed", invert=True),
             pre_tokenizers.ByteLevel(add_prefix_space=False)])
        tokenizer.decoder = decoders.ByteLevel()
        # transformers registers the special tokens as added tokens, matched before BPE: a
        # prompt's "!" is SD 2.x's pad token there, and so here.
        tokenizer.add_special_tokens(sorted({unk, self.bos_token, self.eos_token,
                                             self.pad_token}))
        self.tokenizer, self.length, self.vocab = tokenizer, length, vocab
        for token in (self.bos_token, self.eos_token, self.pad_token):
            if token not in vocab:
                raise PretrainedError(f"{folder}: special token {token!r} is not in vocab.json")

    def __call__(self, prompts, truncate: bool = False) -> np.ndarray:
        prompts = [prompts] if isinstance(prompts, str) else list(prompts)
        bos, eos, pad = (self.vocab[t] for t in (self.bos_token, self.eos_token,
                                                  self.pad_token))
        rows = []
        for prompt in prompts:
            ids = self.tokenizer.encode(prompt, add_special_tokens=False).ids
            if len(ids) > self.length - 2:
                if not truncate:
                    raise ValueError(f"the prompt {prompt[:40]!r}... is {len(ids)} tokens; the "
                                     f"text encoder takes {self.length - 2}")
                ids = ids[: self.length - 2]
            ids = [bos, *ids, eos]
            rows.append(ids + [pad] * (self.length - len(ids)))
        return np.asarray(rows, np.int32)
