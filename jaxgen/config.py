"""Configs are data: an experiment file defines `get_config()` returning a ConfigDict; the CLI
loads it and applies `--set key=value` overrides, parsed as Python literals.
"""

import ast
import importlib.util
import json
from pathlib import Path

import ml_collections


def experiments_dir() -> Path:
    """The folder of the shipped configs: the installed package `jaxgen.experiments` (the
    wheel maps the repository's `experiments/` onto it), or `experiments/` beside the sources
    of a clone that is not installed."""
    try:
        import jaxgen.experiments as shipped
    except ModuleNotFoundError:
        return Path(__file__).resolve().parent.parent / "experiments"
    return Path(shipped.__file__).parent


def shipped_configs() -> dict[str, str]:
    """{name: the first line of its docstring} for every shipped config, read without running
    it."""
    configs = {}
    for path in sorted(experiments_dir().glob("*.py")):
        text = path.read_text()
        if "def get_config" in text:
            doc = ast.get_docstring(ast.parse(text)) or ""
            configs[path.stem] = doc.split("\n\n")[0].replace("\n", " ")
    return configs


def resolve(config: str | Path) -> Path:
    """The config file `config` names: a path to a file (an experiment's .py or a run's
    config.json), or a shipped config's name (`vae_mnist5k`). A path such as
    `experiments/vae_mnist5k.py` that does not exist where it is run (an installed package,
    another directory) falls back to the shipped config of that name."""
    path = Path(config)
    if path.exists():
        return path
    shipped = shipped_configs()
    if path.suffix in ("", ".py") and path.parent.name in ("", "experiments") and (
            path.stem in shipped):
        return experiments_dir() / f"{path.stem}.py"
    raise FileNotFoundError(
        f"No config at {config}: give a config file's path or a shipped config's name "
        f"({', '.join(shipped)}; `python -m jaxgen configs` describes them).")


def load(path: str | Path) -> ml_collections.ConfigDict:
    """Runs `get_config()` from a config file (`experiments/*.py`) or reads a run's config.json;
    `path` may also name a shipped config (`resolve`)."""
    path = resolve(path)
    if path.suffix == ".json":
        return ml_collections.ConfigDict(json.loads(path.read_text()))
    module = import_file(path)
    if not hasattr(module, "get_config"):
        raise ValueError(f"{path} defines no get_config().")
    return module.get_config()


def import_file(path: str | Path):
    """The Python file at `path` as a module, without putting its folder on `sys.path`: how a
    config reads the helpers beside it (`experiments/common.py`)."""
    path = Path(path)
    spec = importlib.util.spec_from_file_location(f"jaxgen_config_{path.stem}", path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def _parse(text: str):
    try:
        return ast.literal_eval(text)
    except (ValueError, SyntaxError):
        return text  # a bare string, e.g. --set data.name=tfds:mnist


def override(config: ml_collections.ConfigDict, assignments: list[str]):
    """Applies ["a.b=1", "c=tfds:mnist", ...]; keys must exist, so a typo is an error."""
    for assignment in assignments:
        key, sep, text = assignment.partition("=")
        if not sep:
            raise ValueError(f"--set takes key=value, got {assignment!r}")
        *parents, leaf = key.strip().split(".")
        node = config
        for part in parents:
            if not hasattr(node, "keys") or part not in node:
                raise KeyError(f"--set {key}: the config has no section {part!r}.")
            node = node[part]
        if not hasattr(node, "keys"):
            raise KeyError(f"--set {key}: {'.'.join(parents)} is a value, not a section.")
        if leaf not in node:
            raise KeyError(f"--set {key}: the config has no such key; its keys: {list(node)}")
        value = _parse(text.strip())
        current = node[leaf]
        if isinstance(current, float) and isinstance(value, int):
            value = float(value)
        try:
            node[leaf] = value
        except TypeError as e:
            raise ValueError(
                f"--set {key}={text}: expected type {type(current).__name__} (the config has "
                f"{current!r}), got {type(value).__name__}."
            ) from e
    return config


def for_accelerators(base: str | Path, dataset: str, *, batch_size: int, steps: int,
                     every: int, num_threads: int = 16, **sections) -> ml_collections.ConfigDict:
    """The CPU config `base` scaled to a TFDS dataset on accelerators: dataset, loader threads,
    batch, steps, and a sample grid and checkpoint `every` steps; `sections` update nested
    sections (`model={...}`, `optim={...}`) or set top-level keys (`ema_decay=0.9999`)."""
    config = load(base)
    config.data.update(name=dataset, num_threads=num_threads)
    config.update(batch_size=batch_size, steps=steps, sample_every=every, checkpoint_every=every)
    for key, value in sections.items():
        if key not in config:
            raise KeyError(f"for_accelerators: the config has no key {key!r}")
        if isinstance(value, dict):
            config[key].update(value)
        else:
            config[key] = value
    return config
