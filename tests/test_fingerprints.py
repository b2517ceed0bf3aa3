"""Behaviour kept through refactors: every family's tiny run computes what it computed when the
fixture was written (`python -m tests.fingerprints`), bit for bit on the machine it was written
on (same jax, same processor), and within float32 rounding elsewhere."""

import numpy as np
import pytest

from tests import fingerprints


@pytest.fixture(scope="module")
def computed(tmp_path_factory):
    return fingerprints.compute(tmp_path_factory.mktemp("fingerprints"))


@pytest.fixture(scope="module")
def expected():
    with np.load(fingerprints.FIXTURE) as saved:
        return {name: saved[name] for name in saved.files}


@pytest.mark.slow  # 2.5 min: trains and evaluates every family; run it before a refactor lands
def test_every_family_computes_what_it_did(computed, expected):
    same_machine = str(expected.pop("machine")) == fingerprints.machine()
    assert sorted(computed) == sorted(expected)
    for name, want in expected.items():
        got = computed[name]
        assert got.shape == want.shape and got.dtype == want.dtype, name
        if name.endswith("/params"):  # a digest: only bit-identical parameters match
            if same_machine:
                assert np.array_equal(got, want), f"{name}: the trained parameters changed"
        elif same_machine:
            assert np.array_equal(got, want), (
                f"{name}: differs by up to {np.max(np.abs(got - want)):.3g}")
        else:
            np.testing.assert_allclose(got, want, atol=1e-3, err_msg=name)
