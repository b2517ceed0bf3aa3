"""The API reference: its examples run as doctests, every public loss and sampler has one, and
(slow) Sphinx builds it from the docstrings with warnings as errors."""

import doctest
import importlib
import inspect
import subprocess
import sys
from pathlib import Path

import pytest

import jaxgen.augment
import jaxgen.losses
import jaxgen.sample.diffusion

ROOT = Path(__file__).resolve().parent.parent
EXAMPLED = ["jaxgen.losses._vae", "jaxgen.losses._gan", "jaxgen.losses._diffusion",
            "jaxgen.losses._contrastive", "jaxgen.schedules", "jaxgen.sample.diffusion",
            "jaxgen.augment"]


def _public(module, names=None):
    names = names if names is not None else [
        name for name, obj in vars(module).items() if not name.startswith("_") and (
            inspect.isfunction(obj) and obj.__module__ == module.__name__)]
    return {name: getattr(module, name) for name in names if callable(getattr(module, name))}


def test_every_public_loss_and_sampler_shows_an_example():
    public = {**_public(jaxgen.losses, jaxgen.losses.__all__),
              **_public(jaxgen.sample.diffusion), **_public(jaxgen.augment)}
    assert len(public) > 40
    missing = sorted(name for name, obj in public.items() if ">>> " not in (obj.__doc__ or ""))
    assert not missing, f"no example in the docstring of {missing}"


@pytest.mark.parametrize("name", EXAMPLED)
def test_docstring_examples_run(name):
    results = doctest.testmod(importlib.import_module(name), report=True,
                              optionflags=doctest.ELLIPSIS | doctest.NORMALIZE_WHITESPACE)
    assert results.attempted > 0 and results.failed == 0, results


@pytest.mark.slow
def test_api_reference_builds_with_warnings_as_errors(tmp_path):
    done = subprocess.run([sys.executable, "-m", "sphinx", "-W", "--keep-going", "-q", "-b",
                           "html", ROOT / "docs" / "api", tmp_path], capture_output=True,
                          text=True)
    assert done.returncode == 0, done.stderr[-5000:]
    losses = (tmp_path / "losses.html").read_text()
    for name in ("elbo_loss", "non_saturating_generator_loss", "diffusion_loss", "clip_loss"):
        assert f'id="jaxgen.losses.{name}"' in losses
    assert "&gt;&gt;&gt;" in losses  # the examples are in the reference
    sampling = (tmp_path / "sampling.html").read_text()
    assert 'id="jaxgen.sample.diffusion.ddim_sample"' in sampling
    assert "--config" in (tmp_path / "cli.html").read_text()
    for page in ("models", "training", "data", "parallel", "metrics", "pipeline"):
        assert (tmp_path / f"{page}.html").exists()
