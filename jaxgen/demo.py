"""The demo: train the CPU-sized VAE on the offline MNIST digits, score it, draw its pictures."""

import json
import shutil
import time
from pathlib import Path

import jax
import numpy as np

from jaxgen import config as config_lib
from jaxgen import data, viz
from jaxgen.eval import evaluate_vae
from jaxgen.sample import pictures
from jaxgen.train import train

CONFIG = "vae_mnist5k"


def run(workdir: str | Path = "runs/demo", steps: int | None = None, iwae_samples: int = 500,
        fresh: bool = False) -> dict:
    workdir = Path(workdir)
    if fresh and workdir.exists():
        if any(workdir.iterdir()) and not (workdir / "config.json").exists():
            raise FileExistsError(
                f"--fresh deletes the previous demo run, but {workdir} is not a run directory; "
                "pick another --workdir."
            )
        shutil.rmtree(workdir)
    config = config_lib.load(CONFIG)
    if steps is not None:
        config.steps = steps
    t0 = time.perf_counter()
    result = train(config, workdir)
    train_seconds = time.perf_counter() - t0
    objective, state = result.objective, result.state
    # The speed of the call that trained (an earlier one, if this call only reopened the run).
    summary = json.loads((workdir / "train_summary.json").read_text())
    params = state.eval_params

    _, images, labels = data.load_arrays(config.data.name, "test", seed=config.seed)
    t0 = time.perf_counter()
    metrics = evaluate_vae(objective, params, images, mesh=result.mesh,
                           num_samples=iwae_samples, batch_size=config.eval.batch_size)
    metrics.update(step=int(state.step), eval_seconds=time.perf_counter() - t0,
                   train_seconds=train_seconds, compile_seconds=summary["compile_seconds"],
                   steps_per_second=summary["steps_per_second"])
    (workdir / "eval.json").write_text(json.dumps(metrics, indent=2))

    key = jax.random.PRNGKey(config.seed)
    rng = np.random.default_rng(config.seed)
    written = {
        "samples": viz.save_png(viz.image_grid(np.asarray(objective.sample(params, key, 64))),
                                workdir / "samples.png"),
        "reconstructions": viz.save_png(
            viz.image_grid(pictures.reconstructions(objective, params, images[:32]), ncols=8),
            workdir / "reconstructions.png"),
    }
    pairs = rng.permutation(len(images))[:16]
    strips = pictures.interpolation_strips(objective, params, images[pairs[:8]],
                                           images[pairs[8:]], num=10)
    written["interpolation"] = viz.save_png(viz.image_grid(strips, ncols=10),
                                            workdir / "interpolation.png")
    # One test digit of each class turned into the next class: x - mean(own) + mean(next).
    firsts = [int(np.flatnonzero(labels == c)[0]) for c in range(10)]
    rows = pictures.class_arithmetic(objective, params, images, labels, 10,
                                     [(i, (c + 1) % 10) for c, i in enumerate(firsts)])
    written["arithmetic"] = viz.save_png(viz.image_grid(rows, ncols=4),
                                         workdir / "arithmetic.png")
    written["walk"] = viz.save_gif(pictures.walk_frames(objective, params, key),
                                   workdir / "walk.gif")
    written["loss_curve"] = workdir / "loss_curve.png"

    print(f"\nheld-out ELBO {metrics['elbo']:.2f} nats, IWAE NLL (K={iwae_samples}) "
          f"{metrics['iwae_nll']:.2f} nats on {metrics['num_examples']} test digits "
          f"after {metrics['step']} steps")
    print(f"train {train_seconds:.0f} s (compile {summary['compile_seconds']:.1f} s, "
          f"{summary['steps_per_second']:.1f} steps/s), eval {metrics['eval_seconds']:.0f} s")
    for name, path in written.items():
        print(f"  {name:16s} {path}")
    return metrics
