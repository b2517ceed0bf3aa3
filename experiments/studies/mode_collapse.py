"""Mode collapse measured: GAN against PacGAN, spectral norm and lazy R1 on ring8 and grid25,
several seeds, next to the published tables.

Protocol (VEEGAN, Srivastava et al. 2017, section 5.1; PacGAN, Lin et al. 2018, section 5.1 and
its code): the networks, loss, update order, optimizer and batch of `experiments/gan_ring8.py`;
after training, 2,500 samples; a sample is high quality within 3 standard deviations of its
nearest mode; a mode is captured when it is the nearest mode of at least one high-quality sample.
Differences from the protocol are the command-line defaults (`--steps`, `--width`), chosen for a
2-core CPU, and are written into the table.

    python experiments/studies/mode_collapse.py                    # the table in docs/results/
    python experiments/studies/mode_collapse.py --datasets ring8 --variants GAN+SN  # one more row
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
    "ring8": [("GAN (VEEGAN paper)", 5, "1", "99.3", ""),
              ("Unrolled GAN (VEEGAN paper)", 5, "7.6", "35.6", ""),
              ("VEEGAN (VEEGAN paper)", 5, "8.0", "52.9", ""),
              ("GAN (PacGAN paper)", 10, "6.3 ± 0.5", "98.2 ± 0.2", "0.45 ± 0.09"),
              ("PacGAN2 (PacGAN paper)", 10, "7.9 ± 0.1", "95.6 ± 2.0", "0.07 ± 0.03")],
    "grid25": [("GAN (VEEGAN paper)", 5, "3.3", "0.5", ""),
               ("Unrolled GAN (VEEGAN paper)", 5, "23.6", "16", ""),
               ("VEEGAN (VEEGAN paper)", 5, "24.6", "40", ""),
               ("GAN (PacGAN paper)", 10, "17.3 ± 0.8", "94.5 ± 0.7", "0.70 ± 0.07"),
               ("PacGAN2 (PacGAN paper)", 10, "23.8 ± 0.7", "91.3 ± 0.8", "0.13 ± 0.04")],
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
    mean = f"{values.mean():.{1 if values.mean() > 1 else 2}f}"
    return mean if len(values) == 1 else f"{mean} ± {values.std(ddof=1):.2g}"


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
    mine = []
    for dataset in args.datasets:
        panels = []
        for variant in args.variants:
            for seed in range(args.seeds):
                config = _config(dataset, variant, seed, args)
                t0 = time.perf_counter()
                result = train(config, Path(args.runs) / f"{dataset}_{variant}_seed{seed}")
                report, samples = mode_report(result.objective, result.state.eval_params,
                                              seed=10_000 + seed)
                report.update(dataset=dataset, variant=variant, seed=seed, steps=args.steps,
                              width=args.width, seconds=time.perf_counter() - t0,
                              steps_per_second=result.steps_per_second)
                mine.append(report)
                print(json.dumps({k: v for k, v in report.items() if k != "counts"}), flush=True)
                if seed == 0:
                    panels.append((f"{variant}, seed 0: {report['modes']} modes, "
                                   f"{100 * report['high_quality']:.0f}% HQ", samples))
        centers, _ = toy.mixture_modes(dataset)
        slug = "_".join(variant.replace("+", "-") for variant in args.variants)
        viz.scatter_panels(panels, out / f"mode_collapse_{dataset}_{slug}_{args.steps}.png",
                           limit=1.5 if dataset == "ring8" else 5.5, reference=centers)

    for dataset in args.datasets:
        _write_table(dataset, [r for r in mine if r["dataset"] == dataset], out)


def _key(row):
    return row["variant"], row["steps"], row["width"], row["seed"]


def merge(path: Path, mine: list[dict]) -> list[dict]:
    """The rows of ``path`` (earlier invocations: other variants, budgets or widths) with
    ``mine``; a row of the same (variant, steps, width, seed) is replaced, so that a study
    can be extended one variant at a time."""
    rows = []
    if path.exists():
        saved = json.loads(path.read_text())
        # Files written before rows carried their own budget hold it once, in "args".
        defaults = {k: saved.get("args", {}).get(k) for k in ("steps", "width")}
        rows = [{**defaults, **row} for row in saved["results"]]
    done = {_key(r) for r in mine}
    order = list(VARIANTS)
    return sorted([r for r in rows if _key(r) not in done] + mine,
                  key=lambda r: (order.index(r["variant"]), r["steps"], r["width"], r["seed"]))


def table(dataset: str, rows: list[dict]) -> str:
    """Markdown: one line per (variant, steps, width), mean ± std over its seeds, then the
    published rows."""
    total = len(toy.mixture_modes(dataset)[0])
    lines = [f"| model | steps | width | seeds | modes (max {total}) | high-quality samples (%) "
             "| reverse KL |", "|---|---|---|---|---|---|---|"]
    groups = {}
    for row in rows:
        groups.setdefault(_key(row)[:3], []).append(row)
    for (variant, steps, width), group in groups.items():
        lines.append(
            f"| **{variant} (jaxgen)** | {steps:,} | x{width} | {len(group)} | "
            f"{_summary([r['modes'] for r in group])} | "
            f"{_summary([100 * r['high_quality'] for r in group])} | "
            f"{_summary([r['reverse_kl'] for r in group])} |")
    lines += [f"| {name} | 400,000 | x1 | {trials} | {modes} | {hq} | {kl} |"
              for name, trials, modes, hq, kl in PUBLISHED[dataset]]
    return "\n".join(lines) + "\n"


def _write_table(dataset, mine, out):
    path = out / f"mode_collapse_{dataset}.json"
    rows = merge(path, mine)
    path.write_text(json.dumps({"results": rows}, indent=2))
    text = "\n".join([
        f"## {dataset}: modes captured and high-quality samples",
        "",
        "Regenerate a row: `python experiments/studies/mode_collapse.py --datasets "
        f"{dataset} --variants VARIANT --seeds SEEDS --steps STEPS --width WIDTH`; the rows of "
        "earlier invocations are kept (a rerun of the same variant, steps, width and seed "
        "replaces its row). jaxgen rows: mean ± std over seeds, batch 100, hidden widths as a "
        "fraction of the protocol's; each invocation's seed-0 scatter plots are "
        f"`mode_collapse_{dataset}_<variants>_<steps>.png`. Published rows as printed in the "
        "papers (400,000 steps at full width; seeds: their trials).",
        "",
        table(dataset, rows)])
    (out / f"mode_collapse_{dataset}.md").write_text(text)
    print(text)


if __name__ == "__main__":
    main()
