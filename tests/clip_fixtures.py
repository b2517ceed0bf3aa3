"""Regenerates the PyTorch reference fixture of `tests/test_clip_model.py` (needs torch and
transformers):

    python -m tests.clip_fixtures

`tests/data/clip_model/` is a transformers `CLIPModel` folder as torchmetrics' `CLIPScore`
reads one (openai/clip-vit-large-patch14's shape: patch 14, quick GELU, the legacy
eos_token_id 2 that pools at the largest token id, the end-of-text token last in the
vocabulary), at reduced width and depth and a 42-pixel input (3 x 3 patches), random weights
perturbed so no layer is at its initial value, saved by transformers itself with its
tokenizer and a PIL-backend `CLIPImageProcessor`. The tokenizer reuses the BPE vocabulary of
`tests/data/pretrained/tiny_sd/tokenizer`, renumbered so the special tokens come last as in
CLIP's own. `reference.npz` holds uint8 images of several sizes (so the resize and crop are
exercised, up and down), prompts (one longer than 77 tokens), and what transformers makes of
them as torchmetrics does: the processor's pixel values and token ids (padded to the longest,
cut to 77), the projected image and text embeddings, each pair's cosine and the CLIP score.
Regenerating gives the same files.
"""

import json
import shutil
from pathlib import Path

import numpy as np

from tests.pretrained_fixtures import ROOT as PRETRAINED

ROOT = Path(__file__).parent / "data" / "clip_model"
TOKENIZER_SOURCE = PRETRAINED / "tiny_sd" / "tokenizer"
SPECIAL = ("<|startoftext|>", "<|endoftext|>")

# openai/clip-vit-large-patch14 (text 768 x 12, vision 1024 x 24, projection 768) at reduced
# size; the two towers differ in width so a swapped projection cannot go unnoticed.
TEXT = dict(hidden_size=32, intermediate_size=64, num_hidden_layers=2, num_attention_heads=4,
            max_position_embeddings=77, hidden_act="quick_gelu", bos_token_id=0,
            eos_token_id=2, pad_token_id=1)
VISION = dict(hidden_size=48, intermediate_size=96, num_hidden_layers=2, num_attention_heads=4,
              image_size=42, patch_size=14, hidden_act="quick_gelu")
PROJECTION_DIM = 16
IMAGE_SIZES = [(42, 42), (60, 90), (97, 41), (20, 33), (150, 200)]
PROMPTS = ["a photograph of an astronaut riding a horse", "A  Photo of the CAT's toys!",
           "", "a bowl of fruit on a wooden table, 4k",
           "city streets at night in the rain, neon lights " * 8]


def images() -> list[np.ndarray]:
    """uint8 [H, W, 3] images: smooth colour ramps with noise, so resampling matters."""
    rng = np.random.default_rng(0)
    out = []
    for height, width in IMAGE_SIZES:
        y, x = np.mgrid[0:height, 0:width]
        ramps = np.stack([x / width, y / height, (x + y) / (width + height)], axis=-1)
        noisy = 255 * ramps + rng.normal(0, 40, (height, width, 3))
        out.append(np.clip(np.round(noisy), 0, 255).astype(np.uint8))
    return out


def tokenizer_files(folder: Path) -> None:
    """vocab.json and merges.txt in CLIP's order: bytes and merges first, then
    <|startoftext|> and <|endoftext|> as the last two ids."""
    vocab = json.loads((TOKENIZER_SOURCE / "vocab.json").read_text())
    tokens = [t for t, _ in sorted(vocab.items(), key=lambda item: item[1]) if t not in SPECIAL]
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "vocab.json").write_text(json.dumps(
        {t: i for i, t in enumerate([*tokens, *SPECIAL])}, ensure_ascii=False))
    shutil.copyfile(TOKENIZER_SOURCE / "merges.txt", folder / "merges.txt")
    special = {"bos_token": SPECIAL[0], "eos_token": SPECIAL[1], "unk_token": SPECIAL[1],
               "pad_token": SPECIAL[1]}
    (folder / "special_tokens_map.json").write_text(json.dumps(special, indent=2))
    (folder / "tokenizer_config.json").write_text(json.dumps(
        {**special, "model_max_length": 77, "tokenizer_class": "CLIPTokenizer"}, indent=2))


def features(output):
    """transformers 5 returns an output whose pooler_output is the projection; 4.x a tensor."""
    return getattr(output, "pooler_output", output)


def reference(model, processor, image_list, prompts) -> dict:
    """What torchmetrics' CLIPScore computes, step by step."""
    import torch

    pixels = processor(images=[torch.from_numpy(i.transpose(2, 0, 1)) for i in image_list],
                       return_tensors="pt").pixel_values
    text = processor(text=prompts, return_tensors="pt", padding=True)
    length = model.config.text_config.max_position_embeddings
    ids, mask = text.input_ids[:, :length], text.attention_mask[:, :length]
    with torch.no_grad():
        image_embeds = features(model.get_image_features(pixel_values=pixels))
        text_embeds = features(model.get_text_features(input_ids=ids, attention_mask=mask))
    cosines = torch.nn.functional.cosine_similarity(image_embeds, text_embeds, dim=-1,
                                                    eps=0.0)
    return dict(pixel_values=pixels.numpy(), ids=ids.numpy(), image_embeds=image_embeds.numpy(),
                text_embeds=text_embeds.numpy(), cosines=cosines.numpy(),
                score=np.float64(100 * np.maximum(cosines.numpy().astype(np.float64), 0).mean()))


def main() -> None:
    import torch
    from transformers import (
        CLIPConfig,
        CLIPImageProcessorPil,
        CLIPModel,
        CLIPProcessor,
        CLIPTokenizer,
    )

    from tests.pretrained_fixtures import _perturb

    if ROOT.exists():
        shutil.rmtree(ROOT)
    tokenizer_files(ROOT)
    tokenizer = CLIPTokenizer.from_pretrained(ROOT)
    image_processor = CLIPImageProcessorPil(
        size={"shortest_edge": VISION["image_size"]},
        crop_size={"height": VISION["image_size"], "width": VISION["image_size"]})
    torch.manual_seed(0)
    config = CLIPConfig(text_config=dict(TEXT, vocab_size=len(tokenizer)),
                        vision_config=VISION, projection_dim=PROJECTION_DIM)
    model = CLIPModel(config).eval()
    _perturb(model, torch)
    model.save_pretrained(ROOT, safe_serialization=True)
    CLIPProcessor(image_processor=image_processor, tokenizer=tokenizer).save_pretrained(ROOT)
    # As torchmetrics loads them, from the folder.
    model = CLIPModel.from_pretrained(ROOT).eval()
    processor = CLIPProcessor(image_processor=CLIPImageProcessorPil.from_pretrained(ROOT),
                              tokenizer=CLIPTokenizer.from_pretrained(ROOT))
    image_list = images()
    out = reference(model, processor, image_list, PROMPTS)
    np.savez_compressed(ROOT / "reference.npz", prompts=np.array(PROMPTS),
                        **{f"image_{i}": image for i, image in enumerate(image_list)}, **out)
    print(f"wrote {ROOT}")


if __name__ == "__main__":
    main()
