"""CLIP on COCO's real captions (TFDS `coco_captions`, 118k training images, five captions
each; one is picked per image from (seed, image id)) for accelerators: 64x64 central squares,
a 6-block, 256-wide text transformer over 128 byte tokens, 64-128-256-512 image channels,
256-d embeddings, batch 1024, 30,000 steps. Zero-shot `eval` scores digit sets only; on COCO,
watch the in-batch retrieval accuracy the run logs.

Needs the dataset prepared in ArrayRecord form (`tfds build coco_captions
--file_format=array_record`) and TensorFlow installed: TFDS's COCO builder imports it.

    python -m jaxgen train --config experiments/clip_coco.py --workdir runs/clip_coco
"""

from pathlib import Path

from jaxgen import config as config_lib


def get_config():
    return config_lib.for_accelerators(
        Path(__file__).with_name("clip_mnist5k.py"), "tfds:coco_captions@64", batch_size=1024,
        steps=30_000, every=5000,
        data={"text_length": 128},
        model={"data_shape": (64, 64, 3), "embed_dim": 256, "text_width": 256,
               "text_depth": 6, "text_heads": 8, "image_channels": (64, 128, 256, 512)},
        optim={"learning_rate": 5e-4, "warmup_steps": 1000, "weight_decay": 0.1})
