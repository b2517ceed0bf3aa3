"""The package as a user installs it: every package listed in pyproject, the configs shipped
inside it and found by name, one version, and (slow) a wheel that runs the demo and the
benchmarks from another directory."""

import importlib.metadata
import os
import shutil
import subprocess
import sys
import tomllib
from pathlib import Path

import pytest

import jaxgen
from jaxgen import cli
from jaxgen import config as config_lib

ROOT = Path(__file__).resolve().parent.parent
PYPROJECT = tomllib.loads((ROOT / "pyproject.toml").read_text())


def test_pyproject_lists_every_package_and_maps_the_experiments_folder():
    folders = sorted(".".join(path.parent.relative_to(ROOT).parts)
                     for top in ("jaxgen", "benchmarks") for path in (ROOT / top).rglob(
                         "__init__.py"))
    setuptools = PYPROJECT["tool"]["setuptools"]
    assert sorted(setuptools["packages"]) == sorted([*folders, "jaxgen.experiments"])
    assert setuptools["package-dir"] == {"jaxgen.experiments": "experiments"}
    assert not (ROOT / "experiments" / "studies" / "__init__.py").exists()  # studies stay here


def test_version_comes_from_one_place_and_the_changelog_names_it():
    assert PYPROJECT["tool"]["setuptools"]["dynamic"]["version"] == {
        "attr": "jaxgen.__version__"}
    assert importlib.metadata.version("jaxgen") == jaxgen.__version__
    assert f"## {jaxgen.__version__}" in (ROOT / "CHANGELOG.md").read_text()


def test_shipped_configs_resolve_by_name_and_by_their_clone_path(tmp_path, monkeypatch):
    shipped = config_lib.shipped_configs()
    files = sorted(p.stem for p in (ROOT / "experiments").glob("*.py") if p.stem not in (
        "__init__", "common"))
    assert sorted(shipped) == files and all(shipped.values())
    monkeypatch.chdir(tmp_path)  # where experiments/ does not exist
    assert config_lib.resolve("vae_mnist5k") == config_lib.experiments_dir() / "vae_mnist5k.py"
    assert config_lib.resolve("experiments/dcgan_mnist5k.py").parent == (
        config_lib.experiments_dir())
    assert config_lib.load("dcgan_mnist5k").family == "gan"
    own = tmp_path / "vae_mnist5k.py"  # a file of the user's own wins over the shipped name
    own.write_text("import ml_collections\ndef get_config():\n"
                   "    return ml_collections.ConfigDict({'family': 'mine'})\n")
    assert config_lib.load("vae_mnist5k.py").family == "mine"
    with pytest.raises(FileNotFoundError, match="shipped config's name.*vae_mnist5k"):
        config_lib.load("vae_mnist6k")
    with pytest.raises(FileNotFoundError):
        config_lib.load("elsewhere/dcgan_mnist5k.py")  # a path elsewhere is not a name


def test_cli_lists_the_configs_and_refuses_an_unknown_name(capsys, tmp_path):
    assert cli.main(["configs"]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert any(line.startswith("dcgan_mnist5k ") and "DCGAN" in line for line in lines)
    assert sum(line.split(" ")[0] in config_lib.shipped_configs() for line in lines) == len(
        config_lib.shipped_configs())
    assert cli.main(["train", "--config", "nope", "--workdir", str(tmp_path / "r")]) == 1
    assert "No config at nope" in capsys.readouterr().err
    assert not (tmp_path / "r").exists()


@pytest.mark.slow
def test_wheel_carries_the_configs_and_runs_from_another_directory(tmp_path):
    """Builds the wheel from the project's files alone, installs it (without dependencies,
    which this environment has) into a folder, and from an empty directory runs the demo's
    first steps, `configs`, `python -m benchmarks --help` and a train-step benchmark of a shipped
    config against that install."""
    source = tmp_path / "source"
    source.mkdir()
    for name in ("pyproject.toml", "README.md", "jaxgen", "benchmarks", "experiments"):
        copy = shutil.copytree if (ROOT / name).is_dir() else shutil.copy
        copy(ROOT / name, source / name, **({"ignore": shutil.ignore_patterns(
            "__pycache__")} if (ROOT / name).is_dir() else {}))
    pip = [sys.executable, "-m", "pip", "--disable-pip-version-check", "-q"]
    subprocess.run([*pip, "wheel", "--no-deps", "--no-build-isolation", "-w", tmp_path / "dist",
                    source], check=True, cwd=tmp_path)
    (wheel,) = (tmp_path / "dist").glob("jaxgen-*.whl")
    assert wheel.name.startswith(f"jaxgen-{jaxgen.__version__}-py3-none-any")
    site = tmp_path / "site"
    subprocess.run([*pip, "install", "--no-deps", "--target", site, wheel], check=True)
    assert (site / "jaxgen" / "experiments" / "dcgan_mnist5k.py").exists()
    assert not (site / "jaxgen" / "experiments" / "studies").exists()

    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    env = {**os.environ, "PYTHONPATH": str(site), "JAXGEN_COMPILATION_CACHE": ""}

    def run(*args):
        done = subprocess.run([sys.executable, *args], cwd=elsewhere, env=env,
                              capture_output=True, text=True)
        assert done.returncode == 0, done.stderr[-3000:]
        return done.stdout

    assert run("-c", "import jaxgen; print(jaxgen.__file__)").strip() == str(
        site / "jaxgen" / "__init__.py")
    assert "dcgan_mnist5k" in run("-m", "jaxgen", "configs")
    assert "sample,train" in run("-m", "benchmarks", "--help")
    timed = run("-m", "benchmarks", "train", "--model", "vae", "--batch", "8", "--repeats", "1",
                "--calls", "1", "--no-peak")  # reads the shipped vae_mnist config
    assert "| train | vae | jaxgen jit |" in timed
    out = run("-m", "jaxgen", "demo", "--steps", "3", "--iwae-samples", "2", "--workdir", "demo")
    assert "held-out ELBO" in out
    assert (elsewhere / "demo" / "samples.png").exists()


def test_the_repository_address_is_set_once_and_the_readme_and_notebook_follow_it():
    import json

    urls = PYPROJECT["project"]["urls"]
    repository = urls["Repository"]
    owner_name = repository.removeprefix("https://github.com/")
    assert urls["Notebook"] == (f"https://colab.research.google.com/github/{owner_name}/blob/"
                                "main/experiments/vae_colab_tpu.ipynb")
    readme = (ROOT / "README.md").read_text()
    first_screen = readme[:readme.index("## What it measures")]
    assert f"]({urls['Notebook']})" in first_screen  # the Colab badge
    assert f"git+{repository}" in first_screen
    notebook = json.loads((ROOT / "experiments" / "vae_colab_tpu.ipynb").read_text())
    install = "".join(notebook["cells"][2]["source"])
    assert f'REPO_URL = "{repository}"' in install
    assert 'pip install -q "jaxgen @ git+{REPO_URL}"' in install and " -e " not in install
