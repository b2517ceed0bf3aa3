"""Small configs and subprocess helpers shared by the tests."""

import os
import re
import socket
import subprocess
import sys
import time
from pathlib import Path

import jax
import numpy as np

from jaxgen import config as config_lib

ROOT = Path(__file__).resolve().parent.parent
CPU_CONFIG = ROOT / "experiments" / "vae_mnist5k.py"

# A small MLP VAE on the real offline digits: a few milliseconds a step.
TINY = [
    "model.kind='mlp'",
    "model.mlp_hidden=(64,)",
    "model.latent_dim=4",
    "batch_size=32",
    "steps=30",
    "log_every=5",
    "checkpoint_every=10",
    "sample_every=0",
    "optim.warmup_steps=5",
    "data.num_threads=1",
]


def tiny_config(*overrides: str):
    return config_lib.override(config_lib.load(CPU_CONFIG), [*TINY, *overrides])


GAN_POINTS_CONFIG = ROOT / "experiments" / "gan_ring8.py"
GAN_IMAGES_CONFIG = ROOT / "experiments" / "dcgan_mnist5k.py"

# Small GANs: MLPs on the ring (a few ms a step), a narrow DCGAN on the real digits.
TINY_GAN_POINTS = [
    "model.g_hidden=(32, 32)",
    "model.d_hidden=(32,)",
    "model.d_maxout_pieces=2",
    "batch_size=32",
    "steps=30",
    "log_every=5",
    "checkpoint_every=10",
    "optim.learning_rate=1e-3",
    "d_optim.learning_rate=1e-3",
]
TINY_GAN_IMAGES = [
    "model.g_channels=(8, 4)",
    "model.d_channels=(4, 8)",
    "model.latent_dim=8",
    "batch_size=16",
    "steps=20",
    "log_every=5",
    "checkpoint_every=10",
    "sample_every=0",
    "data.num_threads=1",
]


def tiny_gan_config(*overrides: str, images: bool = False):
    path, tiny = ((GAN_IMAGES_CONFIG, TINY_GAN_IMAGES) if images
                  else (GAN_POINTS_CONFIG, TINY_GAN_POINTS))
    return config_lib.override(config_lib.load(path), [*tiny, *overrides])


def cli_args(*overrides: str, config=CPU_CONFIG, tiny=TINY) -> list[str]:
    """`--config CONFIG --set ...` for the CLI: the tiny overrides, then `overrides`."""
    args = ["--config", str(config)]
    for item in (*tiny, *overrides):
        args += ["--set", item]
    return args


def run_cli(args: list[str], devices: int = 8, **kwargs) -> subprocess.CompletedProcess:
    """`python -m jaxgen ARGS` in a fresh process with `devices` CPU devices."""
    return subprocess.run(
        [sys.executable, "-m", "jaxgen", *args], env=cli_env(devices), cwd=ROOT,
        capture_output=True, text=True, timeout=300, **kwargs,
    )


def cli_env(devices: int) -> dict:
    env = dict(os.environ)
    flags = re.sub(r"--xla_force_host_platform_device_count=\d+", "",
                   os.environ.get("XLA_FLAGS", ""))  # the tests' other flags carry over
    env["XLA_FLAGS"] = f"{flags} --xla_force_host_platform_device_count={devices}".strip()
    return env  # with the session's compilation cache (tests/conftest.py)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def params_of(workdir) -> dict:
    """The raw (non-EMA) parameters of a run's latest checkpoint, as numpy."""
    from jaxgen.train.run import load_run

    return jax.tree.map(np.asarray, load_run(workdir).state.params)


def max_abs_diff(a, b) -> float:
    return max(jax.tree.leaves(jax.tree.map(lambda x, y: float(np.max(np.abs(x - y))), a, b)))


def run_processes(workdir, *overrides, num_processes=2, devices=4, extra=()) -> None:
    """One `jaxgen train` per process on loopback (gloo collectives), like separate hosts."""
    port = free_port()
    procs = [
        subprocess.Popen(
            [sys.executable, "-m", "jaxgen", "train", "--workdir", str(workdir),
             *cli_args(*overrides), *extra, "--coordinator", f"127.0.0.1:{port}",
             "--num-processes", str(num_processes), "--process-id", str(i)],
            env=cli_env(devices), cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
            text=True,
        )
        for i in range(num_processes)
    ]
    outputs = [p.communicate(timeout=300)[0] for p in procs]
    for p, out in zip(procs, outputs, strict=True):
        assert p.returncode == 0, out[-3000:]


DIFFUSION_CONFIG = ROOT / "experiments" / "diffusion_mnist5k.py"

# A narrow two-level U-Net on the real digits.
TINY_DIFFUSION = [
    "model.channels=8",
    "model.channel_mults=(1, 2)",
    "model.attention_resolutions=(14,)",
    "model.num_heads=2",
    "batch_size=16",
    "steps=20",
    "log_every=5",
    "checkpoint_every=10",
    "sample_every=0",
    "sample.steps=4",
    "data.num_threads=1",
]


def tiny_diffusion_config(*overrides: str):
    return config_lib.override(config_lib.load(DIFFUSION_CONFIG), [*TINY_DIFFUSION, *overrides])


CLIP_CONFIG = ROOT / "experiments" / "clip_mnist5k.py"

# Narrow towers on the real digits and their measured captions.
TINY_CLIP = [
    "model.embed_dim=16",
    "model.text_width=16",
    "model.text_depth=1",
    "model.text_heads=2",
    "model.image_channels=(8, 16)",
    "batch_size=32",
    "steps=20",
    "log_every=5",
    "checkpoint_every=10",
    "data.num_threads=1",
]


def tiny_clip_config(*overrides: str):
    return config_lib.override(config_lib.load(CLIP_CONFIG), [*TINY_CLIP, *overrides])


AUTOENCODER_CONFIG = ROOT / "experiments" / "autoencoder_mnist5k.py"
LDM_CONFIG = ROOT / "experiments" / "ldm_mnist5k.py"

TINY_AUTOENCODER = [
    "model.channels=(8, 16)",
    "model.latent_channels=2",
    "batch_size=16",
    "steps=2",
    "log_every=1",
    "checkpoint_every=2",
    "sample_every=0",
    "data.num_threads=1",
]


def tiny_autoencoder_config(*overrides: str):
    return config_lib.override(config_lib.load(AUTOENCODER_CONFIG),
                               [*TINY_AUTOENCODER, *overrides])


# A narrow text-conditioned U-Net over the tiny autoencoder's 7x7x2 latents, conditioned on the
# tiny CLIP text tower.
TINY_LDM = [
    *(f"ldm.autoencoder.{o}" for o in TINY_AUTOENCODER if o.startswith("model.")),
    *(f"ldm.text.{o}" for o in TINY_CLIP if o.startswith("model.")),
    "model.data_shape=(7, 7, 2)", "model.context_dim=16", "model.channels=8",
    "model.num_heads=2", "batch_size=16", "steps=20", "log_every=5", "checkpoint_every=20",
    "sample_every=0", "sample.steps=3", "data.num_threads=1",
]


def tiny_ldm_config(autoencoder_run, text_run, *overrides: str):
    """TINY_LDM, its frozen parts read from the runs `autoencoder_run` and `text_run`."""
    return config_lib.override(config_lib.load(LDM_CONFIG), [
        *TINY_LDM, f"ldm.autoencoder_run={str(autoencoder_run)!r}",
        f"ldm.text_run={str(text_run)!r}", *overrides])


def wait_for_checkpoint(workdir: Path, process, at_least: int, timeout: float = 120):
    """Until the training `process` writing `workdir` has a finished checkpoint of step
    `at_least` or later (an error if it exits first or the time runs out)."""
    deadline = time.time() + timeout
    while time.time() < deadline:
        steps = [int(p.name) for p in (workdir / "checkpoints").glob("*") if p.name.isdigit()]
        if any(s >= at_least for s in steps):
            return
        assert process.poll() is None, process.communicate()
        time.sleep(0.02)
    raise TimeoutError("no checkpoint appeared")


def steps_on_one_device_and_eight(objective, batches):
    """([host state after `batches` on one device, the same on 8 devices (data 4 x fsdp 2,
    every float array split)], the 8-device state), both stepped by the engine's jitted,
    sharded step from the initial state of key 0."""
    from jaxgen import parallel
    from jaxgen.train.loop import jit_train_step
    from jaxgen.train.state import state_layout

    finals = []
    for mesh in (parallel.make_mesh(1, jax.devices()[:1]), parallel.make_mesh(2)):
        _, shardings = state_layout(objective, mesh, min_fsdp_size=0)
        state = jax.jit(objective.init_state, out_shardings=shardings)(jax.random.PRNGKey(0))
        step = jit_train_step(objective, mesh, shardings)
        for batch in batches:
            state, _ = step(state, parallel.shard_batch(batch, mesh))
        finals.append(jax.device_get(state))
    return finals, state
