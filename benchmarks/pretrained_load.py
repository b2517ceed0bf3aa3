"""Stable Diffusion 1.5's U-Net at full size, read by jaxgen from a diffusers folder: load time,
peak host memory, forward time beside PyTorch's, and parity.

    python -m benchmarks.pretrained_load --size 64 --out benchmarks/results/sd15_load.json

Builds diffusers' `UNet2DConditionModel` from SD 1.5's config (859,520,964 parameters, random
weights: nothing is downloaded), saves it as safetensors, times one PyTorch forward at
`--size` x `--size` latents with a 77 x 768 text context, then in a fresh process (so its peak
resident memory is jaxgen's alone) loads the folder with `jaxgen.pretrained.load_unet` and
runs the same forward. Needs torch and diffusers (`pip install -e ".[bench]"`).
"""

import argparse
import json
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

from benchmarks.sd15 import SD15_UNET


def _peak_rss_gib() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 2**20  # KiB on Linux


def jaxgen_side(folder: Path, inputs: Path, out: Path) -> dict:
    """Load and run in this process; returns its measurements, writes the output to `out`."""
    import jax
    import jax.numpy as jnp
    from flax import nnx

    from jaxgen.models.unet import UNet
    from jaxgen.pretrained import load_unet

    start = time.perf_counter()
    kwargs, params = load_unet(folder)
    jax.block_until_ready(params)
    load_seconds = time.perf_counter() - start
    rss_after_load = _peak_rss_gib()
    graphdef = nnx.graphdef(nnx.eval_shape(lambda: UNet(**kwargs, rngs=nnx.Rngs(0))))
    data = np.load(inputs)

    @jax.jit
    def forward(params, x, t, context):
        return nnx.merge(graphdef, params)(x, t, None, context)

    args = (jnp.asarray(data["x"].transpose(0, 2, 3, 1)), jnp.asarray(data["t"], jnp.float32),
            jnp.asarray(data["context"]))
    start = time.perf_counter()
    result = forward(params, *args).block_until_ready()
    first = time.perf_counter() - start
    start = time.perf_counter()
    result = forward(params, *args).block_until_ready()
    steady = time.perf_counter() - start
    np.save(out, np.asarray(result).transpose(0, 3, 1, 2))
    count = sum(p.size for p in jax.tree.leaves(params))
    return {"parameters": int(count), "load_seconds": round(load_seconds, 2),
            "peak_rss_gib_after_load": round(rss_after_load, 2),
            "peak_rss_gib": round(_peak_rss_gib(), 2),
            "jaxgen_forward_first_seconds": round(first, 2),
            "jaxgen_forward_seconds": round(steady, 2)}


def measure(size: int = 64, workdir: Path | None = None) -> dict:
    import torch
    from diffusers import UNet2DConditionModel

    workdir = Path(workdir or tempfile.mkdtemp(prefix="sd15_"))
    torch.manual_seed(0)
    config = {k: v for k, v in SD15_UNET.items() if not k.startswith("_")}
    unet = UNet2DConditionModel(**config).eval()
    start = time.perf_counter()
    unet.save_pretrained(workdir / "unet", safe_serialization=True)
    save_seconds = time.perf_counter() - start
    generator = torch.Generator().manual_seed(1)
    x = torch.randn(1, 4, size, size, generator=generator)
    t = torch.tensor([500])
    context = torch.randn(1, 77, 768, generator=generator)
    np.savez(workdir / "inputs.npz", x=x.numpy(), t=t.numpy(), context=context.numpy())
    with torch.inference_mode():
        unet(x, t, encoder_hidden_states=context)  # warm-up
        start = time.perf_counter()
        reference = unet(x, t, encoder_hidden_states=context).sample.numpy()
        torch_seconds = time.perf_counter() - start
    del unet
    result = subprocess.run(
        [sys.executable, "-m", "benchmarks.pretrained_load", "--jaxgen-side", str(workdir)],
        capture_output=True, text=True, check=False)
    if result.returncode:
        raise RuntimeError(f"the jaxgen side failed:\n{result.stderr[-3000:]}")
    row = json.loads(result.stdout.strip().splitlines()[-1])
    ours = np.load(workdir / "jaxgen_output.npy")
    weights = workdir / "unet" / "diffusion_pytorch_model.safetensors"
    row.update({
        "model": "sd15-unet", "latent_size": size, "weights_gib": round(
            weights.stat().st_size / 2**30, 2),
        "diffusers_save_seconds": round(save_seconds, 2),
        "torch_forward_seconds": round(torch_seconds, 2),
        "max_abs_diff": float(np.abs(ours - reference).max()),
        "output_scale": float(np.abs(reference).max()),
        "workdir": str(workdir)})
    return row


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.pretrained_load",
                                     description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--size", type=int, default=64, help="latent height and width")
    parser.add_argument("--workdir", help="where the converted folder goes (default: a temp)")
    parser.add_argument("--out", help="append the row to this JSON list")
    parser.add_argument("--jaxgen-side", metavar="DIR", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.jaxgen_side:
        folder = Path(args.jaxgen_side)
        print(json.dumps(jaxgen_side(folder / "unet", folder / "inputs.npz",
                                     folder / "jaxgen_output.npy")))
        return
    row = measure(args.size, args.workdir)
    print(json.dumps(row, indent=2))
    if args.out:
        path = Path(args.out)
        rows = json.loads(path.read_text()) if path.exists() else []
        path.write_text(json.dumps([*rows, row], indent=2))


if __name__ == "__main__":
    main()
