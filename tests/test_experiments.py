"""Every shipped config builds its model and takes a real batch of its dataset's shape."""

import importlib.util
import json
from pathlib import Path

import jax
import jax.numpy as jnp
import pytest
import tensorflow_datasets as tfds

from jaxgen import config as config_lib
from jaxgen import data
from jaxgen.train import make_objective

ROOT = Path(__file__).resolve().parent.parent / "experiments"
EXPERIMENTS = sorted(path for path in ROOT.glob("*.py") if "def get_config" in path.read_text())


@pytest.mark.parametrize("path", EXPERIMENTS, ids=lambda p: p.stem)
def test_config_builds_and_steps(path):
    config = config_lib.load(path)
    if "coco" in config.data.name and importlib.util.find_spec("tensorflow") is None:
        # TFDS's COCO builder imports TensorFlow to describe its features: take the shape
        # from the config.
        info = data.DatasetInfo(config.data.name, tuple(config.model.data_shape), 0, 8)
    else:
        with tfds.testing.mock_data(num_examples=8):
            info, _, _ = data.load(config.data.name, "train")
    objective = make_objective(config, info)
    state = jax.eval_shape(objective.init_state, jax.random.PRNGKey(0))
    size = config.batch_size
    batch = {"image": jnp.zeros((size, *info.shape)), "label": jnp.zeros(size, jnp.int32)}
    if config.data.get("text_length"):
        batch["text"] = jnp.ones((size, config.data.text_length), jnp.int32)
    _, metrics = jax.eval_shape(objective.step, state, batch, jax.random.PRNGKey(0))
    assert all(metrics[name].shape == () for name in objective.progress_metrics)
    # Divides 4-device meshes (the PacGAN protocol's batch of 100 does not divide 8).
    assert config.batch_size % 4 == 0


STUDIES = sorted((ROOT / "studies").glob("*.py"))


def test_the_experiments_folder_holds_configs_and_their_helpers():
    """Scripts that run studies live in experiments/studies; beside the configs stand only
    the helper they share and the package marker that ships them as jaxgen.experiments."""
    others = sorted(path.name for path in ROOT.glob("*.py") if path not in EXPERIMENTS)
    assert others == ["__init__.py", "common.py"]
    assert [path.stem for path in STUDIES] == ["diffusion_tables", "gan_limited_data", "helix",
                                             "mode_collapse"]


@pytest.mark.parametrize("path", STUDIES, ids=lambda p: p.stem)
def test_every_study_script_loads_and_explains_itself(path, capsys):
    module = config_lib.import_file(path)
    with pytest.raises(SystemExit) as exit_info:
        module.main(["--help"])
    assert exit_info.value.code == 0
    text = capsys.readouterr().out
    assert text.startswith("usage:") and "--out" in text


def test_the_mode_collapse_table_keeps_the_rows_of_earlier_invocations(tmp_path):
    """Rows from a file that held its budget once under "args" keep it; a rerun of the same
    variant, steps, width and seed replaces its row; new variants are added in order."""
    module = config_lib.import_file(ROOT / "studies" / "mode_collapse.py")
    old = {"args": {"steps": 5000, "width": 0.5},
           "results": [{"variant": "GAN", "seed": s, "modes": 8, "high_quality": 0.5,
                        "reverse_kl": 0.2} for s in range(2)]}
    path = tmp_path / "mode_collapse_ring8.json"
    path.write_text(json.dumps(old))
    new = [{"variant": v, "steps": 5000, "width": 0.5, "seed": 1, "modes": 7,
            "high_quality": 0.9, "reverse_kl": 0.1} for v in ("GAN+SN", "GAN")]
    rows = module.merge(path, new)
    assert [(r["variant"], r["seed"], r["modes"]) for r in rows] == [
        ("GAN", 0, 8), ("GAN", 1, 7), ("GAN+SN", 1, 7)]
    text = module.table("ring8", rows)
    assert "| **GAN (jaxgen)** | 5,000 | x0.5 | 2 | 7.5 ± 0.71 |" in text
    assert "| **GAN+SN (jaxgen)** | 5,000 | x0.5 | 1 | 7.0 | 90.0 | 0.10 |" in text
