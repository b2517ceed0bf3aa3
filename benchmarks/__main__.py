"""python -m benchmarks sample|train|all|scale|layers|fid|peak|table

Times jaxgen's models on random inputs of their configs' shapes (no dataset, no download):
compile time apart, then the median (and min-max) of repeated steady-state calls, each ended by
`block_until_ready`; throughput (images/s for sampling, examples/s and steps/s for training);
model FLOPs from XLA's cost analysis and MFU against the device's datasheet peak and against a
measured large-matmul peak; the compiled program's memory (and the device's peak where the
backend keeps one). `--torch eager,compile` adds diffusers' UNet2DModel (DDPM's CIFAR-10
network, the same as `--model unet-cifar10`) timed in the same run, with the jaxgen/PyTorch
ratio per row; `--model sd15` is Stable Diffusion 1.5's U-Net (random weights) sampling at
`--size` pixels, beside diffusers' UNet2DConditionModel the same way. `layers` times each
convolution of a diffusion U-Net alone (forward, input gradient, kernel gradient), with
`--torch` beside PyTorch's on the same shapes. `fid` times FID's parts (Inception-v3
featurisation, the statistics' update per batch, the Frechet distance) and derives from them
the cost of a 50,000-sample FID.

    python -m benchmarks sample --model unet-cifar10 --batch 256 --steps 50 --sampler ddim \\
        --dtype bf16 --torch eager,compile --out benchmarks/results/h100.json
    python -m benchmarks sample --model sd15 --size 512 --batch 8 --steps 25 --guidance 6.5 \\
        --dtype bf16 --torch eager,compile
    python -m benchmarks train --model unet-cifar10 --batch 128 --dtype bf16
    python -m benchmarks scale --model unet-mnist --task sample --batches 8,16,32 \\
        --device-counts 1,2,4,8
    python -m benchmarks layers --model unet-cifar10 --batch 4 --torch
    python -m benchmarks fid --batch 256 --size 32 --dtype bf16 --metric-samples 10000
    python -m benchmarks table benchmarks/results/cpu.json
"""

import argparse
import json
import sys


def _common(parser, task: str) -> None:
    parser.add_argument("--model", help="unet-cifar10 | unet-mnist | vae | dcgan | ldm"
                        + (" | sd15 (Stable Diffusion 1.5's U-Net)" if task == "sample" else ""))
    parser.add_argument("--config", help="any experiment config instead of --model")
    parser.add_argument("--set", action="append", default=[], metavar="KEY=VALUE",
                        help="config override, as for `python -m jaxgen train`")
    parser.add_argument("--dtype", choices=("fp32", "bf16"), default="fp32",
                        help="compute dtype (weights stay fp32)")
    if task != "scale":
        parser.add_argument("--devices", type=int, help="shard over the first N devices (all)")
    parser.add_argument("--repeats", type=int, default=5, help="timed repeats (median reported)")
    parser.add_argument("--torch", default="", metavar="MODES",
                        help="also time diffusers' U-Net: comma list of eager,compile "
                        "(with --model unet-cifar10 or sd15; needs pip install -e '.[bench]')")
    parser.add_argument("--no-peak", action="store_true",
                        help="skip the measured matmul peak (MFU against the datasheet only)")
    parser.add_argument("--out", help="append the rows to this results JSON (one per device)")
    parser.add_argument("--profile", metavar="DIR",
                        help="also trace one more call of each jaxgen program with "
                        "jax.profiler into DIR (view with TensorBoard or Perfetto)")
    if task in ("sample", "all", "scale"):
        parser.add_argument("--steps", type=int, help="sampler steps (the config's)")
        parser.add_argument("--sampler", help="ddim | ddpm | dpm_solver | euler | heun")
        parser.add_argument("--guidance", type=float,
                            help="classifier-free guidance scale w (a doubled batch; "
                            "diffusers' guidance_scale is 1 + w); unset: no guidance")
    if task == "sample":
        parser.add_argument("--size", type=int, default=512,
                            help="image height and width of --model sd15 (latents: 1/8)")
    if task in ("train", "all", "scale"):
        parser.add_argument("--calls", type=int, default=5, help="train steps per timed repeat")


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="python -m benchmarks", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = parser.add_subparsers(dest="command", required=True)
    for task, text in (("sample", "sampling throughput (images/s)"),
                       ("train", "train-step speed (steps/s, examples/s)"),
                       ("all", "sample and train")):
        p = sub.add_parser(task, help=text, description=text)
        _common(p, task)
        p.add_argument("--batch", type=int, required=True, help="global batch")
    scale = sub.add_parser("scale", help="throughput against batch size and device count")
    _common(scale, "scale")
    scale.add_argument("--task", choices=("sample", "train"), default="sample")
    scale.add_argument("--batches", required=True, help="comma list of global batches")
    scale.add_argument("--device-counts", default="", help="comma list of device counts "
                       "(each batch divisible by each); default: all devices only")
    layers = sub.add_parser(
        "layers", help="every convolution of a diffusion U-Net timed alone",
        description="Each distinct convolution of one forward of a diffusion model (read from "
        "its traced program, with how many times it runs), timed alone: forward, input "
        "gradient, kernel gradient; with --torch, the same shapes in PyTorch eager. Where a "
        "train step's time goes, layer by layer.")
    layers.add_argument("--model", help="unet-cifar10 | unet-mnist")
    layers.add_argument("--config", help="any diffusion experiment config instead of --model")
    layers.add_argument("--set", action="append", default=[], metavar="KEY=VALUE",
                        help="config override, as for `python -m jaxgen train`")
    layers.add_argument("--dtype", choices=("fp32", "bf16"), default="fp32")
    layers.add_argument("--batch", type=int, required=True, help="the network's batch")
    layers.add_argument("--repeats", type=int, default=5, help="timed repeats (median reported)")
    layers.add_argument("--calls", type=int, default=3, help="calls per timed repeat")
    layers.add_argument("--torch", action="store_true",
                        help="also time each shape in PyTorch eager (needs torch)")
    layers.add_argument("--out", help="append the rows to this results JSON (one per device)")
    fid = sub.add_parser(
        "fid", help="FID's cost: Inception featurisation (images/s), statistics, distance",
        description="pytorch-fid's Inception-v3 (random weights) featurising uint8 images "
        "[batch, size, size, 3] (the resize to 299 x 299 included) sharded over the devices: "
        "images/s, FLOPs per image, MFU; the time of a FeatureStatistics.update per batch and "
        "of frechet_distance at D = 2048 (host, float64); and, derived from those rows, the "
        "cost of a --num-sample FID on this device.")
    fid.add_argument("--batch", type=int, required=True, help="global batch of images")
    fid.add_argument("--size", type=int, default=32,
                     help="image height and width before the resize to 299 (32: CIFAR-10)")
    fid.add_argument("--dtype", choices=("fp32", "bf16"), default="fp32",
                     help="the network's compute dtype (weights stay fp32)")
    fid.add_argument("--devices", type=int, help="shard over the first N devices (all)")
    fid.add_argument("--repeats", type=int, default=5, help="timed repeats (median reported)")
    fid.add_argument("--num", type=int, default=50_000,
                     help="samples of the FID whose cost is estimated (50000)")
    fid.add_argument("--metric-samples", type=int, default=0, metavar="N",
                     help="also time KID (100 subsets of 1000) and precision/recall (k=3) "
                     "between two sets of N x 2048 random features (e.g. 10000; 0: skip)")
    fid.add_argument("--no-peak", action="store_true",
                     help="skip the measured matmul peak (MFU against the datasheet only)")
    fid.add_argument("--out", help="append the rows to this results JSON (one per device)")
    peak = sub.add_parser("peak", help="the measured large-matmul FLOP/s of device 0")
    peak.add_argument("--dtype", choices=("fp32", "bf16"), default="bf16")
    peak.add_argument("--size", type=int, help="matrix side (8192; 1024 on CPU)")
    table = sub.add_parser("table", help="Markdown table of results files")
    table.add_argument("files", nargs="+")
    return parser


def _mfu(rows, args) -> None:
    import jax

    from benchmarks import peaks

    kind = jax.devices()[0].device_kind
    # Fake CPU devices share one machine's cores, which the matmul peak already uses in full.
    per_machine = jax.default_backend() == "cpu"
    measured = {}
    for row in rows:
        if not row.get("flops_per_call"):
            continue
        dtype = {"fp32": "float32", "bf16": "bfloat16"}[row["dtype"]]
        achieved = row["flops_per_call"] / row["seconds_median"]
        row["flops_per_second"] = achieved
        sheet = peaks.datasheet_peak(kind, dtype)
        chips = 1 if per_machine else row["devices"]
        row["mfu_datasheet"] = achieved / (sheet * chips) if sheet else None
        if not args.no_peak:
            if dtype not in measured:
                measured[dtype] = peaks.measured_matmul_peak(dtype)
            row["matmul_peak_flops"] = measured[dtype]
            row["mfu_measured"] = achieved / (measured[dtype] * chips)


def _jaxgen_rows(args, task: str, batches, device_counts) -> list[dict]:
    from benchmarks import harness, jaxgen_bench

    guidance = getattr(args, "guidance", None)
    if args.model == "sd15":
        return _sd15_rows(args, batches, device_counts)
    rows = []
    for devices in device_counts:
        for batch in batches:
            config = jaxgen_bench.load_config(args.model, args.config, args.set, args.dtype,
                                              guidance)
            if task == "sample":
                row = jaxgen_bench.bench_sample(config, batch, sampler=args.sampler,
                                                steps=args.steps, guidance=guidance,
                                                devices=devices, repeats=args.repeats)
            else:
                row = jaxgen_bench.bench_train(config, batch, devices=devices,
                                               repeats=args.repeats, calls=args.calls)
            if args.profile:
                jaxgen_bench.profile(row.pop("call"), args.profile)
            row.pop("call", None)
            peak = harness.device_peak_bytes()
            rows.append({"framework": "jaxgen", "mode": "jit", "model": args.model or args.config,
                         "dtype": args.dtype, **row,
                         **({"device_peak_bytes": peak} if peak else {})})
    return rows


def _sd15_rows(args, batches, device_counts) -> list[dict]:
    from benchmarks import jaxgen_bench, sd15

    if args.command != "sample" or args.set or args.config:
        raise ValueError("--model sd15 times sampling (python -m benchmarks sample), with no "
                         "--set or --config")
    rows = []
    for devices in device_counts:
        for batch in batches:
            row = sd15.bench_jaxgen(batch, args.size, args.steps or 25, args.sampler,
                                    args.guidance, jaxgen_bench.DTYPES[args.dtype], devices,
                                    args.repeats)
            rows.append({"framework": "jaxgen", "mode": "jit", "model": "sd15",
                         "dtype": args.dtype, **row})
    return rows


def _torch_modes(args) -> list[str]:
    """The PyTorch modes asked for, checked before anything is timed."""
    from benchmarks import torch_ref

    modes = [m for m in args.torch.split(",") if m]
    if not modes:
        return []
    if args.model not in ("unet-cifar10", "sd15") or args.set:
        raise ValueError("--torch compares DDPM's CIFAR-10 U-Net or SD 1.5's: use it with "
                         "--model unet-cifar10 or sd15 and no --set")
    if args.model == "sd15":
        from benchmarks import sd15

        sd15.check_sampler(args.sampler)
    elif getattr(args, "sampler", None) not in (None, "ddim"):
        raise ValueError("the PyTorch reference of unet-cifar10 samples with DDIM only")
    if any(m not in ("eager", "compile") for m in modes):
        raise ValueError(f"--torch takes eager and/or compile, got {args.torch!r}")
    problem = torch_ref.available()
    if problem:
        raise RuntimeError(f"--torch: {problem}")
    return modes


def _torch_rows(args, modes: list[str], task: str, batch: int) -> list[dict]:
    from benchmarks import jaxgen_bench, torch_ref

    rows = []
    for mode in modes:
        if args.model == "sd15":
            from benchmarks import sd15

            row = sd15.bench_torch(batch, args.size, args.steps or 25, args.sampler,
                                   args.guidance, jaxgen_bench.DTYPES[args.dtype], mode,
                                   args.repeats)
            rows.append({"framework": "pytorch", "mode": mode, "model": "sd15",
                         "dtype": args.dtype, **row})
            continue
        if task == "sample":
            steps = args.steps or jaxgen_bench.load_config(
                "unet-cifar10", None, [], args.dtype, None).sample.steps
            row = torch_ref.bench_sample(batch, steps, args.dtype, mode, args.guidance,
                                         args.repeats)
        else:
            # the same work as jaxgen's step: the config's dropout and EMA
            config = jaxgen_bench.load_config("unet-cifar10", None, [], args.dtype, None)
            row = torch_ref.bench_train(batch, args.dtype, mode, args.repeats, args.calls,
                                        dropout=config.model.dropout,
                                        ema_decay=config.ema_decay)
        rows.append({"framework": "pytorch", "mode": mode, "model": "unet-cifar10",
                     "dtype": args.dtype, **row})
    return rows


def _layers(args, argv) -> int:
    from benchmarks import harness, jaxgen_bench, report, torch_ref

    if args.torch and (problem := torch_ref.available()):
        raise RuntimeError(f"--torch: {problem}")
    config = jaxgen_bench.load_config(args.model, args.config, args.set, args.dtype, None)
    layers = jaxgen_bench.conv_layers(config, args.batch)  # checks the family first
    model = args.model or args.config
    rows = []
    for layer in layers:
        rows.append({"framework": "jaxgen", "mode": "jit", "model": model, "batch": args.batch,
                     **jaxgen_bench.bench_conv_layer(layer, args.repeats, args.calls)})
        if args.torch:
            rows.append({"framework": "pytorch", "mode": "eager", "model": model,
                         "batch": args.batch,
                         **torch_ref.bench_conv_layer(layer, args.repeats, args.calls)})
    if args.out:
        report.add_rows(args.out, harness.environment(argv), rows)
    print(report.layers_markdown(rows), end="")
    return 0


def _fid(args, argv) -> int:
    from benchmarks import fid_bench, harness, report

    rows = fid_bench.fid_rows(args.batch, args.size, args.dtype, args.devices, args.repeats,
                              args.num, args.metric_samples)
    _mfu(rows, args)
    if args.out:
        report.add_rows(args.out, harness.environment(argv), rows)
    print(report.fid_markdown(rows), end="")
    return 0


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    args = _parser().parse_args(argv)
    try:
        return _run(args, argv)
    except (ValueError, RuntimeError, KeyError, FileNotFoundError) as e:
        print(f"error: {e}", file=sys.stderr)
        return 1


def _run(args, argv) -> int:
    from benchmarks import harness, report

    if args.command == "table":
        for path in args.files:
            with open(path) as f:
                print(report.results_page(json.load(f)), end="")
        return 0
    if args.command == "peak":
        import jax

        from benchmarks import peaks

        dtype = {"fp32": "float32", "bf16": "bfloat16"}[args.dtype]
        kind = jax.devices()[0].device_kind
        measured = peaks.measured_matmul_peak(dtype, args.size)
        sheet = peaks.datasheet_peak(kind, dtype)
        print(json.dumps({"device": kind, "dtype": dtype, "measured_flops": measured,
                          "datasheet_flops": sheet,
                          "measured_over_datasheet": measured / sheet if sheet else None}))
        return 0
    if args.command == "layers":
        return _layers(args, argv)
    if args.command == "fid":
        return _fid(args, argv)
    if args.command == "scale":
        tasks = [args.task]
        batches = [int(b) for b in args.batches.split(",")]
        counts = [int(c) for c in args.device_counts.split(",") if c] or [None]
    else:
        tasks = ["sample", "train"] if args.command == "all" else [args.command]
        batches, counts = [args.batch], [args.devices]
    modes = _torch_modes(args)
    rows = []
    for task in tasks:
        rows += _jaxgen_rows(args, task, batches, counts)
        for batch in batches:
            rows += _torch_rows(args, modes, task, batch)
    _mfu(rows, args)
    environment = harness.environment(argv)
    if args.out:
        report.add_rows(args.out, environment, rows)
    print(report.markdown(rows), end="")
    return 0


if __name__ == "__main__":
    sys.exit(main())
