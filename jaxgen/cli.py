"""`python -m jaxgen train|sample|generate|interpolate|arith|eval|demo`: the library from a
shell."""

import argparse
import json
import logging
import os
import sys
import time
from pathlib import Path

DEFAULT_CACHE = Path.home() / ".cache" / "jaxgen" / "xla"


def _setup_jax(args) -> None:
    """Multi-host start-up and the persistent compilation cache, before any device is touched."""
    import jax

    from jaxgen import parallel

    if getattr(args, "coordinator", None):
        parallel.initialize_distributed(
            parallel.DistributedConfig(args.coordinator, args.num_processes, args.process_id)
        )
    cache = os.environ.get("JAXGEN_COMPILATION_CACHE", str(DEFAULT_CACHE))
    if cache:
        jax.config.update("jax_compilation_cache_dir", cache)
        jax.config.update("jax_persistent_cache_min_compile_time_secs", 1.0)


def _train(args) -> dict:
    from jaxgen import config as config_lib
    from jaxgen import train

    config = config_lib.override(config_lib.load(args.config), args.set or [])
    if args.no_resume:
        config.resume = False
    workdir = args.workdir or f"runs/{Path(args.config).stem}"
    result = train.train(config, workdir, stop_at=args.stop_at)
    if result.is_main:
        print(
            f"trained to step {int(result.state.step)} in {workdir}: compile "
            f"{result.compile_seconds:.1f} s, {result.steps_per_second:.1f} steps/s after "
            "compiling"
        )
    return {"workdir": str(workdir)}


def _sample(args) -> None:
    import jax
    import numpy as np

    from jaxgen import viz
    from jaxgen.train.run import load_run

    if args.num < 1:
        raise ValueError(f"--num must be at least 1, got {args.num}")
    run = load_run(args.run)
    key = jax.random.PRNGKey(args.seed)
    labels = None
    if run.config.family == "diffusion":
        images, labels = _diffusion_samples(run, args, key)
    else:
        diffusion_only = {"--sampler": args.sampler, "--steps": args.steps,
                          "--guidance": args.guidance, "--labels": args.labels}
        if given := [k for k, v in diffusion_only.items() if v is not None]:
            raise ValueError(f"{', '.join(given)} apply to diffusion runs; this run is a "
                             f"{run.config.family}")
        images = np.asarray(jax.jit(run.objective.sample, static_argnums=2)(run.params, key,
                                                                             args.num))
        if run.config.family == "gan":
            labels = run.objective.default_labels(args.num)
    out = Path(args.out) if args.out else Path(args.run) / "samples.npz"
    out.parent.mkdir(parents=True, exist_ok=True)
    if images.ndim == 4:
        extra = {} if labels is None else {"labels": np.asarray(labels, np.int32)}
        np.savez(out, images=viz.to_uint8(images), **extra)
        ncols = None
        if labels is not None and 1 < len(np.unique(labels)) <= 16:
            ncols = len(np.unique(np.asarray(labels)))  # one class per column
        shown = images[: 8 * (ncols or 8)]
        viz.save_png(viz.image_grid(shown, ncols=ncols), out.with_suffix(".png"))
        print(f"wrote {args.num} samples to {out} (and a grid of the first {len(shown)} as PNG)")
    else:
        np.savez(out, points=images.astype(np.float32))
        viz.scatter_panels([(f"{args.num} samples", images)], out.with_suffix(".png"))
        print(f"wrote {args.num} points to {out} (and a scatter plot as PNG)")


def _diffusion_samples(run, args, key):
    """(images [N, H, W, C] in [-1, 1], labels [N] or None) with the CLI's sampler options."""
    import jax
    import jax.numpy as jnp
    import numpy as np

    from jaxgen import parallel

    objective, cfg = run.objective, run.config
    sampler = args.sampler or cfg.sample.sampler
    objective.check_sampler(sampler)
    steps = args.steps or cfg.sample.steps
    labels = None
    if cfg.model.num_classes:
        if args.labels:
            wanted = np.array([int(c) for c in args.labels.split(",")], np.int32)
            if wanted.min() < 0 or wanted.max() >= cfg.model.num_classes:
                raise ValueError(f"--labels must lie in [0, {cfg.model.num_classes}), got "
                                 f"{args.labels}")
            labels = np.resize(wanted, args.num)  # cycled: one class per grid column
        else:
            labels = np.asarray(objective.default_labels(args.num))
    elif args.labels or args.guidance:
        raise ValueError("--labels and --guidance need a class-conditional run "
                         "(model.num_classes > 0); this one is unconditional")
    guidance = args.guidance if args.guidance is not None else cfg.sample.guidance
    guidance = guidance if labels is not None else None
    interval = tuple(args.interval) if args.interval else cfg.sample.guidance_interval
    noise_key, sampler_key = jax.random.split(key)
    x_T = jax.random.normal(noise_key, (args.num, *objective.data_shape))
    if args.num % run.mesh.size == 0:  # sampling is sharded over the batch
        x_T = jax.device_put(x_T, parallel.batch_sharding(run.mesh))
    generate = jax.jit(objective.generate, static_argnames=("sampler", "steps"))
    images = generate(run.params, x_T, sampler_key, None if labels is None else jnp.asarray(labels),
                      guidance, interval, sampler=sampler, steps=steps)
    return np.clip(np.asarray(images), -1.0, 1.0), labels


def _generate(args) -> None:
    import numpy as np

    from jaxgen import viz
    from jaxgen.pipeline import TextToImage

    pipe = TextToImage.from_run(args.run)
    num = args.num or len(args.prompts)
    images = pipe(args.prompts, num, guidance=args.guidance, interval=args.interval,
                  seed=args.seed, sampler=args.sampler, steps=args.steps)
    out = Path(args.out) if args.out else Path(args.run) / "generated.png"
    out.parent.mkdir(parents=True, exist_ok=True)
    ncols = len(args.prompts) if 1 < len(args.prompts) <= 16 else None  # a prompt per column
    viz.save_png(viz.image_grid(images.astype(np.float32) / 127.5 - 1.0, ncols=ncols), out)
    np.savez(out.with_suffix(".npz"), images=images,
             prompts=np.array([args.prompts[i % len(args.prompts)] for i in range(num)]))
    print(f"wrote {num} images of {len(args.prompts)} prompt(s) to {out} (uint8 arrays and "
          f"their prompts in {out.with_suffix('.npz')})")


def _interpolate(args) -> None:
    import jax
    import numpy as np

    from jaxgen import data, viz
    from jaxgen.sample import pictures
    from jaxgen.train.run import load_run

    if args.pairs < 1 or args.steps < 2:
        raise ValueError("interpolate needs --pairs >= 1 and --steps >= 2")
    run = load_run(args.run)
    if len(run.config.model.data_shape) != 3:
        raise ValueError(f"interpolate draws images; {run.config.data.name} holds points "
                         f"of shape {list(run.config.model.data_shape)}.")
    if hasattr(run.objective, "encode"):  # between the codes of real test images
        _, images, _ = data.load_arrays(run.config.data.name, "test", seed=run.config.seed,
                                        data_dir=run.config.data.data_dir)
        order = np.random.default_rng(args.seed).permutation(len(images))[: 2 * args.pairs]
        strips = pictures.interpolation_strips(run.objective, run.params, images[order[::2]],
                                               images[order[1::2]], args.steps, args.method)
    else:  # a generator has no encoder: between random latents
        strips = pictures.prior_interpolation_strips(
            run.objective, run.params, jax.random.PRNGKey(args.seed), args.pairs, args.steps,
            args.method)
    out = Path(args.out) if args.out else Path(args.run) / "interpolation.png"
    viz.save_png(viz.image_grid(strips, ncols=args.steps), out)
    # each walk frame of a diffusion model is a whole sampler run: a smaller tour
    tour = {"anchors": 4, "steps_between": 8, "grid": 4} if run.config.family == "diffusion" else {}
    frames = pictures.walk_frames(run.objective, run.params, jax.random.PRNGKey(args.seed), **tour)
    viz.save_gif(frames, out.with_suffix(".gif"))
    print(f"wrote {out} ({args.pairs} strips, {args.method}) and a walk, {out.with_suffix('.gif')}")


def _eval(args) -> dict:
    """The family's metrics of a run, printed and written to RUN/eval.json."""
    from jaxgen.train.run import load_run

    run = load_run(args.run)
    by_family = {"gan": _eval_gan, "diffusion": _eval_diffusion, "clip": _eval_clip,
                 "ldm": _eval_ldm}
    metrics = by_family.get(run.config.family, _eval_vae)(run, args)
    Path(args.run, "eval.json").write_text(json.dumps(metrics, indent=2))
    print(json.dumps(metrics, indent=2))
    return metrics


def _eval_vae(run, args) -> dict:
    from jaxgen import data
    from jaxgen.eval import evaluate_vae

    cfg = run.config
    _, images, _ = data.load_arrays(cfg.data.name, cfg.eval.split, seed=cfg.seed,
                                    data_dir=cfg.data.data_dir)
    images = images[: args.num_examples or cfg.eval.num_examples]
    t0 = time.perf_counter()
    metrics = evaluate_vae(run.objective, run.params, images, mesh=run.mesh,
                           num_samples=args.iwae_samples or cfg.eval.iwae_samples,
                           batch_size=cfg.eval.batch_size, seed=args.seed)
    metrics.update(step=int(run.state.step), seconds=time.perf_counter() - t0,
                   split=cfg.eval.split, dataset=cfg.data.name)
    return metrics


def _eval_gan(run, args) -> dict:
    from jaxgen import viz
    from jaxgen.data import toy
    from jaxgen.eval import gan as gan_eval
    from jaxgen.eval.classifier import load_or_train

    cfg, seed = run.config, args.seed
    num = args.num_examples or cfg.eval.num_samples
    t0 = time.perf_counter()
    if len(cfg.model.data_shape) == 3:
        classifier = load_or_train(cfg.data.name, seed=cfg.seed, data_dir=cfg.data.data_dir)
        metrics = gan_eval.class_histogram(run.objective, run.params, classifier, num, seed)
    elif cfg.data.name in ("ring8", "grid25"):
        metrics, samples = gan_eval.mode_report(run.objective, run.params, num, seed)
        centers, _ = toy.mixture_modes(cfg.data.name)
        viz.scatter_panels([(f"{metrics['modes']} modes, {100 * metrics['high_quality']:.1f}% "
                             "high quality", samples)], Path(args.run, "modes.png"),
                           reference=centers)
    else:
        samples = gan_eval.draw(run.objective, run.params, num, seed)
        metrics = gan_eval.helix_report(samples, gan_eval.held_out(cfg.data.name, num,
                                                                   cfg.seed))
    metrics.update(step=int(run.state.step), seconds=time.perf_counter() - t0,
                   dataset=cfg.data.name)
    return metrics


def _eval_diffusion(run, args) -> dict:
    from jaxgen.eval.diffusion import guidance_table, scorer

    cfg = run.config
    if not cfg.model.num_classes:
        raise ValueError("eval scores class-conditional diffusion runs (accuracy of the "
                         "requested class); this run is unconditional")
    classifier, reference = scorer(cfg, cfg.eval.split)
    t0 = time.perf_counter()
    rows = guidance_table(run.objective, run.params, classifier, reference,
                          list(cfg.eval.guidance), [(cfg.sample.sampler, cfg.sample.steps)],
                          args.num_examples or cfg.eval.num_samples, args.seed)
    metrics = {"rows": rows, "step": int(run.state.step), "seconds": time.perf_counter() - t0,
               "dataset": cfg.data.name, "classifier_test_accuracy": classifier.test_accuracy}
    return metrics


def _eval_clip(run, args) -> dict:
    from jaxgen.eval.clip import evaluate

    cfg = run.config
    t0 = time.perf_counter()
    metrics = evaluate(run.objective, run.params, cfg.data.name, cfg.eval.split, seed=cfg.seed,
                       data_dir=cfg.data.data_dir)
    metrics.update(step=int(run.state.step), seconds=time.perf_counter() - t0,
                   dataset=cfg.data.name, split=cfg.eval.split, loss=cfg.model.loss)
    return metrics


def _eval_ldm(run, args) -> dict:
    from jaxgen import data
    from jaxgen.eval.classifier import load_or_train
    from jaxgen.eval.ldm import prompt_following, real_spread
    from jaxgen.pipeline import TextToImage

    cfg = run.config
    classifier = load_or_train(cfg.data.name, seed=cfg.seed, data_dir=cfg.data.data_dir)
    t0 = time.perf_counter()
    rows = prompt_following(TextToImage(run), classifier, list(cfg.eval.guidance),
                            args.num_examples or cfg.eval.num_per_prompt, args.seed,
                            dataset=cfg.data.name, data_seed=cfg.seed,
                            data_dir=cfg.data.data_dir)
    _, test_images, test_labels = data.load_arrays(cfg.data.name, cfg.eval.split,
                                                   seed=cfg.seed, data_dir=cfg.data.data_dir)
    metrics = {"rows": rows, "real_spread": real_spread(test_images, test_labels),
               "step": int(run.state.step), "seconds": time.perf_counter() - t0,
               "dataset": cfg.data.name, "sampler": cfg.sample.sampler,
               "sampler_steps": cfg.sample.steps,
               "classifier_test_accuracy": classifier.test_accuracy}
    return metrics


def _arith(args) -> None:
    import jax
    import numpy as np

    from jaxgen import data, viz
    from jaxgen.eval.classifier import load_or_train
    from jaxgen.sample import pictures
    from jaxgen.train.run import load_run

    run = load_run(args.run)
    cfg, objective, params = run.config, run.objective, run.params
    if len(cfg.model.data_shape) != 3:
        raise ValueError("arith works on image models; this run generates points")
    info, images, labels = data.load_arrays(cfg.data.name, "test", seed=cfg.seed,
                                            data_dir=cfg.data.data_dir)
    num_classes = info.num_classes
    if hasattr(objective, "encode"):  # a VAE: codes of real test digits, with their labels
        codes = np.asarray(objective.encode(params, images[: args.num])[0])
        labels = labels[: args.num]
        source = f"posterior means of {len(codes)} test images"
    else:  # a GAN: label generated images with the library's classifier
        classifier = load_or_train(cfg.data.name, seed=cfg.seed, data_dir=cfg.data.data_dir)
        codes, labels = pictures.labelled_latents(objective, params, classifier,
                                                  jax.random.PRNGKey(args.seed), args.num)
        source = (f"{len(codes)} of {args.num} generated images that the classifier labels "
                  "with confidence >= 0.9")
    present = np.unique(labels)
    if len(present) < 2:
        raise ValueError(f"only classes {present.tolist()} found among {source}; need two")
    rng = np.random.default_rng(args.seed)
    pairs = [(int(rng.choice(np.flatnonzero(labels == c))), int(present[(i + 1) % len(present)]))
             for i, c in enumerate(present)]
    rows, means = pictures.latent_class_arithmetic(objective, params, codes, labels,
                                                   num_classes, pairs)
    out = Path(args.out) if args.out else Path(args.run) / "arithmetic.png"
    viz.save_png(viz.image_grid(rows, ncols=4), out)
    frames = pictures.mean_walk_frames(objective, params, means, present.tolist())
    viz.save_gif(frames, out.with_name(out.stem + "_walk.gif"))
    counts = np.bincount(labels, minlength=num_classes).tolist()
    print(f"class means from {source} (per class: {counts}); rows: z, mean of its class, mean "
          f"of the next class, z - own + next -> {out}; walk through the class means -> "
          f"{out.with_name(out.stem + '_walk.gif')}")


def _demo(args) -> None:
    from jaxgen import demo

    demo.run(args.workdir, steps=args.steps, iwae_samples=args.iwae_samples, fresh=args.fresh)


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="python -m jaxgen",
        description="Train, sample and evaluate generative models written in JAX/Flax NNX.",
        epilog="Start with `python -m jaxgen demo`: it trains a VAE on real MNIST digits "
        "shipped offline and writes its pictures to runs/demo.",
    )
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    train = sub.add_parser(
        "train", help="train a model from an experiment config",
        description="Train from a config file. Rerunning the same command resumes from the "
        "run's latest good checkpoint. SIGTERM saves a checkpoint before exiting.",
    )
    train.add_argument("--config", required=True,
                       help="experiment file defining get_config(), e.g. "
                       "experiments/vae_mnist5k.py")
    train.add_argument("--workdir", help="run directory (default: runs/<config name>)")
    train.add_argument("--set", action="append", metavar="KEY=VALUE",
                       help="override a config value, e.g. --set steps=500 --set "
                       "data.name=tfds:mnist (repeatable; values parse as Python literals)")
    train.add_argument("--stop-at", type=int, metavar="STEP",
                       help="checkpoint and stop at this step (the schedule still runs to the "
                       "config's steps); rerun to continue")
    train.add_argument("--no-resume", action="store_true",
                       help="start from scratch even if the workdir holds checkpoints")
    multihost = train.add_argument_group("multi-host (one command per process)")
    multihost.add_argument("--coordinator", help="host:port of process 0")
    multihost.add_argument("--num-processes", type=int)
    multihost.add_argument("--process-id", type=int)
    train.set_defaults(run_command=_train)

    sample = sub.add_parser("sample", help="draw samples from a trained run",
                            description="Writes an .npz with `images` uint8 [N, H, W, C] "
                            "and a PNG grid beside it; for point models (ring8, grid25, helix) "
                            "`points` float32 [N, D] and a scatter plot. Conditional GANs draw "
                            "classes 0, 1, ..., K-1 in turn.")
    sample.add_argument("--run", required=True, help="the run directory")
    sample.add_argument("--num", type=int, default=64, help="number of samples")
    sample.add_argument("--out", help="output .npz path (default: RUN/samples.npz)")
    sample.add_argument("--seed", type=int, default=0)
    diff = sample.add_argument_group("diffusion runs (defaults: the run's config `sample`)")
    diff.add_argument("--sampler", choices=("ddim", "ddpm", "dpm_solver", "euler", "heun"),
                      help="ddim/ddpm/dpm_solver for eps/x0/v models, euler/heun for flow "
                      "matching")
    diff.add_argument("--steps", type=int, help="sampler steps (ddpm always takes all T)")
    diff.add_argument("--guidance", type=float, metavar="W",
                      help="classifier-free guidance scale w: cond + w (cond - uncond); 0 is "
                      "the plain conditional model (diffusers' guidance_scale is 1 + w)")
    diff.add_argument("--interval", type=float, nargs=2, metavar=("LOW", "HIGH"),
                      help="guide only where the noise level sigma/alpha is in (LOW, HIGH] "
                      "(Kynkaanniemi et al. 2024)")
    diff.add_argument("--labels", help="classes to draw, e.g. 0,1,2 (cycled to --num; default "
                      "0..K-1 in turn)")
    sample.set_defaults(run_command=_sample)

    gen = sub.add_parser("generate", help="text to image with a latent diffusion run",
                         description="Draws images of one or more prompts (taken in turn, one "
                         "per grid column) from a latent diffusion run, with classifier-free "
                         "guidance against the empty prompt. Writes a PNG grid and an .npz "
                         "of the uint8 images and their prompts. The same --seed gives the "
                         "same images.")
    gen.add_argument("prompts", nargs="+", metavar="PROMPT", help='e.g. "a thin seven"')
    gen.add_argument("--run", default="runs/ldm_mnist5k", help="the latent diffusion run "
                     "(default: %(default)s)")
    gen.add_argument("--num", type=int, help="images in all (default: one per prompt)")
    gen.add_argument("--guidance", type=float, metavar="W", help="guidance scale w (default: "
                     "the run's sample.guidance; 0: the conditional model alone)")
    gen.add_argument("--interval", type=float, nargs=2, metavar=("LOW", "HIGH"),
                     help="guide only where sigma/alpha is in (LOW, HIGH]")
    gen.add_argument("--sampler", choices=("ddim", "ddpm", "dpm_solver", "euler", "heun"))
    gen.add_argument("--steps", type=int, help="sampler steps (default: the run's)")
    gen.add_argument("--seed", type=int, default=0)
    gen.add_argument("--out", help="output PNG (default: RUN/generated.png)")
    gen.set_defaults(run_command=_generate)

    interp = sub.add_parser("interpolate", help="interpolate between test images in latent space",
                            description="Encodes pairs of test images and decodes the path "
                            "between their codes (one strip per pair, PNG), plus a latent "
                            "walk GIF beside it.")
    interp.add_argument("--run", required=True, help="the run directory")
    interp.add_argument("--pairs", type=int, default=8, help="number of image pairs")
    interp.add_argument("--steps", type=int, default=10, help="images per strip, ends included")
    interp.add_argument("--method", choices=("slerp", "lerp"), default="slerp")
    interp.add_argument("--out", help="output PNG (default: RUN/interpolation.png)")
    interp.add_argument("--seed", type=int, default=0)
    interp.set_defaults(run_command=_interpolate)

    ev = sub.add_parser("eval", help="score a run (VAE: ELBO and IWAE NLL; GAN, diffusion: "
                        "see below)",
                        description="VAE: the test split's mean ELBO (nats, higher is better) "
                        "and IWAE negative log-likelihood with K importance samples (nats, lower "
                        "is better). GAN on images: the classifier's histogram of generated "
                        "classes. GAN on ring8/grid25: modes captured and high-quality samples "
                        "(VEEGAN/PacGAN protocol). GAN on the helix: energy distance to held-out "
                        "points and spread around the curve. Class-conditional diffusion: for each "
                        "guidance scale in the config's eval.guidance, the classifier's accuracy "
                        "on the requested class and the Frechet distance of its features to the "
                        "test split. CLIP: zero-shot and linear-probe accuracy on the test "
                        "split, and attribute agreement. Latent diffusion: for each guidance "
                        "scale in eval.guidance, the classifier's accuracy on the digit each "
                        "prompt names and the agreement of the measured thickness and size with "
                        "the prompted ones. Writes eval.json in the run directory.")
    ev.add_argument("--run", required=True, help="the run directory")
    ev.add_argument("--iwae-samples", type=int, help="K (default: the config's eval.iwae_samples)")
    ev.add_argument("--num-examples", type=int,
                    help="test examples (VAE) or samples (GAN) (default: the config's)")
    ev.add_argument("--seed", type=int, default=0, help="seed of binarisation and sampling")
    ev.set_defaults(run_command=_eval)

    arith = sub.add_parser(
        "arith", help="latent arithmetic and a walk between class means",
        description="Averages latents per class and writes rows of [z, mean of its class, mean "
        "of another class, z - own + other] (`WH - W + M`) as PNG, and a GIF walking through "
        "the class means. VAE: posterior means of labelled test images. GAN: latents of "
        "generated images labelled by the library's classifier (trained on the real data on "
        "first use and cached in runs/classifiers).")
    arith.add_argument("--run", required=True, help="the run directory")
    arith.add_argument("--num", type=int, default=4096,
                       help="latents to label (GAN) or test images to encode (VAE)")
    arith.add_argument("--out", help="output PNG (default: RUN/arithmetic.png)")
    arith.add_argument("--seed", type=int, default=0)
    arith.set_defaults(run_command=_arith)

    demo = sub.add_parser("demo", help="train the VAE on offline MNIST and write its pictures",
                          description="Trains experiments/vae_mnist5k.py on the 4,000 "
                          "offline MNIST training digits (a few minutes on a laptop CPU), "
                          "scores it on the 1,000 test digits and writes samples, "
                          "reconstructions, interpolations, latent arithmetic and a walk GIF.")
    demo.add_argument("--workdir", default="runs/demo", help="where the run and pictures go")
    demo.add_argument("--steps", type=int, help="train steps (default: the config's)")
    demo.add_argument("--iwae-samples", type=int, default=500, help="K of the IWAE bound")
    demo.add_argument("--fresh", action="store_true",
                      help="delete the workdir's previous demo run first (needed to change "
                      "--steps of an existing run)")
    demo.set_defaults(run_command=_demo)
    for command in sub.choices.values():
        command.add_argument("--debug", action="store_true",
                             help="show the full traceback of an error")
    return parser


def main(argv: list[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(levelname)s %(name)s: %(message)s")
    for noisy in ("absl", "jax._src", "orbax", "grain"):
        logging.getLogger(noisy).setLevel(logging.WARNING)
    _setup_jax(args)
    from jaxgen.data import DatasetNotPreparedError
    from jaxgen.train import CheckpointError

    expected = (ValueError, KeyError, FileNotFoundError, FileExistsError, FloatingPointError,
                CheckpointError, DatasetNotPreparedError)
    try:
        args.run_command(args)
    except expected as e:
        if args.debug:
            raise
        message = e.args[0] if isinstance(e, KeyError) and e.args else e
        print(f"error: {message}", file=sys.stderr)
        return 1
    return 0
