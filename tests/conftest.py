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
