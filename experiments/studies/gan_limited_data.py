"""GANs on limited data: the DCGAN of `experiments/dcgan_mnist5k.py` (4,000 training digits)
with spectral norm, DiffAugment and ADA, several seeds at the same step budget.

Each run is scored as `python -m jaxgen eval` scores an image GAN, from 2,000 samples of its
EMA generator: the library classifier's feature Frechet distance to the 1,000 held-out digits
(the `fd` of the diffusion tables), the class histogram (its smallest class share and its KL
to uniform) and the share recognised with confidence >= 0.9. The table (mean ± standard
deviation over seeds) and each variant's sample grid (seed 0) go to docs/results/.

    python experiments/studies/gan_limited_data.py                     # 5 variants x 3 seeds
    python experiments/studies/gan_limited_data.py --variants baseline +ADA --seeds 1
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
VARIANTS = {
    "baseline": [],
    "+SN": ["gan.spectral_norm=True"],
    "+DiffAugment": [AUGMENT],
    "+ADA": [AUGMENT, "gan.ada_target=0.6"],
    "+SN +DiffAugment": ["gan.spectral_norm=True", AUGMENT],
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


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--seeds", type=int, default=3)
    parser.add_argument("--steps", type=int, default=3000)
    parser.add_argument("--samples", type=int, default=2000)
    parser.add_argument("--variants", nargs="+", default=list(VARIANTS), choices=list(VARIANTS))
    parser.add_argument("--config", default=str(ROOT / "experiments" / "dcgan_mnist5k.py"))
    parser.add_argument("--set", action="append", metavar="KEY=VALUE",
                        help="extra config override for every run")
    parser.add_argument("--runs", default="runs/gan_limited_data", help="run directories")
    parser.add_argument("--out", default=str(ROOT / "docs" / "results"))
    args = parser.parse_args(argv)

    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    rows = []
    for variant in args.variants:
        for seed in range(args.seeds):
            config = _config(variant, seed, args)
            workdir = Path(args.runs) / f"{variant.replace(' ', '').replace('+', '_')}_{seed}"
            t0 = time.perf_counter()
            result = train(config, workdir)
            seconds = time.perf_counter() - t0
            scores = evaluate_run(load_run(workdir), EvalOptions(num=args.samples))
            params = result.state.eval_params
            rows.append({"variant": variant, "seed": seed, "steps": args.steps,
                         "train_seconds": seconds, "ada_p": float(
                             result.state.params.get("ada_p", np.nan)), **scores})
            print(json.dumps(rows[-1]))
            if seed == 0:
                grid = np.asarray(result.objective.sample(params, jax.random.PRNGKey(0), 64))
                viz.save_png(viz.image_grid(grid, 8),
                             out / f"gan_limited_data_{workdir.name[:-2]}.png")
    (out / "gan_limited_data.json").write_text(json.dumps(rows, indent=1))
    lines = [f"DCGAN on mnist5k, {args.steps} steps, {args.seeds} seeds, {args.samples} samples "
             "each; mean ± std over seeds.", "",
             "| variant | FD (classifier features) | smallest class share | KL to uniform | "
             "confident >= 0.9 | final ADA p |", "|---|---|---|---|---|---|"]
    for variant in args.variants:
        mine = [r for r in rows if r["variant"] == variant]
        cells = [_summary([r[c] for r in mine]) for c in COLUMNS]
        ada = _summary([r["ada_p"] for r in mine]) if "ADA" in variant else ""
        lines.append(f"| {variant} | " + " | ".join(cells) + f" | {ada} |")
    (out / "gan_limited_data.md").write_text("\n".join(lines) + "\n")
    print("\n".join(lines))


if __name__ == "__main__":
    main()
