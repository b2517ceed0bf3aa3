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
    return (environment.get("command"), environment.get("date"), row["task"], row.get("dtype"),
            row["batch"], row.get("steps"), row.get("guidance"))


def with_ratios(rows: list[dict]) -> list[dict]:
    """Each PyTorch row gains `jaxgen_ratio`: throughput of the jaxgen row timed by the same
    command (same network, task, dtype, batch, steps and guidance) over its own (> 1: jaxgen
    is faster)."""
    jaxgen = {}
    for row in rows:
        if row.get("framework") == "jaxgen" and row.get("model") == "unet-cifar10":
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
            row["task"], row.get("model", ""), f"{row['framework']} {row.get('mode', '')}".strip(),
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


def results_page(results: dict) -> str:
    """A results file as Markdown: its device, the table, and the commands that made the rows,
    with versions and dates."""
    rows = results["rows"]
    lines = [f"# Benchmarks on {results['device']}", "", markdown(rows), "Rows from:", ""]
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
