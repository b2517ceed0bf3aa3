"""The training engine on the real offline digits: learning, failures, checkpoints, signals."""

import json
import logging
import math
import signal
import subprocess
import sys
import time
from pathlib import Path

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from jaxgen import data
from jaxgen.eval import evaluate_vae
from jaxgen.train import Checkpointer, NonFiniteLossError, train
from jaxgen.train.checkpoint import with_shardings
from jaxgen.train.run import load_run
from tests import helpers


def test_training_improves_held_out_elbo(tmp_path, tiny_config):
    """A short real run: the held-out ELBO on the 1,000 test digits rises by > 200 nats."""
    config = tiny_config("model.mlp_hidden=(256,)", "model.latent_dim=16", "batch_size=64",
                         "steps=300", "log_every=50", "checkpoint_every=300",
                         "optim.warmup_steps=20")
    _, images, _ = data.load_arrays("mnist5k", "test")
    result = train(config, tmp_path)
    objective, mesh = result.objective, result.mesh
    init = objective.init_state(jax.random.PRNGKey(config.seed)).params
    before = evaluate_vae(objective, init, images, mesh=mesh, num_samples=10)
    after = evaluate_vae(objective, result.state.ema_params, images, mesh=mesh, num_samples=10)
    assert after["elbo"] - before["elbo"] > 200, (before, after)
    assert after["elbo"] > -175 and after["iwae_nll"] < -after["elbo"]
    assert (tmp_path / "loss_curve.png").exists() and (tmp_path / "train_summary.json").exists()
    lines = (tmp_path / "metrics.jsonl").read_text().splitlines()
    assert len(lines) == 6 and '"steps_per_second"' in lines[0]


def test_ema_is_updated_inside_the_step(tiny_config):
    from jaxgen.train import make_objective

    config = tiny_config("ema_decay=0.5")
    objective = make_objective(config)
    state = objective.init_state(jax.random.PRNGKey(0))
    batch = {"image": jnp.asarray(data.load_arrays("mnist5k")[1][:32]),
             "label": jnp.zeros(32, jnp.int32)}
    step = jax.jit(objective.step)
    expected = state.params
    for t in range(4):
        state, _ = step(state, batch, jax.random.PRNGKey(t))
        decay = min(0.5, (1 + t) / (10 + t))
        expected = jax.tree.map(lambda e, p, d=decay: d * e + (1 - d) * p, expected,
                                state.params)
    assert helpers.max_abs_diff(expected, state.ema_params) < 1e-6


def test_nan_loss_stops_and_keeps_the_last_good_checkpoint(tmp_path, tiny_config):
    train(tiny_config("steps=20"), tmp_path)  # checkpoints at 10 and 20
    with pytest.raises(NonFiniteLossError, match=r"at step 2\d.*last good checkpoint \(step 20\)"):
        train(tiny_config("steps=40", "optim.learning_rate=1e30"), tmp_path)
    assert Checkpointer(tmp_path / "checkpoints").steps() == [10, 20]
    assert math.isfinite(float(jax.tree.leaves(load_run(tmp_path).state.params)[0].sum()))


def test_damaged_latest_checkpoint_falls_back_with_a_warning(tmp_path, tiny_config, caplog):
    result = train(tiny_config(), tmp_path)  # steps 10, 20, 30
    for f in (tmp_path / "checkpoints" / "30" / "state").rglob("*"):
        if f.is_file():
            f.write_bytes(b"\0garbage")
    abstract = jax.eval_shape(result.objective.init_state, jax.random.PRNGKey(0))
    target = with_shardings(abstract, jax.tree.map(lambda s: s.sharding, result.state))
    with caplog.at_level(logging.WARNING):
        state = Checkpointer(tmp_path / "checkpoints").restore(target)
    assert int(state.step) == 20
    assert "step 30" in caplog.text and "falling back" in caplog.text
    # The damaged step is kept aside, and the run resumes from 20 and finishes.
    assert [p.name.split(".")[0] for p in (tmp_path / "checkpoints_damaged").iterdir()] == ["30"]
    assert int(train(tiny_config("steps=40"), tmp_path).state.step) == 40


def test_bad_inputs_get_clear_errors(tmp_path, tiny_config):
    with pytest.raises(ValueError, match=r"not divisible by the 8 devices.*such as 8 or 16"):
        train(tiny_config("batch_size=12"), tmp_path)
    with pytest.raises(ValueError, match=r"shape \[28, 28, 1\].*configured for \[8, 8, 1\]"):
        train(tiny_config("model.data_shape=(8, 8, 1)"), tmp_path)
    with pytest.raises(data.UnknownDatasetError, match="Known names"):
        train(tiny_config("data.name='mnist6k'"), tmp_path)


def _wait_for_checkpoint(workdir: Path, process, at_least: int, timeout: float = 120):
    deadline = time.time() + timeout
    while time.time() < deadline:
        steps = [int(p.name) for p in (workdir / "checkpoints").glob("*") if p.name.isdigit()]
        if any(s >= at_least for s in steps):
            return
        assert process.poll() is None, process.communicate()
        time.sleep(0.02)
    raise TimeoutError("no checkpoint appeared")


def _start(workdir, *overrides):
    return subprocess.Popen(
        [sys.executable, "-m", "jaxgen", "train", "--workdir", str(workdir),
         *helpers.cli_args(*overrides)],
        env=helpers.cli_env(8), cwd=helpers.ROOT, stdout=subprocess.PIPE,
        stderr=subprocess.PIPE, text=True,
    )


RESUME = ("steps=300", "checkpoint_every=50", "log_every=25")


def test_sigkill_then_resume_is_bit_identical(tmp_path, tiny_config):
    reference = train(tiny_config(*RESUME), tmp_path / "reference")
    process = _start(tmp_path / "killed", *RESUME)
    _wait_for_checkpoint(tmp_path / "killed", process, at_least=100)
    process.send_signal(signal.SIGKILL)
    process.wait()
    assert process.returncode == -signal.SIGKILL
    interrupted_at = Checkpointer(tmp_path / "killed" / "checkpoints").latest_step()
    assert interrupted_at < 300  # it really was cut short
    resumed = train(tiny_config(*RESUME), tmp_path / "killed")
    assert int(resumed.state.step) == 300
    for a, b in zip(jax.tree.leaves(jax.device_get(reference.state)),
                    jax.tree.leaves(jax.device_get(resumed.state)), strict=True):
        np.testing.assert_array_equal(a, b)  # params, Adam moments, EMA, step, key
    # The metrics log reads as if the run had never stopped: same steps, same losses.
    def losses(workdir):
        lines = (workdir / "metrics.jsonl").read_text().splitlines()
        return [(r["step"], r["loss"]) for r in map(json.loads, lines)]

    assert losses(tmp_path / "killed") == losses(tmp_path / "reference")


def test_sigterm_saves_a_checkpoint_before_exiting(tmp_path):
    process = _start(tmp_path, "steps=100000", "checkpoint_every=100000", "log_every=10")
    deadline = time.time() + 120
    while not (tmp_path / "metrics.jsonl").exists() and time.time() < deadline:
        time.sleep(0.05)
    process.send_signal(signal.SIGTERM)
    _, stderr = process.communicate(timeout=120)
    assert process.returncode == 0, stderr
    saved = Checkpointer(tmp_path / "checkpoints").steps()
    assert len(saved) == 1 and 0 < saved[0] < 100000 and saved[0] % 10 == 0
    assert f"saved a checkpoint at step {saved[0]}" in stderr


def test_bfloat16_compute_keeps_float32_params(tiny_config):
    from jaxgen.train import make_objective

    objective = make_objective(tiny_config("compute_dtype='bfloat16'"))
    state = objective.init_state(jax.random.PRNGKey(0))
    images = jnp.asarray(data.load_arrays("mnist5k")[1][:32])
    model = objective.model(state.params)
    assert model.encoder[0](images.reshape(32, -1)).dtype == jnp.bfloat16  # compute
    step = jax.jit(objective.step)
    losses = []
    for t in range(5):
        state, metrics = step(state, {"image": images}, jax.random.PRNGKey(t))
        losses.append(float(metrics["loss"]))
    assert {x.dtype for x in jax.tree.leaves(state.params)} == {jnp.dtype(jnp.float32)}
    assert metrics["loss"].dtype == jnp.float32 and losses[-1] < losses[0]
