"""Every test sees 8 CPU devices, so sharding is exercised on this 2-core machine."""

import os

os.environ["XLA_FLAGS"] = (
    os.environ.get("XLA_FLAGS", "") + " --xla_force_host_platform_device_count=8"
).strip()
os.environ.setdefault("JAXGEN_COMPILATION_CACHE", "")  # subprocess CLIs: no cache in $HOME

import pytest  # noqa: E402

from tests import helpers  # noqa: E402


@pytest.fixture
def tiny_config():
    return helpers.tiny_config


@pytest.fixture(scope="session")
def classifier_dir(tmp_path_factory):
    """A quickly trained digit classifier, cached where the CLI looks for it (tests that score
    samples point $JAXGEN_CLASSIFIER_DIR here)."""
    from jaxgen.eval import classifier as classifier_lib

    directory = tmp_path_factory.mktemp("classifiers")
    trained = classifier_lib.load_or_train("mnist5k", cache_dir=directory, steps=300)
    assert trained.test_accuracy > 0.8  # even 300 steps recognise most held-out digits
    return directory
