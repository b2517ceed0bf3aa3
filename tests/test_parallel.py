"""Sharding: the fsdp rule, sharded batches, and fsdp training equal to replicated training."""

import jax
import numpy as np
import pytest
from jax.sharding import PartitionSpec as P

from jaxgen import parallel
from jaxgen.train import train
from tests import helpers


def test_fsdp_spec_rule():
    assert parallel.fsdp_spec((1024, 256), 4, min_size=0) == P("fsdp", None)
    assert parallel.fsdp_spec((6, 256), 4, min_size=0) == P(None, "fsdp")
    assert parallel.fsdp_spec((7, 3), 4, min_size=0) == P()  # nothing divides: replicated
    assert parallel.fsdp_spec((1024, 256), 4, min_size=10**6) == P()  # small: replicated
    assert parallel.fsdp_spec((1024, 256), 1, min_size=0) == P()


def test_mesh_and_batch_sharding():
    mesh = parallel.make_mesh(fsdp=2)
    assert dict(mesh.shape) == {"data": 4, "fsdp": 2}
    batch = parallel.shard_batch({"image": np.arange(16.0).reshape(16, 1)}, mesh)["image"]
    assert len(batch.addressable_shards) == 8
    assert all(s.data.shape == (2, 1) for s in batch.addressable_shards)
    np.testing.assert_array_equal(np.asarray(batch)[:, 0], np.arange(16.0))
    with pytest.raises(ValueError, match="fsdp=3 does not divide the 8 devices"):
        parallel.make_mesh(fsdp=3)


def test_fsdp_training_matches_replicated(tmp_path, tiny_config):
    overrides = ("steps=20", "checkpoint_every=20", "mesh.min_fsdp_size=0")
    replicated = train(tiny_config(*overrides, "mesh.fsdp=1"), tmp_path / "replicated")
    sharded = train(tiny_config(*overrides, "mesh.fsdp=4"), tmp_path / "fsdp")
    kernel = sharded.state.params["encoder"][0]["kernel"]  # [784, 64]
    assert kernel.sharding.spec == P("fsdp", None)
    assert kernel.addressable_shards[0].data.shape == (196, 64)  # a quarter per device
    moment = jax.tree.leaves(sharded.state.opt_state)[1]
    assert "fsdp" in str(moment.sharding.spec)  # optimizer state is sharded the same way
    assert sharded.state.rng.sharding.spec == P()  # the key stays whole
    # Same math, different reduction order: equal to float32 round-off.
    diff = helpers.max_abs_diff(jax.device_get(replicated.state.params),
                                jax.device_get(sharded.state.params))
    assert diff < 1e-5, diff


def test_dispatch_window_keeps_the_queue_short():
    """100 all-reduce steps queued behind an unfinished input deadlock XLA:CPU without a window
    (`python -m tests.xla_cpu_deadlock` shows it); through the training loop's window of 8 they
    finish, and the host never runs more than `depth` programs ahead."""
    from tests import xla_cpu_deadlock

    xla_cpu_deadlock._queue(window_depth=8, slow_iterations=1_000_000)

    window = parallel.DispatchWindow(2)
    outputs = [jax.jit(lambda x: x + 1)(np.float32(i)) for i in range(5)]
    for output in outputs:
        window.push(output)
    assert len(window._in_flight) == 2
    with pytest.raises(ValueError, match="at least one program"):
        parallel.DispatchWindow(0)
