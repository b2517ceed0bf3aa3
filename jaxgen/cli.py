"""`python -m jaxgen train|sample|generate|interpolate|arith|eval|demo`: the library from a
shell."""

import argparse
import logging
import os
import sys
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
    from jaxgen import commands
    from jaxgen.train.objectives import SampleOptions

    labels = None if args.labels is None else tuple(int(c) for c in args.labels.split(","))
    options = SampleOptions(args.sampler, args.steps, args.guidance,
                            tuple(args.interval) if args.interval else None, labels)
    run = None
    if args.pretrained:
        from jaxgen import pretrained

        run = pretrained.load_run(args.pretrained)
    commands.sample(args.run or ".", args.num, seed=args.seed, options=options, out=args.out,
                    run=run)


def _export(args) -> None:
    from jaxgen import pretrained
    from jaxgen.train.run import load_run

    exported = pretrained.export_run(load_run(args.run), args.to)
    print(f"wrote {exported.folder} (diffusers: "
          f"{exported.loads_with}({str(exported.folder)!r}))")
    for part in exported.left_out:
        print(f"not written, no diffusers counterpart: {part}")


def _generate(args) -> None:
    from jaxgen import commands

    if args.pretrained:
        if args.interval:
            raise ValueError("--interval applies to jaxgen runs; a pretrained pipeline "
                             "guides at every step")
        guidance = 6.5 if args.guidance is None else args.guidance
        commands.generate_pretrained(args.pretrained, args.prompts, args.num,
                                     guidance=guidance, seed=args.seed, sampler=args.sampler,
                                     steps=args.steps, height=args.height, width=args.width,
                                     dtype=args.dtype, out=args.out)
        return
    commands.generate(args.run, args.prompts, args.num, guidance=args.guidance,
                      interval=args.interval, seed=args.seed, sampler=args.sampler,
                      steps=args.steps, out=args.out)


def _interpolate(args) -> None:
    from jaxgen import commands

    commands.interpolate(args.run, args.pairs, args.steps, args.method, seed=args.seed,
                         out=args.out)


def _eval(args) -> dict:
    from jaxgen import commands
    from jaxgen.train.objectives import EvalOptions

    return commands.evaluate(args.run, EvalOptions(args.num_examples, args.iwae_samples,
                                                   args.seed))


def _fid_stats(args) -> None:
    from jaxgen import commands

    commands.fid_stats(args.data, args.split, args.out, num=args.num, batch=args.batch,
                       seed=args.seed, data_dir=args.data_dir, weights=args.weights)


def _fid(args) -> dict:
    from jaxgen import commands
    from jaxgen.train.objectives import SampleOptions

    options = SampleOptions(args.sampler, args.steps, args.guidance)
    return commands.fid(args.files, workdir=args.run, ref=args.ref, num=args.num,
                        batch=args.batch, seed=args.seed, options=options, weights=args.weights)


def _clip_score(args) -> dict:
    from jaxgen import commands

    return commands.clip_score(args.files, args.clip)


def _arith(args) -> None:
    from jaxgen import commands

    commands.arith(args.run, args.num, seed=args.seed, out=args.out)


def _demo(args) -> None:
    from jaxgen import demo

    demo.run(args.workdir, steps=args.steps, iwae_samples=args.iwae_samples, fresh=args.fresh)


def _configs(args) -> None:
    import shutil
    import textwrap

    from jaxgen import config as config_lib

    shipped = config_lib.shipped_configs()
    width = max(shutil.get_terminal_size((100, 24)).columns, 60)
    pad = max(map(len, shipped)) + 2
    for name, description in shipped.items():
        print(name.ljust(pad) + textwrap.shorten(description, width - pad, placeholder=" ..."))
    print(f"\n{len(shipped)} configs in {config_lib.experiments_dir()}; train one with "
          "`python -m jaxgen train --config NAME`.")


def _sampler_options(group) -> None:
    """--sampler, --steps and --guidance of a diffusion run's sampling."""
    group.add_argument("--sampler", choices=("ddim", "ddpm", "dpm_solver", "euler", "heun"),
                       help="ddim/ddpm/dpm_solver for eps/x0/v models, euler/heun for flow "
                       "matching")
    group.add_argument("--steps", type=int, help="sampler steps (ddpm always takes all T)")
    group.add_argument("--guidance", type=float, metavar="W",
                       help="classifier-free guidance scale w: cond + w (cond - uncond); 0 is "
                       "the plain conditional model (diffusers' guidance_scale is 1 + w)")


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
                       help="a shipped config's name (e.g. vae_mnist5k; `python -m jaxgen "
                       "configs` lists them) or the path of a file defining get_config()")
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
    source = sample.add_mutually_exclusive_group(required=True)
    source.add_argument("--run", help="the run directory")
    source.add_argument("--pretrained", metavar="DIR",
                        help="a diffusers UNet2DModel pipeline folder (model_index.json, "
                        "unet/, scheduler/) or model folder, e.g. one that `huggingface-cli "
                        "download google/ddpm-cifar10-32 --local-dir DIR` wrote; its scheduler "
                        "config sets the schedule, prediction and timestep spacing")
    sample.add_argument("--num", type=int, default=64, help="number of samples")
    sample.add_argument("--out", help="output .npz path (default: RUN/samples.npz, or "
                        "./samples.npz with --pretrained)")
    sample.add_argument("--seed", type=int, default=0)
    diff = sample.add_argument_group("diffusion and latent diffusion runs (defaults: the run's "
                                      "config `sample`)")
    _sampler_options(diff)
    diff.add_argument("--interval", type=float, nargs=2, metavar=("LOW", "HIGH"),
                      help="guide only where the noise level sigma/alpha is in (LOW, HIGH] "
                      "(Kynkaanniemi et al. 2024)")
    diff.add_argument("--labels", help="class-conditional diffusion: classes to draw, e.g. "
                      "0,1,2 (cycled to --num; default 0..K-1 in turn)")
    sample.set_defaults(run_command=_sample)

    export = sub.add_parser(
        "export", help="write a run in diffusers' format (a diffusion U-Net, an autoencoder)",
        description="Writes a run's evaluation weights (EMA where kept) in diffusers' format. "
        "A diffusion run: its U-Net and noise schedule as a DDPMPipeline folder "
        "(model_index.json, unet/, scheduler/). A VAE run of model.kind 'kl' (Gaussian "
        "likelihood): an AutoencoderKL model folder (config.json with the measured "
        "scaling_factor, diffusion_pytorch_model.safetensors). A latent diffusion run: its "
        "autoencoder as DIR/vae/, with the run's latent scale; its U-Net and text tower have "
        "no diffusers counterpart and are named as not written. DiT runs, U-Nets diffusers' "
        "UNet2DModel cannot express (GroupNorm groups that vary with width) and the other "
        "autoencoder kinds are refused, naming why.")
    export.add_argument("--run", required=True,
                        help="the run directory (diffusion, VAE or latent diffusion)")
    export.add_argument("--to", required=True, metavar="DIR", help="the folder to write")
    export.set_defaults(run_command=_export)

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
    gen.add_argument("--guidance", type=float, metavar="W", help="guidance scale w, cond + "
                     "w (cond - uncond); diffusers' guidance_scale is 1 + w (default: the "
                     "run's sample.guidance; 0: the conditional model alone)")
    gen.add_argument("--interval", type=float, nargs=2, metavar=("LOW", "HIGH"),
                     help="guide only where sigma/alpha is in (LOW, HIGH]")
    gen.add_argument("--sampler", choices=("ddim", "ddpm", "dpm_solver", "euler", "heun"))
    gen.add_argument("--steps", type=int, help="sampler steps (default: the run's)")
    gen.add_argument("--seed", type=int, default=0)
    gen.add_argument("--out", help="output PNG (default: RUN/generated.png, or "
                     "./generated.png with --pretrained)")
    sd = gen.add_argument_group(
        "Stable Diffusion from a diffusers folder (guidance default 6.5, diffusers' "
        "guidance_scale 7.5; sampler default dpm_solver, 25 steps)")
    sd.add_argument("--pretrained", metavar="DIR",
                    help="a StableDiffusionPipeline folder (model_index.json, unet/, vae/, "
                    "text_encoder/, tokenizer/, scheduler/), e.g. from `huggingface-cli "
                    "download stable-diffusion-v1-5/stable-diffusion-v1-5 --local-dir DIR`; "
                    "--run is then ignored")
    sd.add_argument("--height", type=int, default=512, help="image height (default 512)")
    sd.add_argument("--width", type=int, default=512, help="image width (default 512)")
    sd.add_argument("--dtype", choices=("auto", "float32", "bfloat16"), default="auto",
                    help="compute dtype (auto: bfloat16 on accelerators, float32 on CPU)")
    gen.set_defaults(run_command=_generate)

    interp = sub.add_parser("interpolate", help="interpolate between test images in latent space",
                            description="Encodes pairs of test images and decodes the path "
                            "between their codes (one strip per pair, PNG), plus a latent "
                            "walk GIF beside it. A GAN has no encoder: its strips run between "
                            "random latents. VAE, GAN and diffusion runs (DDIM inversion).")
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

    weights_help = ("pytorch-fid's Inception weights, pt_inception-2015-12-05-6726825d.pth "
                    "(default: $JAXGEN_INCEPTION_WEIGHTS); download it once from pytorch-fid's "
                    "release page")
    stats = sub.add_parser(
        "fid-stats", help="FID statistics of a dataset split (pytorch-fid's .npz layout)",
        description="Featurises a dataset split with pytorch-fid's Inception-v3 and writes "
        "`mu` and `sigma` as pytorch-fid does (so published statistics files and these are "
        "interchangeable), plus `count` and the first 10,000 features for KID and "
        "precision/recall.")
    stats.add_argument("--data", required=True, help="dataset name, e.g. tfds:cifar10, mnist5k")
    stats.add_argument("--split", default="train", help="train or test (default train)")
    stats.add_argument("--out", required=True, help="the .npz to write")
    stats.add_argument("--num", type=int, help="only the first N images (default: all)")
    stats.add_argument("--data-dir", help="TFDS data directory (default: TFDS's)")
    stats.add_argument("--batch", type=int, default=250, help="images per featurised batch")
    stats.add_argument("--seed", type=int, default=0, help="split seed of offline datasets")
    stats.add_argument("--weights", help=weights_help)
    stats.set_defaults(run_command=_fid_stats)

    fid = sub.add_parser(
        "fid", help="FID, KID, Inception Score, precision/recall of samples or a run",
        description="pytorch-fid's FID (Heusel et al. 2017) on its Inception-v3 features, with "
        "KID (cubic-kernel unbiased MMD over subsets) and improved precision/recall (k = 3) "
        "where both sides kept features, and the Inception Score (10 splits) of samples. "
        "Either two files, samples then reference (each a statistics .npz from fid-stats or "
        "pytorch-fid, or a samples .npz with `images` as `sample` writes), or --run with "
        "--ref: NUM samples drawn and featurised batch by batch, sharded over the devices "
        "(result also in RUN/fid.json). FID from fewer samples than 2048 is biased: compare "
        "figures at equal N (papers use 50,000).")
    fid.add_argument("files", nargs="*", metavar="FILE", help="two .npz files")
    fid.add_argument("--run", help="the run directory (a family that samples images)")
    fid.add_argument("--ref", help="with --run: the reference statistics .npz")
    fid.add_argument("--num", type=int, default=50_000, help="samples drawn with --run")
    fid.add_argument("--batch", type=int, default=250, help="images per batch")
    fid.add_argument("--seed", type=int, default=0)
    fid.add_argument("--weights", help=weights_help)
    _sampler_options(fid.add_argument_group("diffusion runs with --run (defaults: the run's "
                                             "config `sample`)"))
    fid.set_defaults(run_command=_fid)

    clip = sub.add_parser(
        "clip-score", help="CLIP score of generated images against their prompts",
        description="100 * max(cos, 0) of each image's and its prompt's embeddings by a "
        "transformers CLIPModel, averaged (Hessel et al. 2021; torchmetrics' CLIPScore, whose "
        "default model is openai/clip-vit-large-patch14: `huggingface-cli download "
        "openai/clip-vit-large-patch14 --local-dir DIR`). Prompts are cut to 77 tokens as "
        "torchmetrics cuts them. A latent diffusion run's own eval reports the CLIP score by "
        "its CLIP run instead.")
    clip.add_argument("files", nargs="+", metavar="FILE",
                      help=".npz with `images` and `prompts`, as `generate` writes")
    clip.add_argument("--clip", required=True, metavar="DIR",
                      help="a transformers CLIPModel folder (config.json, model.safetensors, "
                      "vocab.json, merges.txt)")
    clip.set_defaults(run_command=_clip_score)

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

    configs = sub.add_parser("configs", help="list the shipped experiment configs",
                             description="Lists the configs that ship with jaxgen, each with "
                             "the first line of its description; `--config NAME` trains one.")
    configs.set_defaults(run_command=_configs)
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
    from jaxgen.train.lock import RunLockedError
    from jaxgen.train.objectives import CapabilityError

    expected = (ValueError, KeyError, FileNotFoundError, FileExistsError, FloatingPointError,
                CheckpointError, DatasetNotPreparedError)
    try:
        args.run_command(args)
    except (CapabilityError, RunLockedError) as e:  # a usage error: the wrong run or command
        if args.debug:
            raise
        print(f"error: {e}", file=sys.stderr)
        return 2
    except expected as e:
        if args.debug:
            raise
        message = e.args[0] if isinstance(e, KeyError) and e.args else e
        print(f"error: {message}", file=sys.stderr)
        return 1
    return 0
