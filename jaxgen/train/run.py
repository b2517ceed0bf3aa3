"""A run directory: its config, its metrics log, opening it for sampling and evaluation, and
reading the frozen parts another run needs from it."""

import json
import logging
import os
from pathlib import Path

import jax

from jaxgen import config as config_lib
from jaxgen import parallel, viz
from jaxgen.train import families
from jaxgen.train.checkpoint import Checkpointer, with_shardings
from jaxgen.train.objectives import FrozenRun, Run
from jaxgen.train.state import state_layout

__all__ = ["ConfigMismatchError", "MetricsLog", "Run", "check_can_start", "load_frozen",
           "load_run"]

log = logging.getLogger(__name__)

# Config keys that may change between the calls of one run: they change how the run is
# watched or where data is read from, not what it computes.
RESUMABLE_CHANGES = ("log_every", "sample_every", "checkpoint_every", "keep_checkpoints",
                     "checkpoint_async", "resume", "eval.", "data.num_threads",
                     "data.data_dir", "data.download")


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


# Keys added to the configs after runs were saved without them, each with the value that
# computes what those runs computed: a saved run that lacks one resumes under that value.
ADDED_KEYS = {"attention_implementation": "auto", "data.train_examples": 0,
              "gan.r1_every": 1, "gan.spectral_norm": False, "gan.augment": "",
              "gan.augment_p": 1.0, "gan.ada_target": 0.0, "gan.ada_kimg": 100.0}


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
    saved = {**{k: v for k, v in ADDED_KEYS.items() if k in new}, **saved}
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
        """Keeps the records up to `step`, rewriting the log atomically (a temporary file, then
        a rename): a kill at any moment leaves the old log or the new one, never a part."""
        if self.enabled and self.path.exists():
            kept = [r for r in self.records() if r["step"] <= step]
            partial = self.path.with_name(self.path.name + ".tmp")
            partial.write_text("".join(json.dumps(r) + "\n" for r in kept))
            os.replace(partial, self.path)

    def append(self, record: dict) -> None:
        if self.enabled:
            with self.path.open("a") as f:
                f.write(json.dumps(record) + "\n")

    def plot(self, path: Path) -> None:
        records = self.records()
        if records:
            viz.plot_metrics(records, path)


def load_run(workdir: str | Path, step: int | None = None, *, needs=None,
             command: str = "this command") -> Run:
    """Opens a run read-only: its config and its newest loadable (or the given) checkpoint.

    With `needs` (a capability of `train.objectives`), a run whose family lacks it is refused
    (`CapabilityError`, naming `command`) before any checkpoint is read.
    """
    workdir = Path(workdir)
    if not (workdir / "config.json").exists():
        raise FileNotFoundError(
            f"{workdir} is not a training run (no config.json); train one first with "
            "`python -m jaxgen train --config experiments/... --workdir DIR`."
        )
    config = config_lib.load(workdir / "config.json")
    if needs is not None:
        families.require(config.family, needs, command)
    objective = families.make(config)
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


def load_frozen(part: FrozenRun):
    """The evaluation parameters (host arrays) of the run `part` names, after checking that
    run was trained with the `part.sections` of the config this run expects of it."""
    run_dir = Path(part.workdir)
    config_path = run_dir / "config.json"
    if not config_path.exists():
        raise FileNotFoundError(
            f"{part.setting}: {run_dir} is not a training run (no config.json); train it "
            f"first with its config ({part.config_entry} here) or point --set "
            f"{part.setting}=DIR at one.")
    saved = json.loads(config_path.read_text())
    want = json.loads(part.config.to_json())
    for section in part.sections:
        if _entry(saved, section) != _entry(want, section):
            raise ValueError(
                f"{part.setting}: {run_dir} was trained with {section} "
                f"{_entry(saved, section)} but this run's {part.config_entry}.{section} is "
                f"{_entry(want, section)}; make them match.")
    params = jax.device_get(load_run(run_dir).state.eval_params)
    return params if part.subtree is None else params[part.subtree]


def _entry(config: dict, dotted: str):
    for key in dotted.split("."):
        config = config.get(key) if isinstance(config, dict) else None
    return config
