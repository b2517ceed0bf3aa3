"""The guidance trade-off and the few-step sampler table of a class-conditional diffusion run.

For each guidance scale w (cond + w (cond - uncond)) and sampler/step count: N samples, labels
0..9 in turn, from the same noise; the library's digit classifier (trained on the real training
digits, cached) gives the accuracy with which the requested class is recognised, and its
256-d features the Frechet distance (FID's formula) to the held-out test digits. Samples of
each row go to a PNG grid (one class per column).

    python -m jaxgen train --config experiments/diffusion_mnist5k.py --workdir runs/diff_mnist5k
    python experiments/studies/diffusion_tables.py --run runs/diff_mnist5k
"""

import argparse
import json
from pathlib import Path

import numpy as np

from jaxgen import data, viz
from jaxgen.eval import frechet_distance
from jaxgen.eval.diffusion import conditional_samples, guidance_table, scorer
from jaxgen.train.run import load_run

ROOT = Path(__file__).resolve().parents[2]


def _pairs(text):
    return [(name, int(steps)) for name, steps in (item.split(":") for item in text.split(","))]


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--run", required=True, help="a class-conditional diffusion run")
    parser.add_argument("--num", type=int, default=500, help="samples per row")
    parser.add_argument("--guidance", default="0,1,2,4", help="scales w of the trade-off table")
    parser.add_argument("--trade-off-sampler", default="dpm_solver:20", help="SAMPLER:STEPS")
    parser.add_argument("--samplers", default="ddim:10,ddim:20,ddim:50,dpm_solver:10,"
                        "dpm_solver:20,dpm_solver:50", help="rows of the sampler table")
    parser.add_argument("--sampler-guidance", type=float, default=1.0)
    parser.add_argument("--out", default=str(ROOT / "docs" / "results"), help="output folder")
    parser.add_argument("--name", default="diffusion_mnist5k")
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args(argv)

    run = load_run(args.run)
    cfg = run.config
    classifier, reference = scorer(cfg, "test")
    _, train_images, _ = data.load_arrays(cfg.data.name, "train", seed=cfg.seed,
                                          data_dir=cfg.data.data_dir)
    subset = train_images[np.random.default_rng(0).permutation(len(train_images))[:args.num]]
    floor = {"accuracy_real_test": classifier.test_accuracy,
             "fd_real_train_vs_test": frechet_distance(classifier.features(subset),
                                                       classifier.features(reference))}
    scales = [float(w) for w in args.guidance.split(",")]
    trade_off = guidance_table(run.objective, run.params, classifier, reference, scales,
                               _pairs(args.trade_off_sampler), args.num, args.seed)
    samplers = guidance_table(run.objective, run.params, classifier, reference,
                              [args.sampler_guidance], _pairs(args.samplers), args.num, args.seed)
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    for w in scales:
        images, _ = conditional_samples(run.objective, run.params, 80, args.seed, w,
                                        *_pairs(args.trade_off_sampler)[0])
        viz.save_png(viz.image_grid(images, ncols=10), out / f"{args.name}_w{w:g}.png")
    result = {"run": str(args.run), "step": int(run.state.step), "dataset": cfg.data.name,
              "reference": f"{len(reference)} held-out test digits", "real_data": floor,
              "trade_off": trade_off, "samplers": samplers}
    (out / f"{args.name}.json").write_text(json.dumps(result, indent=2))
    lines = [f"# Class-conditional diffusion on {cfg.data.name}: guidance and samplers", "",
             f"Run `{args.run}` at step {int(run.state.step)}; {args.num} samples per row "
             f"(labels 0-9 in turn, the same noise in every row); reference: {len(reference)} "
             "held-out test digits. Accuracy: the library's classifier recognises the requested "
             f"class (it scores {classifier.test_accuracy:.1%} on real test digits). FD: "
             "Frechet distance of its 256-d features to the test digits (real training digits, "
             f"same N: {floor['fd_real_train_vs_test']:.2f}).", "",
             f"Command: `python experiments/studies/diffusion_tables.py --run {args.run} --num "
             f"{args.num}`", "",
             f"## Guidance trade-off ({args.trade_off_sampler.replace(':', ', ')} steps)", "",
             "| w | accuracy | FD | seconds |", "|---|---|---|---|"]
    lines += [f"| {r['guidance']:g} | {r['accuracy']:.1%} | {r['fd']:.2f} | {r['seconds']:.0f} |"
              for r in trade_off]
    lines += ["", f"## Samplers (w = {args.sampler_guidance:g})", "",
              "| sampler | steps | accuracy | FD | seconds |", "|---|---|---|---|---|"]
    lines += [f"| {r['sampler']} | {r['steps']} | {r['accuracy']:.1%} | {r['fd']:.2f} | "
              f"{r['seconds']:.0f} |" for r in samplers]
    (out / f"{args.name}.md").write_text("\n".join(lines) + "\n")
    print("\n".join(lines))


if __name__ == "__main__":
    main()
