"""What the CLI's run commands do, as functions of a run directory: each opens the run for the
capability it needs (a one-line `CapabilityError` when the family lacks it), asks the family,
and writes the files a person looks at. No family is named here: what differs between
families is theirs (`jaxgen.train.objectives`).
"""

import dataclasses
import json
import sys
from pathlib import Path

import jax
import numpy as np

from jaxgen import data, viz
from jaxgen.eval.classifier import load_or_train
from jaxgen.sample import pictures
from jaxgen.train.objectives import (
    Encoder,
    EvalOptions,
    Evaluator,
    LatentSpace,
    PromptToImage,
    SampleOptions,
    Sampler,
    UsesFrozenRuns,
    supports,
)
from jaxgen.train.run import load_frozen, load_run


def sample(workdir, num: int = 64, *, seed: int = 0, options: SampleOptions | None = None,
           out=None, run=None) -> Path:
    """`num` samples as an .npz (`images` uint8 [N, H, W, C] and their `labels` where the family
    gives classes, or `points` float32 [N, D]) and a PNG beside it; returns the .npz path.
    `run`: an opened run (a converted checkpoint) instead of the one in `workdir`."""
    if num < 1:
        raise ValueError(f"--num must be at least 1, got {num}")
    run = run or load_run(workdir, needs=Sampler, command="sample")
    samples, labels = run.objective.draw(run.params, jax.random.PRNGKey(seed), num,
                                         options or SampleOptions(), run.mesh)
    samples = np.asarray(samples)
    out = Path(out) if out else Path(workdir) / "samples.npz"
    out.parent.mkdir(parents=True, exist_ok=True)
    if samples.ndim == 4:
        extra = {} if labels is None else {"labels": np.asarray(labels, np.int32)}
        np.savez(out, images=viz.to_uint8(samples), **extra)
        ncols = None
        if labels is not None and 1 < len(np.unique(labels)) <= 16:
            ncols = len(np.unique(np.asarray(labels)))  # one class per column
        shown = samples[: 8 * (ncols or 8)]
        viz.save_png(viz.image_grid(shown, ncols=ncols), out.with_suffix(".png"))
        print(f"wrote {num} samples to {out} (and a grid of the first {len(shown)} as PNG)")
    else:
        np.savez(out, points=samples.astype(np.float32))
        viz.scatter_panels([(f"{num} samples", samples)], out.with_suffix(".png"))
        print(f"wrote {num} points to {out} (and a scatter plot as PNG)")
    return out


def generate(workdir, prompts: list[str], num: int | None = None, *, guidance=None,
             interval=None, seed: int = 0, sampler=None, steps=None, out=None) -> Path:
    """Images of `prompts` (one per grid column) as a PNG grid, and their uint8 arrays and
    prompts as an .npz beside it; returns the PNG path."""
    run = load_run(workdir, needs=PromptToImage, command="generate")
    num = num or len(prompts)
    images = run.objective.text_to_image(run.params, run.mesh, prompts, num, guidance=guidance,
                                         interval=interval, seed=seed, sampler=sampler,
                                         steps=steps)
    return _write_images(images, prompts, num, Path(out) if out else Path(workdir) /
                         "generated.png")


def generate_pretrained(path, prompts: list[str], num: int | None = None, *, guidance=6.5,
                        seed: int = 0, sampler=None, steps=None, height: int = 512,
                        width: int = 512, dtype: str = "auto", out=None) -> Path:
    """`generate` with a diffusers Stable Diffusion folder (`pretrained.stable_diffusion`)."""
    from jaxgen.pretrained.stable_diffusion import StableDiffusion

    pipe = StableDiffusion.from_pretrained(path, dtype=dtype)
    num = num or len(prompts)
    images = pipe(prompts, num, guidance=guidance, sampler=sampler, steps=steps, height=height,
                  width=width, seed=seed)
    return _write_images(images, prompts, num, Path(out) if out else Path("generated.png"))


def _write_images(images, prompts, num, out: Path) -> Path:
    out.parent.mkdir(parents=True, exist_ok=True)
    ncols = len(prompts) if 1 < len(prompts) <= 16 else None  # a prompt per column
    viz.save_png(viz.image_grid(images.astype(np.float32) / 127.5 - 1.0, ncols=ncols), out)
    np.savez(out.with_suffix(".npz"), images=images,
             prompts=np.array([prompts[i % len(prompts)] for i in range(num)]))
    print(f"wrote {num} images of {len(prompts)} prompt(s) to {out} (uint8 arrays and "
          f"their prompts in {out.with_suffix('.npz')})")
    return out


def _image_run(workdir, command: str):
    run = load_run(workdir, needs=LatentSpace, command=command)
    if len(run.config.model.data_shape) != 3:
        raise ValueError(f"{command} draws images; {run.config.data.name} holds points of "
                         f"shape {list(run.config.model.data_shape)}.")
    return run


def interpolate(workdir, pairs: int = 8, steps: int = 10, method: str = "slerp", *,
                seed: int = 0, out=None) -> Path:
    """Strips between the codes of test image pairs (a model with an encoder) or between prior
    draws (a decoder alone), as PNG, and a latent walk GIF beside it; returns the PNG path."""
    if pairs < 1 or steps < 2:
        raise ValueError("interpolate needs --pairs >= 1 and --steps >= 2")
    run = _image_run(workdir, "interpolate")
    objective, params, cfg = run.objective, run.params, run.config
    if supports(objective, Encoder):  # between the codes of real test images
        _, images, _ = data.load_arrays(cfg.data.name, "test", seed=cfg.seed,
                                        data_dir=cfg.data.data_dir)
        order = np.random.default_rng(seed).permutation(len(images))[: 2 * pairs]
        strips = pictures.interpolation_strips(objective, params, images[order[::2]],
                                               images[order[1::2]], steps, method)
    else:  # no encoder: between random latents
        strips = pictures.prior_interpolation_strips(objective, params,
                                                     jax.random.PRNGKey(seed), pairs, steps,
                                                     method)
    out = Path(out) if out else Path(workdir) / "interpolation.png"
    viz.save_png(viz.image_grid(strips, ncols=steps), out)
    frames = pictures.walk_frames(objective, params, jax.random.PRNGKey(seed),
                                  **objective.walk_tour)
    viz.save_gif(frames, out.with_suffix(".gif"))
    print(f"wrote {out} ({pairs} strips, {method}) and a walk, {out.with_suffix('.gif')}")
    return out


def arith(workdir, num: int = 4096, *, seed: int = 0, out=None) -> Path:
    """Latent arithmetic between class means (`WH - W + M`) as PNG rows, and a walk through the
    class means as GIF; returns the PNG path. The class means average the codes of labelled
    test images (a model with an encoder) or of generated images the library's classifier
    labels (a decoder alone)."""
    run = _image_run(workdir, "arith")
    cfg, objective, params = run.config, run.objective, run.params
    info, images, labels = data.load_arrays(cfg.data.name, "test", seed=cfg.seed,
                                            data_dir=cfg.data.data_dir)
    num_classes = info.num_classes
    if supports(objective, Encoder):  # codes of real test digits, with their labels
        codes = np.asarray(objective.encode(params, images[:num])[0])
        labels = labels[:num]
        source = f"posterior means of {len(codes)} test images"
    else:  # label generated images with the library's classifier
        classifier = load_or_train(cfg.data.name, seed=cfg.seed, data_dir=cfg.data.data_dir)
        codes, labels = pictures.labelled_latents(objective, params, classifier,
                                                  jax.random.PRNGKey(seed), num)
        source = (f"{len(codes)} of {num} generated images that the classifier labels "
                  "with confidence >= 0.9")
    present = np.unique(labels)
    if len(present) < 2:
        raise ValueError(f"only classes {present.tolist()} found among {source}; need two")
    rng = np.random.default_rng(seed)
    chosen = [(int(rng.choice(np.flatnonzero(labels == c))), int(present[(i + 1) % len(present)]))
              for i, c in enumerate(present)]
    rows, means = pictures.latent_class_arithmetic(objective, params, codes, labels,
                                                   num_classes, chosen)
    out = Path(out) if out else Path(workdir) / "arithmetic.png"
    viz.save_png(viz.image_grid(rows, ncols=4), out)
    walk = out.with_name(out.stem + "_walk.gif")
    viz.save_gif(pictures.mean_walk_frames(objective, params, means, present.tolist()), walk)
    counts = np.bincount(labels, minlength=num_classes).tolist()
    print(f"class means from {source} (per class: {counts}); rows: z, mean of its class, mean "
          f"of the next class, z - own + next -> {out}; walk through the class means -> {walk}")
    return out


def _evaluation_runs(objective) -> dict:
    """The parameters of the runs the family's evaluation reads besides its own; one that is
    not there is left out with a note (the scores that need it are then not reported)."""
    if not supports(objective, UsesFrozenRuns):
        return {}
    parts = {}
    for name, part in objective.evaluation_runs().items():
        try:
            parts[name] = load_frozen(part)
        except FileNotFoundError as error:
            print(f"note: {error} (the scores that need it are left out)", file=sys.stderr)
    return parts


def evaluate(workdir, options: EvalOptions | None = None) -> dict:
    """The family's metrics of a run, printed and written to WORKDIR/eval.json."""
    run = load_run(workdir, needs=Evaluator, command="eval")
    options = options or EvalOptions()
    options = dataclasses.replace(options, out_dir=options.out_dir or Path(workdir),
                                  frozen=_evaluation_runs(run.objective))
    metrics = run.objective.evaluate(run, options)
    Path(workdir, "eval.json").write_text(json.dumps(metrics, indent=2))
    print(json.dumps(metrics, indent=2))
    return metrics


def fid_stats(dataset: str, split: str, out, *, num: int | None = None, batch: int = 250,
              seed: int = 0, data_dir=None, weights=None) -> Path:
    """The FID statistics of a dataset split (`mu`, `sigma` as pytorch-fid writes them, plus
    `count` and the first `fid.KEEP` features for KID and precision/recall) at `out`."""
    from jaxgen.eval import fid

    featurizer = fid.Featurizer.load(weights)
    total, batches = fid.dataset_batches(dataset, split, batch=batch, num=num, seed=seed,
                                         data_dir=data_dir)
    path = fid.featurize(featurizer, batches, total=total, desc=f"{dataset} {split}").save(out)
    print(f"wrote the statistics of {total} {dataset} {split} images to {path}")
    return path


def _feature_set(path, featurizer_of, batch: int):
    """A file's `FeatureSet`: a statistics file as it is, a samples file (`images`, as `sample`
    writes) featurised."""
    from jaxgen.eval import fid

    with np.load(path) as stored:
        if "images" not in stored.files:
            return fid.load_reference(path)
        images = stored["images"]
    return fid.featurize(featurizer_of(), (images[i:i + batch]
                                           for i in range(0, len(images), batch)),
                         total=len(images), desc=Path(path).name)


def fid(paths=(), *, workdir=None, ref=None, num: int = 50_000, batch: int = 250,
        seed: int = 0, options: SampleOptions | None = None, weights=None) -> dict:
    """FID (and KID, precision/recall and the Inception Score where the inputs allow) of two
    files, samples then reference (each statistics or samples), or of `num` samples of the run
    in `workdir` against the statistics file `ref` (then also written to WORKDIR/fid.json)."""
    from jaxgen.eval import fid as fid_lib

    featurizer = None

    def featurizer_of():
        nonlocal featurizer
        featurizer = featurizer or fid_lib.Featurizer.load(weights)
        return featurizer

    if workdir is not None:
        if paths or ref is None:
            raise ValueError("fid --run takes --ref (a statistics file, e.g. from fid-stats) "
                             "and no other files")
        if num < 2:
            raise ValueError(f"--num must be at least 2, got {num}")
        reference = fid_lib.load_reference(ref)
        run = load_run(workdir, needs=Sampler, command="fid")
        if len(run.config.model.data_shape) != 3:  # FID compares images
            raise ValueError(f"FID scores image models; this run draws points of shape "
                             f"{tuple(run.config.model.data_shape)}")
        result = fid_lib.run_scores(run, fid_lib.Featurizer.load(weights, mesh=run.mesh),
                                    reference, num, batch=batch, seed=seed, options=options)
        result.update(ref=str(ref), step=int(run.state.step))
        Path(workdir, "fid.json").write_text(json.dumps(result, indent=2))
    else:
        if len(paths) != 2 or ref is not None:
            raise ValueError("fid takes two files (statistics .npz, or samples .npz with "
                             "`images`), or --run RUN --ref STATS")
        first, second = (_feature_set(p, featurizer_of, batch) for p in paths)
        result = fid_lib.scores(first, second, seed=seed)
    print(json.dumps(result, indent=2))
    return result


def clip_score(files, clip_dir) -> dict:
    """The CLIP score (`jaxgen.metrics.clip_score`) of each file's images against their
    prompts (an .npz with `images` uint8 and `prompts`, as `generate` writes), by the
    transformers `CLIPModel` in `clip_dir`."""
    from jaxgen.eval.clip_pretrained import PretrainedCLIP

    clip = PretrainedCLIP.from_pretrained(clip_dir)
    result = {}
    for path in files:
        with np.load(path) as stored:
            if "images" not in stored.files or "prompts" not in stored.files:
                raise ValueError(f"{path}: has {sorted(stored.files)}; clip-score takes the "
                                 "`images` and `prompts` that `generate` writes")
            images, prompts = stored["images"], [str(p) for p in stored["prompts"]]
        result[str(path)] = {"clip_score": clip.score(images, prompts),
                             "num_images": len(images)}
    print(json.dumps(result, indent=2))
    return result
