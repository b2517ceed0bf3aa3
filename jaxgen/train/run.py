"""A run directory: its config, its metrics log, and opening it for sampling and evaluation."""

import dataclasses
import json
import logging
from pathlib import Path

from jaxgen import config as config_lib
from jaxgen import parallel, viz
from jaxgen.train import objectives
from jaxgen.train.checkpoint import Checkpointer, with_shardings
from jaxgen.train.state import state_layout

log = logging.getLogger(__name__)

# Config keys that may change between the calls of one run: they change how the run is
# watched or where data is read from, not what it computes.
RESUMABLE_CHANGES = ("log_every", "sample_every", "checkpoint_every", "keep_checkpoints",
                     "resume", "eval.", "data.num_threads", "data.data_dir", "data.download")


class ConfigMismatchError(ValueError):
    pass


def _flatten(tree: dict, prefix: str = "") -> dict:
    flat = {}
    for key, value in tree.items():
        if isinstance(value, dict):
            flat.update(_flatten(value, f"{prefix}{key}."))
        else:
            flat[f"{prefix}{key}"] = value
    return flat


def check_can_start(config, workdir: Path, has_checkpoints: bool) -> None:
    """Refuses to resume a run with a config that changes what it computes, or to overwrite one.

    A resumed run must be the run that was checkpointed: a new `steps` would bend the learning
    rate schedule mid-run, a new batch size would reinterpret the data position.
    """
    if not has_checkpoints:
        return
    if not config.resume:
        raise ConfigMismatchError(
            f"{workdir} already holds checkpoints and resume is off; train in a new --workdir, "
            "or delete this one to start over."
        )
    saved_path = workdir / "config.json"
    if not saved_path.exists():
        return
    saved = _flatten(json.loads(saved_path.read_text()))
    new = _flatten(json.loads(config.to_json()))
    changed = [
        f"{key}: {saved.get(key)!r} -> {new.get(key)!r}"
        for key in sorted(set(saved) | set(new))
        if saved.get(key) != new.get(key) and not key.startswith(RESUMABLE_CHANGES)
    ]
    if changed:
        raise ConfigMismatchError(
            f"{workdir} holds a run with a different config ({'; '.join(changed)}). Resuming "
            "would not continue that run: use a new --workdir (or the demo's --fresh), or set "
            "the values back."
        )


class MetricsLog:
    """metrics.jsonl: one record per log point; written by process 0 only."""

    def __init__(self, path: Path, enabled: bool = True):
        self.path, self.enabled = Path(path), enabled

    def records(self) -> list[dict]:
        if not self.path.exists():
            return []
        records = []
        for line in self.path.read_text().splitlines():
            try:
                records.append(json.loads(line))
            except json.JSONDecodeError:  # a line cut short by a kill mid-write
                log.warning("Skipping a damaged line of %s.", self.path)
        return records

    def drop_after(self, step: int) -> None:
        if self.enabled and self.path.exists():
            kept = [r for r in self.records() if r["step"] <= step]
            self.path.write_text("".join(json.dumps(r) + "\n" for r in kept))

    def append(self, record: dict) -> None:
        if self.enabled:
            with self.path.open("a") as f:
                f.write(json.dumps(record) + "\n")

    def plot(self, path: Path) -> None:
        records = self.records()
        if records:
            viz.plot_metrics(records, path)


@dataclasses.dataclass
class Run:
    config: object
    objective: object
    state: object
    mesh: object

    @property
    def params(self):
        return self.state.eval_params


def load_run(workdir: str | Path, step: int | None = None) -> Run:
    """Opens a run read-only: its config and its newest loadable (or the given) checkpoint."""
    workdir = Path(workdir)
    if not (workdir / "config.json").exists():
        raise FileNotFoundError(
            f"{workdir} is not a training run (no config.json); train one first with "
            "`python -m jaxgen train --config experiments/... --workdir DIR`."
        )
    config = config_lib.load(workdir / "config.json")
    objective = objectives.make(config)
    mesh = parallel.make_mesh(1)
    target = with_shardings(*state_layout(objective, mesh))
    checkpointer = Checkpointer(workdir / "checkpoints")
    try:
        state = checkpointer.restore(target, step=step, set_aside_damaged=False)
    finally:
        checkpointer.close()
    if state is None:
        raise FileNotFoundError(f"{workdir / 'checkpoints'} holds no checkpoint yet.")
    return Run(config, objective, state, mesh)
