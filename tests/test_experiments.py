"""Every shipped config builds its model and takes a real batch of its dataset's shape."""

import importlib.util
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
