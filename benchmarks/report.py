"""Results files and their Markdown table.

A results file holds one device's rows (`benchmarks/results/<device>.json`): each run appends
its rows, with the command, date and versions that produced them, so the table can always say
where a figure came from.
"""

import json
from pathlib import Path


def add_rows(path: str | Path, environment: dict, rows: list[dict]) -> dict:
    """Appends `rows` (stamped with `environment`) to the results file at `path`, which must
    hold the same device's results if it exists. Returns the file's content."""
    path = Path(path)
    results = {"device": environment["device"], "rows": []}
    if path.exists():
        results = json.loads(path.read_text())
        if results.get("device") != environment["device"]:
            raise ValueError(f"{path} holds results of {results.get('device')!r}, not of this "
                             f"{environment['device']!r}: one file per device")
    results["rows"].extend({**row, "environment": environment} for row in rows)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(results, indent=2) + "\n")
    return results


def _match_key(row: dict) -> tuple:
    environment = row.get("environment", {})
    return (environment.get("command"), environment.get("date"), row.get("model"), row["task"],
            row.get("dtype"), row["batch"], row.get("height"), row.get("steps"),
            row.get("guidance"))


# The models `--torch` times in diffusers too.
PYTORCH_COUNTERPARTS = ("unet-cifar10", "sd15")


def with_ratios(rows: list[dict]) -> list[dict]:
    """Each PyTorch row gains `jaxgen_ratio`: throughput of the jaxgen row timed by the same
    command (same network, task, dtype, batch, steps and guidance) over its own (> 1: jaxgen
    is faster)."""
    jaxgen = {}
    for row in rows:
        if row.get("framework") == "jaxgen" and row.get("model") in PYTORCH_COUNTERPARTS:
            jaxgen[_match_key(row)] = row
    out = []
    for row in rows:
        row = dict(row)
        other = jaxgen.get(_match_key(row)) if row.get("framework") == "pytorch" else None
        if other is not None:
            row["jaxgen_ratio"] = _throughput(other) / _throughput(row)
        out.append(row)
    return out


def _throughput(row: dict) -> float:
    return row["images_per_second"] if row["task"] == "sample" else row["examples_per_second"]


def _fmt(value, spec: str, empty: str = "") -> str:
    return empty if value is None else format(value, spec)


def markdown(rows: list[dict], title: str | None = None) -> str:
    """A Markdown table of result rows, PyTorch rows with their jaxgen ratio."""
    head = ["task", "model", "framework", "dtype", "batch", "dev", "sampler", "compile s",
            "time/call s (min-max)", "throughput", "TFLOP/s", "MFU datasheet", "MFU measured",
            "memory MiB", "jaxgen / this"]
    lines = [f"## {title}", ""] if title else []
    lines += ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    for row in with_ratios(rows):
        sampler = ""
        if row["task"] == "sample" and row.get("sampler"):
            sampler = f"{row['sampler']}-{row['steps']}"
            if row.get("guidance") is not None:
                sampler += f", w={row['guidance']:g}"
        unit = "img/s" if row["task"] == "sample" else "ex/s"
        memory = row.get("device_peak_bytes") or row.get("compiled_bytes")
        cells = [
            row["task"],
            row.get("model", "") + (f" {row['height']}px" if row.get("height") else ""),
            f"{row['framework']} {row.get('mode', '')}".strip(),
            row.get("dtype", ""), str(row["batch"]), str(row.get("devices", 1)), sampler,
            _fmt(row.get("compile_seconds"), ".1f"),
            f"{row['seconds_median']:.4g} ({row['seconds_min']:.4g}-{row['seconds_max']:.4g})",
            f"{_throughput(row):.4g} {unit}",
            _fmt(row.get("flops_per_second") and row["flops_per_second"] / 1e12, ".3g"),
            _fmt(row.get("mfu_datasheet"), ".1%", "n/a"),
            _fmt(row.get("mfu_measured"), ".1%", "n/a"),
            _fmt(memory and memory / 2**20, ".0f"),
            _fmt(row.get("jaxgen_ratio"), ".2f") + ("x" if row.get("jaxgen_ratio") else ""),
        ]
        lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines) + "\n"


# The rows of `python -m benchmarks fid`, in the order it writes them: its own table.
FID_TASKS = ("fid-features", "fid-update", "fid-distance", "fid-estimate", "kid",
             "precision-recall")


def _fid_measurement(row: dict) -> str:
    task, dim = row["task"], row.get("dim")
    if task == "fid-features":
        return f"featurise {row['height']}x{row['height']} uint8 (resize to 299, Inception-v3)"
    if task == "fid-update":
        return f"FeatureStatistics.update, [{row['batch']}, {dim}]"
    if task == "fid-distance":
        return f"frechet_distance, D = {dim} (host, float64)"
    if task == "kid":
        return (f"KID, {row['subsets']} subsets of {row['subset_size']}, {row['samples']} x "
                f"{dim} each")
    if task == "precision-recall":
        return f"precision/recall, k = {row['k']}, {row['samples']} x {dim} each"
    return (f"**FID of {row['num']:,} samples, derived** from the rows above: featurise + "
            f"{row['batches']} updates + 1 distance")


def fid_markdown(rows: list[dict]) -> str:
    """FID's cost, one line per measurement of `python -m benchmarks fid`, each run closed by
    its estimate of a whole FID, which adds the run's measured rows (seconds of each part)."""
    head = ["measurement", "dtype", "batch", "dev", "compile s", "time s (min-max)",
            "throughput / parts", "GFLOP/image", "TFLOP/s", "MFU datasheet", "MFU measured",
            "memory MiB"]
    lines = ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    for row in rows:
        if row["task"] == "fid-estimate":
            time = f"**{row['estimate_seconds']:.4g}**"
            result = (f"{row['featurise_seconds']:.4g} + {row['statistics_seconds']:.4g} + "
                      f"{row['distance_seconds']:.4g} s")
        else:
            time = (f"{row['seconds_median']:.4g} ({row['seconds_min']:.4g}-"
                    f"{row['seconds_max']:.4g})")
            result = _fmt(row.get("images_per_second"), ".4g") + (
                " img/s" if row.get("images_per_second") else "")
        features = row["task"] == "fid-features"
        memory = row.get("device_peak_bytes") or row.get("compiled_bytes")
        cells = [
            _fid_measurement(row), row.get("dtype", ""), _fmt(row.get("batch"), "d"),
            _fmt(row.get("devices"), "d"), _fmt(row.get("compile_seconds"), ".1f"), time,
            result, _fmt(row.get("flops_per_image") and row["flops_per_image"] / 1e9, ".4g"),
            _fmt(row.get("flops_per_second") and row["flops_per_second"] / 1e12, ".3g"),
            _fmt(row.get("mfu_datasheet"), ".1%", "n/a" if features else ""),
            _fmt(row.get("mfu_measured"), ".1%", "n/a" if features else ""),
            _fmt(memory and memory / 2**20, ".0f"),
        ]
        lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines) + "\n"


_PARTS = ("forward", "input_grad", "kernel_grad")


def layers_markdown(rows: list[dict]) -> str:
    """The per-convolution table of one `python -m benchmarks layers` run: each layer's forward,
    input gradient and kernel gradient in ms per framework, the time ratio of the two, and a
    last line summing every layer times the number of times the network runs it."""
    frameworks = list(dict.fromkeys(f"{r['framework']} {r['mode']}" for r in rows))
    layers: dict[str, dict] = {}
    for row in rows:
        key = json.dumps([row.get(k) for k in ("model", "dtype", "input", "kernel", "strides",
                                               "padding")])
        layers.setdefault(key, {})[f"{row['framework']} {row['mode']}"] = row
    head = ["input (NHWC)", "kernel (HWIO)", "stride", "x", "fwd GFLOP",
            *(f"{f}: fwd / in-grad / kernel-grad ms" for f in frameworks)]
    if len(frameworks) == 2:
        head.append(f"speed, {frameworks[0]} / {frameworks[1]}")
    lines = ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    totals = {f: [0.0, 0.0, 0.0] for f in frameworks}
    for by_framework in layers.values():
        first = next(iter(by_framework.values()))
        cells = ["x".join(map(str, first["input"])), "x".join(map(str, first["kernel"])),
                 str(first["strides"][0]), str(first["count"]),
                 _fmt(first.get("flops") and first["flops"] / 1e9, ".3g")]
        for f in frameworks:
            row = by_framework.get(f)
            if row is None:
                cells.append("")
                continue
            times = [row[f"{part}_s"] * 1e3 for part in _PARTS]
            totals[f] = [t + row["count"] * x for t, x in zip(totals[f], times, strict=True)]
            cells.append(" / ".join(f"{t:.3g}" for t in times))
        if len(frameworks) == 2:
            cells.append(_ratio(*(by_framework.get(f) for f in frameworks)))
        lines.append("| " + " | ".join(cells) + " |")
    cells = ["all", "", "", str(sum(next(iter(b.values()))["count"] for b in layers.values())),
             ""]
    cells += [" / ".join(f"{t:.4g}" for t in totals[f]) + f" (sum {sum(totals[f]):.4g})"
              for f in frameworks]
    if len(frameworks) == 2:
        ours, theirs = (sum(totals[f]) for f in frameworks)
        cells.append(f"{theirs / ours:.2f}x" if ours else "")
    lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines) + "\n"


def _ratio(ours: dict | None, theirs: dict | None) -> str:
    """The second framework's time over the first's for one layer (> 1: the first is faster)."""
    if not ours or not theirs:
        return ""
    return f"{sum(theirs[f'{p}_s'] for p in _PARTS) / sum(ours[f'{p}_s'] for p in _PARTS):.2f}x"


def results_page(results: dict) -> str:
    """A results file as Markdown: its device, the table(s), and the commands that made the
    rows, with versions and dates."""
    rows = results["rows"]
    steps = [row for row in rows if row["task"] not in ("layer", *FID_TASKS)]
    layer_rows = [row for row in rows if row["task"] == "layer"]
    fid_rows = [row for row in rows if row["task"] in FID_TASKS]
    lines = [f"# Benchmarks on {results['device']}", ""]
    if steps:
        lines.append(markdown(steps))
    if fid_rows:
        lines += ["FID's cost (`python -m benchmarks fid`):", "", fid_markdown(fid_rows)]
    runs: dict[tuple, list[dict]] = {}
    for row in layer_rows:  # one table per run: its sums add one network's layers
        env = row.get("environment", {})
        runs.setdefault((env.get("command"), env.get("date")), []).append(row)
    for (command, date), run in runs.items():
        lines += [f"`{command}` ({date}):", "", layers_markdown(run)]
    lines += ["Rows from:", ""]
    seen = set()
    for row in rows:
        env = row.get("environment", {})
        key = (env.get("command"), env.get("date"))
        if key in seen:
            continue
        seen.add(key)
        versions = ", ".join(f"{name} {env[name]}" for name in ("jax", "flax", "torch",
                                                                 "diffusers") if env.get(name))
        lines.append(f"- `{env.get('command')}` ({env.get('date')}; {versions})")
    return "\n".join(lines) + "\n"
