"""Reading a checkpoint's `config.json` strictly: every option is one jaxgen builds, or the
load stops naming it."""

import json
from pathlib import Path

from jaxgen.pretrained.weights import PretrainedError


def read_config(folder: Path, classes: tuple[str, ...], file: str = "config.json") -> dict:
    """`folder/file` as a dict, checked to describe one of `classes` (its `_class_name`, or
    transformers' `architectures`)."""
    path = Path(folder) / file
    if not path.exists():
        raise PretrainedError(f"{path} is missing: a checkpoint folder holds its {file} beside "
                              "its weights")
    try:
        config = json.loads(path.read_text())
    except json.JSONDecodeError as e:
        raise PretrainedError(f"{path} is not valid JSON ({e})") from None
    name = config.get("_class_name") or next(iter(config.get("architectures") or []), None)
    if name not in classes:
        raise PretrainedError(f"{path} describes a {name}, not one of {list(classes)}")
    return config


def check_options(config: dict, allowed: dict, what: str) -> None:
    """Refuses an option of `config` that `allowed` does not name, or a value it does not
    accept. `allowed` maps each option to None (any value: jaxgen reads it) or a tuple of the
    values it supports; "_"-prefixed bookkeeping keys are skipped."""
    for option, value in config.items():
        if option.startswith("_"):
            continue
        if option not in allowed:
            raise PretrainedError(f"{what}: unsupported option {option}={json.dumps(value)} "
                                  "(jaxgen does not build this architecture)")
        accepted = allowed[option]
        if accepted is not None and value not in accepted:
            raise PretrainedError(f"{what}: unsupported {option}={json.dumps(value)} (jaxgen "
                                  f"builds {' or '.join(json.dumps(a) for a in accepted)})")
