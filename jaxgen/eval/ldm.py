"""Prompt following of a text-to-image run: does the image show the digit the prompt names, and
the attribute it asks for?

The prompts are each digit alone ("a seven") and with one attribute at either end ("a thin
seven", "a thick seven", "a small seven", "a large seven"). For each guidance scale w, every
prompt is drawn `num_per_prompt` times from the same seeds, and:

- class accuracy: the library's digit classifier (trained on the real training digits)
  recognises the digit named, over all prompts;
- attribute agreement: the attribute measured on the image (`captions.measure`, binned by the
  training split's per-class tertiles) is at the prompted level (chance: 1/3);
- attribute separation: the probability that an image prompted "thick" measures thicker than
  one of the same digit prompted "thin" (and so on; 0.5 is no effect of the word);
- CLIP score (Hessel et al. 2021; where the run's CLIP run is there): 100 * max(cos, 0) of
  each image's and its prompt's embeddings by that CLIP run's own towers, averaged;
- spread: how different the images of one prompt are, the root of the per-pixel variance
  across them (in [-1, 1] units), averaged over prompts; guidance trades it for fidelity.
  `real_spread` is the same statistic of the held-out digits of each class, for reference.
"""

import time

import numpy as np

from jaxgen import data, metrics
from jaxgen.data import captions as captions_lib
from jaxgen.eval.classifier import load_or_train

ATTRIBUTES = ("thickness", "size")  # slant's words are weak prompts: reported by CLIP eval


def prompt_set(num_classes: int = 10) -> list[tuple[str, int, str | None, int | None]]:
    """(prompt, digit, attribute or None, level or None) for every prompt of the table."""
    rows = []
    for k in range(num_classes):
        rows.append((captions_lib.caption(k, {}, template=0), k, None, None))
        for name in ATTRIBUTES:
            for level in (0, 2):
                rows.append((captions_lib.caption(k, {name: level}, template=0), k, name,
                             level))
    return rows


def _separation(high: np.ndarray, low: np.ndarray) -> float:
    """P(a value from `high` > a value from `low`), ties counted half (the AUC)."""
    diff = high[:, None] - low[None, :]
    return float(np.mean((diff > 0) + 0.5 * (diff == 0)))


def spread(images: np.ndarray) -> float:
    """The root of the per-pixel variance across `images` [N, H, W, C] (unbiased; NaN for
    fewer than two images)."""
    if len(images) < 2:
        return float("nan")
    return float(np.sqrt(np.mean(np.var(images, axis=0, ddof=1))))


def real_spread(images: np.ndarray, labels: np.ndarray) -> float:
    """`spread` of each class's images, averaged over classes."""
    return float(np.mean([spread(images[labels == k]) for k in np.unique(labels)]))


def prompt_following(pipe, classifier, guidance_scales, num_per_prompt: int = 20,
                     seed: int = 0, sampler: str | None = None, steps: int | None = None,
                     dataset: str = "mnist5k", data_seed: int = 0,
                     data_dir: str | None = None, clip_embed=None) -> list[dict]:
    """One row per guidance scale (see the module docstring); `pipe` is a `TextToImage` (or
    any function of (prompts, num, guidance=, seed=, sampler=, steps=) to uint8 images).
    `clip_embed(images, prompts) -> (image embeddings, prompt embeddings)` adds each row's
    `clip_score` (`jaxgen.metrics.clip_score`)."""
    _, train_images, train_labels = data.load_arrays(dataset, "train", seed=data_seed,
                                                     data_dir=data_dir)
    bins = captions_lib.AttributeBins.fit(captions_lib.measure(train_images), train_labels)
    rows = prompt_set()
    position = {row[1:]: i for i, row in enumerate(rows)}  # (digit, attribute, level) -> row
    prompts = [r[0] for r in rows for _ in range(num_per_prompt)]
    digits = np.repeat([r[1] for r in rows], num_per_prompt)
    wanted = np.repeat([-1 if r[3] is None else r[3] for r in rows], num_per_prompt)
    attribute = np.repeat([r[2] or "" for r in rows], num_per_prompt)
    num_classes = len({r[1] for r in rows})

    def images_of(values, digit, name, level):
        i = position[(digit, name, level)]
        return values[i * num_per_prompt:(i + 1) * num_per_prompt]

    table = []
    for w in guidance_scales:
        images = pipe(prompts, len(prompts), guidance=w, seed=seed, sampler=sampler,
                      steps=steps).astype(np.float32) / 127.5 - 1.0
        predicted, _ = classifier.predict(images)
        measured = captions_lib.measure(images)
        levels = bins.levels(measured, digits)
        row = {"guidance": float(w), "class_accuracy": float(np.mean(predicted == digits)),
               "num_images": len(images),
               "spread": float(np.mean([spread(images[i:i + num_per_prompt])
                                        for i in range(0, len(images), num_per_prompt)]))}
        if clip_embed is not None:
            row["clip_score"] = metrics.clip_score(*clip_embed(images, prompts))
        for name in ATTRIBUTES:
            mask = attribute == name
            row[f"{name}_agreement"] = float(np.mean(levels[name][mask] == wanted[mask]))
            row[f"{name}_separation"] = float(np.mean([
                _separation(images_of(measured[name], k, name, 2),
                            images_of(measured[name], k, name, 0))
                for k in range(num_classes)]))
        table.append(row)
    return table


def evaluate_run(run, options, pipe, clip_embed=None) -> dict:
    """`prompt_following` of a latent diffusion run at each guidance scale of `eval.guidance`,
    `options.num` (or `eval.num_per_prompt`) images per prompt drawn with `pipe` (the run's
    text-to-image function, as `TextToImage` calls it), beside the held-out digits' own
    spread; with the CLIP score where `clip_embed` is given."""
    cfg = run.config
    classifier = load_or_train(cfg.data.name, seed=cfg.seed, data_dir=cfg.data.data_dir)
    t0 = time.perf_counter()
    rows = prompt_following(pipe, classifier, list(cfg.eval.guidance),
                            options.num or cfg.eval.num_per_prompt, options.seed,
                            dataset=cfg.data.name, data_seed=cfg.seed,
                            data_dir=cfg.data.data_dir, clip_embed=clip_embed)
    _, test_images, test_labels = data.load_arrays(cfg.data.name, cfg.eval.split,
                                                   seed=cfg.seed, data_dir=cfg.data.data_dir)
    return {"rows": rows, "real_spread": real_spread(test_images, test_labels),
            "step": int(run.state.step), "seconds": time.perf_counter() - t0,
            "dataset": cfg.data.name, "sampler": cfg.sample.sampler,
            "sampler_steps": cfg.sample.steps,
            "classifier_test_accuracy": classifier.test_accuracy}
