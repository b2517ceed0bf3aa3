"""The training engine on the real offline digits: learning, failures, checkpoints, signals."""

import json
import logging
import signal
import subprocess
import sys
import time

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from jaxgen import data
from jaxgen.eval import evaluate_vae
from jaxgen.train import Checkpointer, NonFiniteLossError, families, train
from jaxgen.train.checkpoint import with_shardings
from jaxgen.train.run import check_can_start, load_run
from jaxgen.train.vae import VAEObjective
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

    config = tiny_config("ema_decay=0.15")  # below the warm-up from step 1 on: the cap binds
    objective = make_objective(config)
    state = objective.init_state(jax.random.PRNGKey(0))
    batch = {"image": jnp.asarray(data.load_arrays("mnist5k")[1][:32]),
             "label": jnp.zeros(32, jnp.int32)}
    step = jax.jit(objective.step)
    expected = state.params
    for t in range(4):
        state, _ = step(state, batch, jax.random.PRNGKey(t))
        decay = min(0.15, (1 + t) / (10 + t))
        expected = jax.tree.map(lambda e, p, d=decay: d * e + (1 - d) * p, expected,
                                state.params)
    assert helpers.max_abs_diff(expected, state.ema_params) < 1e-6


def test_nan_loss_stops_and_keeps_the_last_good_checkpoint(tmp_path, tiny_config):
    config = tiny_config("optim.learning_rate=1e30", "optim.warmup_steps=0", "checkpoint_every=1",
                         "log_every=1")
    with pytest.raises(NonFiniteLossError, match=r"loss became nan.* at step \d+;.*last good "
                       r"checkpoint \(step \d+\)") as error:
        train(config, tmp_path)
    bad_step = int(error.value.args[0].split("at step ")[1].split(";")[0])
    assert Checkpointer(tmp_path / "checkpoints").latest_step() == bad_step - 1
    assert all(np.isfinite(x).all() for x in jax.tree.leaves(load_run(tmp_path).state.params))


class _PoisonedAt(VAEObjective):
    """The VAE whose step POISON produces NaN parameters while reporting a finite loss, as a
    non-finite gradient does (the loss is computed before the update)."""

    POISON = 20

    def step(self, state, batch, key):
        state, metrics = super().step(state, batch, key)
        nan_if_bad = jnp.where(state.step == self.POISON, jnp.nan, 0.0)
        params = jax.tree.map(lambda p: p + nan_if_bad, state.params)
        metrics["grad_norm"] = metrics["grad_norm"] + nan_if_bad
        return state.replace(params=params), metrics


def test_nan_gradient_at_a_checkpoint_step_is_not_saved(tmp_path, tiny_config, monkeypatch):
    monkeypatch.setitem(families.FAMILIES, "vae", _PoisonedAt)
    with pytest.raises(NonFiniteLossError, match="grad_norm became nan at step 20"):
        train(tiny_config(), tmp_path)  # checkpoints every 10 steps
    assert Checkpointer(tmp_path / "checkpoints").steps() == [10]


def test_a_run_resumes_only_with_its_own_config(tmp_path, tiny_config):
    train(tiny_config("steps=10"), tmp_path)
    with pytest.raises(ValueError, match=r"different config \(steps: 10 -> 20\)"):
        train(tiny_config("steps=20"), tmp_path)
    with pytest.raises(ValueError, match="holds checkpoints and resume is off"):
        train(tiny_config("steps=10", "resume=False"), tmp_path)
    # Watching the run differently is allowed.
    assert int(train(tiny_config("steps=10", "log_every=2"), tmp_path).state.step) == 10
    # A run saved before a config key existed resumes under the value that computes what it
    # computed, and only under that value.
    saved = json.loads((tmp_path / "config.json").read_text())
    del saved["attention_implementation"]
    (tmp_path / "config.json").write_text(json.dumps(saved))
    check_can_start(tiny_config("steps=10"), tmp_path, has_checkpoints=True)
    with pytest.raises(ValueError, match="attention_implementation: 'auto' -> 'xla'"):
        check_can_start(tiny_config("steps=10", "attention_implementation='xla'"), tmp_path,
                        has_checkpoints=True)


def test_checkpoints_without_ema(tmp_path, tiny_config):
    train(tiny_config("ema_decay=0.0", "steps=10"), tmp_path)
    state = load_run(tmp_path).state
    assert state.ema_params is None and int(state.step) == 10


def test_damaged_latest_checkpoint_falls_back_with_a_warning(tmp_path, tiny_config, caplog):
    result = train(tiny_config("steps=40"), tmp_path, stop_at=30)  # steps 10, 20, 30
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


def _start(workdir, *overrides):
    return subprocess.Popen(
        [sys.executable, "-m", "jaxgen", "train", "--workdir", str(workdir),
         *helpers.cli_args(*overrides)],
        env=helpers.cli_env(8), cwd=helpers.ROOT, stdout=subprocess.PIPE,
        stderr=subprocess.PIPE, text=True,
    )


RESUME = ("steps=300", "checkpoint_every=50", "log_every=25")


@pytest.fixture(scope="module")
def reference_run(tmp_path_factory):
    """RESUME trained without interruption (checkpoints saved asynchronously, the default)."""
    workdir = tmp_path_factory.mktemp("reference")
    return workdir, train(helpers.tiny_config(*RESUME), workdir)


def _assert_resumes_bit_identically(workdir, reference_run):
    reference_dir, reference = reference_run
    resumed = train(helpers.tiny_config(*RESUME), workdir)
    assert int(resumed.state.step) == 300
    for a, b in zip(jax.tree.leaves(jax.device_get(reference.state)),
                    jax.tree.leaves(jax.device_get(resumed.state)), strict=True):
        np.testing.assert_array_equal(a, b)  # params, Adam moments, EMA, step, key
    # The metrics log reads as if the run had never stopped: same steps, same losses.
    def losses(workdir):
        lines = (workdir / "metrics.jsonl").read_text().splitlines()
        return [(r["step"], r["loss"]) for r in map(json.loads, lines)]

    assert losses(workdir) == losses(reference_dir)


def test_sigkill_then_resume_is_bit_identical(tmp_path, reference_run):
    process = _start(tmp_path, *RESUME)
    helpers.wait_for_checkpoint(tmp_path, process, at_least=100)
    process.send_signal(signal.SIGKILL)
    process.wait()
    assert process.returncode == -signal.SIGKILL
    interrupted_at = Checkpointer(tmp_path / "checkpoints").latest_step()
    assert interrupted_at < 300  # it really was cut short
    _assert_resumes_bit_identically(tmp_path, reference_run)


def test_sigkill_during_an_async_save_then_resume_is_bit_identical(tmp_path, reference_run):
    """Killed while the save of step 100 is still being written: that step is not a checkpoint
    (Orbax's temporary directory is left, unfinished), the run resumes from step 50, and it
    ends bit for bit where the uninterrupted run ended."""
    process = _start(tmp_path, *RESUME)
    in_flight = tmp_path / "checkpoints" / "100.orbax-checkpoint-tmp"
    deadline = time.time() + 120
    while not in_flight.exists():
        assert process.poll() is None and time.time() < deadline, process.communicate()
        time.sleep(0.001)
    process.send_signal(signal.SIGKILL)
    process.wait()
    assert in_flight.exists() and not (tmp_path / "checkpoints" / "100").exists()
    assert Checkpointer(tmp_path / "checkpoints").steps() == [50]
    _assert_resumes_bit_identically(tmp_path, reference_run)


def test_a_failed_save_ends_the_run_and_keeps_the_previous_checkpoint(tmp_path, tiny_config,
                                                                      monkeypatch):
    """A disk that fills up at the second save: one CheckpointError that says so, and the
    first checkpoint restores and the run continues from it."""
    import orbax.checkpoint as ocp

    from jaxgen.train import CheckpointError

    save = ocp.CheckpointManager.save

    def full_disk(manager, step, *args, **kwargs):
        if step == 20:
            raise OSError(28, "No space left on device")
        return save(manager, step, *args, **kwargs)

    monkeypatch.setattr(ocp.CheckpointManager, "save", full_disk)
    with pytest.raises(CheckpointError, match=r"saving the checkpoint of step 20 .* failed "
                       r"\(OSError: \[Errno 28\] No space left on device\).*step 10\) is intact"):
        train(tiny_config("steps=30"), tmp_path)
    monkeypatch.undo()
    assert Checkpointer(tmp_path / "checkpoints").steps() == [10]
    assert int(train(tiny_config("steps=30"), tmp_path).state.step) == 30


def test_sigterm_saves_a_checkpoint_before_exiting(tmp_path):
    process = _start(tmp_path, "steps=100000", "checkpoint_every=100000", "log_every=10")
    deadline = time.time() + 120
    while not (tmp_path / "metrics.jsonl").exists() and time.time() < deadline:
        time.sleep(0.05)
    process.send_signal(signal.SIGTERM)
    _, stderr = process.communicate(timeout=120)
    assert process.returncode == 0, stderr
    saved = Checkpointer(tmp_path / "checkpoints").steps()
    assert len(saved) == 1 and 0 < saved[0] < 100000  # saved at once, not at a log point
    assert f"saved a checkpoint at step {saved[0]} and stopped" in stderr


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


def test_gaussian_vae_trains_on_points(tmp_path, tiny_config):
    """Points, not images: an MLP VAE with a Gaussian likelihood and learned scale on the helix.

    (A vanilla VAE fits the 3-turn helix slowly: after 1,500 steps it is still near a single
    Gaussian's -2.75 nats. This checks the Gaussian path learns, not that the fit is good.)
    """
    config = tiny_config("data.name='helix'", "model.data_shape=(3,)",
                         "model.likelihood='gaussian'", "model.mlp_hidden=(64, 64)",
                         "model.latent_dim=2", "batch_size=64", "steps=400", "log_every=100",
                         "checkpoint_every=400", "optim.learning_rate=3e-3")
    result = train(config, tmp_path)
    _, points, _ = data.load_arrays("helix", "test")
    init = result.objective.init_state(jax.random.PRNGKey(config.seed)).params
    before, after = (evaluate_vae(result.objective, params, points[:1000], mesh=result.mesh,
                                  num_samples=20)
                     for params in (init, result.state.eval_params))
    assert after["elbo"] - before["elbo"] > 0.5, (before, after)  # measured: 0.84
    assert after["iwae_nll"] <= -after["elbo"] + 1e-3
    assert float(result.state.params["log_scale"]) < -0.3  # the learned noise scale shrank
