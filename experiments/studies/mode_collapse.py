"""Mode collapse measured: GAN against PacGAN on ring8 and grid25, several seeds, next to the
published tables.

Protocol (VEEGAN, Srivastava et al. 2017, section 5.1; PacGAN, Lin et al. 2018, section 5.1 and
its code): the networks, loss, update order, optimizer and batch of `experiments/gan_ring8.py`;
after training, 2,500 samples; a sample is high quality within 3 standard deviations of its
nearest mode; a mode is captured when it is the nearest mode of at least one high-quality sample.
Differences from the protocol are the command-line defaults (`--steps`, `--width`), chosen for a
2-core CPU, and are written into the table.

    python experiments/studies/mode_collapse.py                    # the table in docs/results/
    python experiments/studies/mode_collapse.py --steps 400000 --width 1.0   # the papers' budget
"""

import argparse
import json
import time
from pathlib import Path

import numpy as np

from jaxgen import config as config_lib
from jaxgen import viz
from jaxgen.data import toy
from jaxgen.eval.gan import mode_report
from jaxgen.train import train

ROOT = Path(__file__).resolve().parents[2]
# The limited-data tools that apply to points: spectral norm in the discriminator, and lazy R1
# (gamma 0.1, every 16 steps); DiffAugment's transforms are for images.
VARIANTS = {"GAN": [], "PacGAN2": ["gan.pack=2"], "GAN+SN": ["gan.spectral_norm=True"],
            "GAN+lazyR1": ["gan.r1_weight=0.1", "gan.r1_every=16"]}
# As printed in the papers (mean +- spread over their trials): PacGAN Table 1 (10 trials,
# 400 epochs of 100,000 points, i.e. 400,000 steps) and VEEGAN Table 1 (5 trials).
PUBLISHED = {
    "ring8": [("GAN (VEEGAN paper)", "1", "99.3", ""),
              ("Unrolled GAN (VEEGAN paper)", "7.6", "35.6", ""),
              ("VEEGAN (VEEGAN paper)", "8.0", "52.9", ""),
              ("GAN (PacGAN paper)", "6.3 ± 0.5", "98.2 ± 0.2", "0.45 ± 0.09"),
              ("PacGAN2 (PacGAN paper)", "7.9 ± 0.1", "95.6 ± 2.0", "0.07 ± 0.03")],
    "grid25": [("GAN (VEEGAN paper)", "3.3", "0.5", ""),
               ("Unrolled GAN (VEEGAN paper)", "23.6", "16", ""),
               ("VEEGAN (VEEGAN paper)", "24.6", "40", ""),
               ("GAN (PacGAN paper)", "17.3 ± 0.8", "94.5 ± 0.7", "0.70 ± 0.07"),
               ("PacGAN2 (PacGAN paper)", "23.8 ± 0.7", "91.3 ± 0.8", "0.13 ± 0.04")],
}


def _config(dataset, variant, seed, args):
    width = [f"model.g_hidden={tuple([round(400 * args.width)] * 4)}",
             f"model.d_hidden={tuple([round(200 * args.width)] * 3)}"]
    return config_lib.override(
        config_lib.load(ROOT / "experiments" / "gan_ring8.py"),
        [f"data.name='{dataset}'", f"seed={seed}", f"steps={args.steps}",
         f"checkpoint_every={args.steps}", *width, *VARIANTS[variant], *(args.set or [])],
    )


def _summary(values):
    values = np.asarray(values, float)
    return f"{values.mean():.{1 if values.mean() > 1 else 2}f} ± {values.std(ddof=1):.2g}"


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--seeds", type=int, default=5)
    parser.add_argument("--steps", type=int, default=6000,
                        help="train steps per run (the papers: 400,000)")
    parser.add_argument("--width", type=float, default=0.5,
                        help="hidden widths as a fraction of the papers' (G 400, D 200)")
    parser.add_argument("--datasets", nargs="+", default=["ring8", "grid25"])
    parser.add_argument("--variants", nargs="+", default=list(VARIANTS), choices=list(VARIANTS))
    parser.add_argument("--set", action="append", metavar="KEY=VALUE",
                        help="extra config override for every run")
    parser.add_argument("--runs", default="runs/mode_collapse", help="run directories go here")
    parser.add_argument("--out", default=str(ROOT / "docs" / "results"))
    args = parser.parse_args(argv)

    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    results = []
    for dataset in args.datasets:
        panels = []
        for variant in args.variants:
            for seed in range(args.seeds):
                config = _config(dataset, variant, seed, args)
                t0 = time.perf_counter()
                result = train(config, Path(args.runs) / f"{dataset}_{variant}_seed{seed}")
                report, samples = mode_report(result.objective, result.state.eval_params,
                                              seed=10_000 + seed)
                report.update(dataset=dataset, variant=variant, seed=seed,
                              seconds=time.perf_counter() - t0,
                              steps_per_second=result.steps_per_second)
                results.append(report)
                print(json.dumps({k: v for k, v in report.items() if k != "counts"}), flush=True)
                if seed == 0:
                    panels.append((f"{variant}, seed 0: {report['modes']} modes, "
                                   f"{100 * report['high_quality']:.0f}% HQ", samples))
        centers, _ = toy.mixture_modes(dataset)
        viz.scatter_panels(panels, out / f"mode_collapse_{dataset}.png",
                           limit=1.5 if dataset == "ring8" else 5.5, reference=centers)

    for dataset in args.datasets:
        _write_table(dataset, [r for r in results if r["dataset"] == dataset], args, out)


def _write_table(dataset, results, args, out):
    (out / f"mode_collapse_{dataset}.json").write_text(json.dumps(
        {"args": vars(args), "results": results}, indent=2))
    command = (f"python experiments/studies/mode_collapse.py --datasets {dataset} "
               f"--seeds {args.seeds} --steps {args.steps} --width {args.width}")
    total = len(toy.mixture_modes(dataset)[0])
    lines = [
        f"## {dataset}: modes captured and high-quality samples",
        "",
        f"Regenerate: `{command}`. jaxgen rows: mean ± std over {args.seeds} seeds, "
        f"{args.steps:,} steps of batch 100, hidden widths x{args.width} of the protocol's "
        "(the papers: 400,000 steps at full width). Published rows as printed in the papers.",
        "",
        f"| model | modes (max {total}) | high-quality samples (%) | reverse KL |",
        "|---|---|---|---|",
    ]
    for variant in args.variants:
        rows = [r for r in results if r["variant"] == variant]
        lines.append(
            f"| **{variant} (jaxgen)** | {_summary([r['modes'] for r in rows])} | "
            f"{_summary([100 * r['high_quality'] for r in rows])} | "
            f"{_summary([r['reverse_kl'] for r in rows])} |")
    lines += [f"| {name} | {modes} | {hq} | {kl} |" for name, modes, hq, kl in
              PUBLISHED[dataset]]
    (out / f"mode_collapse_{dataset}.md").write_text("\n".join(lines) + "\n")
    print("\n".join(lines))


if __name__ == "__main__":
    main()
