"""Fixed-seed fingerprints of every family: a tiny run of each is trained on 8 CPU devices, and
what it computes (its trained parameters, samples, codes, embeddings) is kept in
`tests/data/fingerprints.npz`. A refactor that claims "behaviour does not change" must give
the same arrays bit for bit (`tests/test_fingerprints.py`).

    python -m tests.fingerprints          # rewrite the fixture (only when behaviour is meant
                                          # to change, and say so in the commit)
"""

import os

if __name__ == "__main__":  # the test suite's device count (conftest sets it for pytest)
    os.environ["XLA_FLAGS"] = (os.environ.get("XLA_FLAGS", "")
                               + " --xla_force_host_platform_device_count=8").strip()
    os.environ.setdefault("JAXGEN_COMPILATION_CACHE", "")

import hashlib
import platform
from pathlib import Path

import jax
import jax.numpy as jnp
import numpy as np

from jaxgen import data, train
from jaxgen.data.text import tokenize
from jaxgen.train.run import load_run
from tests import helpers

FIXTURE = Path(__file__).resolve().parent / "data" / "fingerprints.npz"
SHORT = ("steps=6", "log_every=3", "checkpoint_every=6", "sample_every=0")
# The DCGAN's print was taken before its config gained the tools for limited data: kept plain.
PLAIN_GAN = ("gan.spectral_norm=False", "gan.augment=''", "gan.ada_target=0.0")


def params_digest(tree) -> np.ndarray:
    """SHA-256 of every leaf's path, dtype, shape and bytes, in path order, as uint8 [32]."""
    digest = hashlib.sha256()
    for path, leaf in jax.tree_util.tree_flatten_with_path(jax.device_get(tree))[0]:
        leaf = np.asarray(leaf)
        digest.update(f"{jax.tree_util.keystr(path)}|{leaf.dtype}|{leaf.shape}|".encode())
        digest.update(np.ascontiguousarray(leaf).tobytes())
    return np.frombuffer(digest.digest(), np.uint8)


def _test_images(num: int) -> np.ndarray:
    return data.load_arrays("mnist5k", "test")[1][:num]


def _trained(config, workdir):
    train.train(config, workdir)
    return load_run(workdir)


def compute(root: Path) -> dict[str, np.ndarray]:
    """The arrays of every family's tiny run, trained under `root`."""
    out = {}
    key = jax.random.PRNGKey(7)
    images = _test_images(4)

    run = _trained(helpers.tiny_config(*SHORT), root / "vae")
    out["vae/params"] = params_digest(run.state)
    out["vae/sample"] = np.asarray(run.objective.sample(run.params, key, 8))
    out["vae/codes"] = np.asarray(run.objective.encode(run.params, jnp.asarray(images))[0])

    run = _trained(helpers.tiny_gan_config(*SHORT), root / "gan_points")
    out["gan_points/params"] = params_digest(run.state)
    out["gan_points/sample"] = np.asarray(run.objective.sample(run.params, key, 64))

    run = _trained(helpers.tiny_gan_config(*SHORT, "model.num_classes=10", *PLAIN_GAN,
                                           images=True), root / "gan_images")
    out["gan_images/params"] = params_digest(run.state)
    out["gan_images/sample"] = np.asarray(run.objective.sample(run.params, key, 10))

    run = _trained(helpers.tiny_diffusion_config(*SHORT), root / "diffusion")
    objective, params = run.objective, run.params
    out["diffusion/params"] = params_digest(run.state)
    out["diffusion/sample"] = np.asarray(objective.sample(params, key, 10))
    x_T = jax.random.normal(key, (4, *objective.data_shape))
    out["diffusion/dpm_solver"] = np.asarray(objective.generate(
        params, x_T, key, jnp.arange(4), 2.0, (0.1, 50.0), sampler="dpm_solver", steps=3))
    out["diffusion/codes"] = np.asarray(objective.encode(params, jnp.asarray(images[:2]))[0])

    run = _trained(helpers.tiny_diffusion_config(
        *SHORT, "diffusion.parameterization='flow'", "sample.sampler='heun'", "model.kind='dit'",
        "model.patch_size=4", "model.hidden=32", "model.depth=2", "model.num_heads=2"),
        root / "flow_dit")
    out["flow_dit/params"] = params_digest(run.state)
    out["flow_dit/sample"] = np.asarray(run.objective.sample(run.params, key, 10))

    run = _trained(helpers.tiny_clip_config(*SHORT), root / "clip")
    out["clip/params"] = params_digest(run.state)
    out["clip/images"] = np.asarray(run.objective.embed_images(run.params, jnp.asarray(images)))
    tokens = jnp.asarray(tokenize(["a thin seven", "the digit 3"], run.objective.text_length))
    out["clip/texts"] = np.asarray(run.objective.embed_texts(run.params, tokens))

    _trained(helpers.tiny_autoencoder_config(), root / "autoencoder")
    run = _trained(helpers.tiny_ldm_config(root / "autoencoder", root / "clip", *SHORT),
                   root / "ldm")
    out["ldm/params"] = params_digest(run.state)
    out["ldm/sample"] = np.asarray(run.objective.sample(run.params, key, 4))
    return out


def machine() -> str:
    """What bit-identity depends on: jax's version and the processor."""
    model = platform.processor()
    cpuinfo = Path("/proc/cpuinfo")
    if cpuinfo.exists():
        names = [line.split(":", 1)[1].strip() for line in cpuinfo.read_text().splitlines()
                 if line.startswith("model name")]
        model = names[0] if names else model
    return f"jax {jax.__version__}, {platform.machine()} {model}"


if __name__ == "__main__":
    import tempfile

    with tempfile.TemporaryDirectory() as tmp:
        arrays = compute(Path(tmp))
    FIXTURE.parent.mkdir(exist_ok=True)
    np.savez_compressed(FIXTURE, machine=np.array(machine()), **arrays)
    print(f"wrote {len(arrays)} arrays to {FIXTURE} ({machine()})")
