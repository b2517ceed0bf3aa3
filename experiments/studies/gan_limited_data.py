"""GANs on limited data: the DCGAN of `experiments/dcgan_mnist5k.py` (4,000 training digits)
with spectral norm, DiffAugment and ADA, several seeds at the same step budget.

Each run is scored as `python -m jaxgen eval` scores an image GAN, from 2,000 samples of its
EMA generator: the library classifier's feature Frechet distance to the 1,000 held-out digits
(the `fd` of the diffusion tables), the class histogram (its smallest class share and its KL
to uniform) and the share recognised with confidence >= 0.9. The table (mean ± standard
deviation over seeds) and each variant's sample grid (seed 0) go to docs/results/.

    python experiments/studies/gan_limited_data.py                     # 5 variants x 3 seeds
    python experiments/studies/gan_limited_data.py --variants baseline +ADA --seeds 1
    python experiments/studies/gan_limited_data.py --variants default --steps 6000

Every variant starts from the plain GAN (no spectral norm, augmentation, ADA or R1), whatever
the config's defaults; `default` is the config as shipped. Each run's scores are kept beside it
(`study_scores.json`), so a rerun only tabulates, and the results file merges the rows of every
invocation (several can run side by side on different variants).
"""

import argparse
import json
import time
from pathlib import Path

import jax
import numpy as np

from jaxgen import config as config_lib
from jaxgen import viz
from jaxgen.eval.gan import evaluate_run
from jaxgen.train import train
from jaxgen.train.objectives import EvalOptions
from jaxgen.train.run import load_run

ROOT = Path(__file__).resolve().parents[2]
AUGMENT = "gan.augment='color,translation,cutout'"
PLAIN = ["gan.spectral_norm=False", "gan.augment=''", "gan.ada_target=0.0", "gan.r1_weight=0.0"]
VARIANTS = {  # each from PLAIN, whatever the config's defaults; "default" is the config as is
    "baseline": PLAIN,
    "+SN": [*PLAIN, "gan.spectral_norm=True"],
    "+DiffAugment": [*PLAIN, AUGMENT],
    "+ADA": [*PLAIN, AUGMENT, "gan.ada_target=0.6"],
    "+SN +DiffAugment": [*PLAIN, "gan.spectral_norm=True", AUGMENT],
    "+SN +ADA": [*PLAIN, "gan.spectral_norm=True", AUGMENT, "gan.ada_target=0.6"],
    "default": [],
}
COLUMNS = ("fd", "smallest_class_share", "kl_to_uniform", "confident")


def _config(variant: str, seed: int, args):
    return config_lib.override(
        config_lib.load(Path(args.config)),
        [f"seed={seed}", f"steps={args.steps}", f"checkpoint_every={args.steps}",
         "sample_every=0", *VARIANTS[variant], *(args.set or [])])


def _summary(values) -> str:
    values = np.asarray(values, float)
    spread = f" ± {values.std(ddof=1):.2g}" if len(values) > 1 else ""
    return f"{values.mean():.3g}{spread}"


def _speed(workdir: Path) -> dict:
    """The run's training speed as its summary recorded it when it trained (a rerun that only
    restores the finished run does not change it)."""
    summary = json.loads((workdir / "train_summary.json").read_text())
    return {"steps_per_second": summary["steps_per_second"]}


def _run(variant: str, seed: int, args, out: Path) -> dict:
    """Trains (or resumes, or reuses) one run and scores it; the scores are kept in the run
    directory, so a rerun of the study only tabulates."""
    slug = variant.replace(" ", "").replace("+", "_")
    workdir = Path(args.runs) / f"{slug}_{args.steps}_{seed}"
    cached = workdir / "study_scores.json"
    if cached.exists():
        row = json.loads(cached.read_text())
        if row["num_samples"] == args.samples and row["step"] == args.steps:
            return {**row, **_speed(workdir)}
    config = _config(variant, seed, args)
    t0 = time.perf_counter()
    result = train(config, workdir)
    seconds = time.perf_counter() - t0
    scores = evaluate_run(load_run(workdir), EvalOptions(num=args.samples))
    row = {"variant": variant, "seed": seed, "steps": args.steps, "seconds_this_call": seconds,
           "ada_p": float(result.state.params.get("ada_p", np.nan)),
           "overrides": [*VARIANTS[variant], *(args.set or [])], **scores, **_speed(workdir)}
    cached.write_text(json.dumps(row, indent=1))
    if seed == 0:
        grid = np.asarray(result.objective.sample(result.state.eval_params,
                                                  jax.random.PRNGKey(0), 64))
        viz.save_png(viz.image_grid(grid, 8),
                     out / f"gan_limited_data_{slug.strip('_')}_{args.steps}.png")
    return row


def table(rows: list[dict]) -> str:
    """Markdown: one line per (variant, steps), mean ± std over its seeds."""
    lines = ["| variant | steps | seeds | steps/s | FD (classifier features) | smallest "
             "class share | KL to uniform | confident >= 0.9 | final ADA p |",
             "|---|---|---|---|---|---|---|---|---|"]
    groups = {}
    for row in rows:
        groups.setdefault((row["variant"], row["steps"]), []).append(row)
    for (variant, steps), mine in groups.items():
        cells = [_summary([r[c] for r in mine]) for c in COLUMNS]
        ada = _summary([r["ada_p"] for r in mine]) if np.isfinite(mine[0]["ada_p"]) else ""
        speed = _summary([r.get("steps_per_second", np.nan) for r in mine])
        lines.append(f"| {variant} | {steps} | {len(mine)} | {speed} | " + " | ".join(cells)
                     + f" | {ada} |")
    return "\n".join(lines) + "\n"


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--seeds", type=int, default=3)
    parser.add_argument("--steps", type=int, default=3000)
    parser.add_argument("--samples", type=int, default=2000)
    parser.add_argument("--variants", nargs="+", default=list(VARIANTS)[:5],
                        choices=list(VARIANTS))
    parser.add_argument("--config", default=str(ROOT / "experiments" / "dcgan_mnist5k.py"))
    parser.add_argument("--set", action="append", metavar="KEY=VALUE",
                        help="extra config override for every run")
    parser.add_argument("--runs", default="runs/gan_limited_data", help="run directories")
    parser.add_argument("--out", default=str(ROOT / "docs" / "results"))
    args = parser.parse_args(argv)

    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    mine = []
    for variant in args.variants:
        for seed in range(args.seeds):
            mine.append(_run(variant, seed, args, out))
            print(json.dumps(mine[-1]))
    # Merged with the rows of earlier invocations (other variants or step budgets), so that
    # several can run side by side; a row of the same (variant, steps, seed) is replaced.
    path = out / "gan_limited_data.json"
    rows = json.loads(path.read_text()) if path.exists() else []
    done = {(r["variant"], r["steps"], r["seed"]) for r in mine}
    rows = sorted([r for r in rows if (r["variant"], r["steps"], r["seed"]) not in done] + mine,
                  key=lambda r: (list(VARIANTS).index(r["variant"]), r["steps"], r["seed"]))
    path.write_text(json.dumps(rows, indent=1))
    text = (f"DCGAN of `experiments/dcgan_mnist5k.py` on mnist5k (4,000 training digits), "
            f"{args.samples} samples per run scored against the 1,000 held-out digits; "
            "mean ± std over seeds; steps/s as each run recorded it (in this study two ran at "
            "a time on the 2 cores).\n\n" + table(rows))
    (out / "gan_limited_data.md").write_text(text)
    print(text)


if __name__ == "__main__":
    main()
