"""Autoencoders leave for diffusers: a VAE run of model.kind "kl" and the autoencoder of a latent
diffusion run are written as `AutoencoderKL` folders that jaxgen's reader (proven against
diffusers by the fixtures of test_pretrained.py) and, where installed, diffusers itself read
back to the same numbers; what has no counterpart is refused or named."""

import json

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from flax import nnx

from jaxgen import config as config_lib
from jaxgen import parallel, pretrained
from jaxgen.models.autoencoder_kl import AutoencoderKL
from jaxgen.pretrained import PretrainedError
from jaxgen.train import families
from jaxgen.train.objectives import Run
from tests import helpers

KL_CONFIG = helpers.ROOT / "experiments" / "autoencoder_kl_mnist5k.py"
# 28x28 digits to a 7x7x2 grid through three narrow levels, as TINY_LDM's U-Net expects.
TINY_KL = ["model.channels=(8, 16, 16)", "model.norm_groups=8",
           *(o for o in helpers.TINY_AUTOENCODER if not o.startswith("model.channels"))]


def _run(config, key=0, edit=None) -> Run:
    """`config`'s freshly initialised state opened as a run (no training needed to export)."""
    objective = families.make(config)
    state = objective.init_state(jax.random.PRNGKey(key))
    if edit is not None:
        ema = None if state.ema_params is None else edit(state.ema_params)
        state = state.replace(params=edit(state.params), ema_params=ema)
    return Run(config, objective, state, parallel.make_mesh(1))


def _kl_config(*overrides):
    return config_lib.override(config_lib.load(KL_CONFIG), [*TINY_KL, *overrides])


def _reread(folder):
    """The exported folder read by jaxgen's diffusers reader: (module, scaling_factor)."""
    kwargs, params, scaling = pretrained.load_vae(folder)
    graphdef = nnx.graphdef(nnx.eval_shape(lambda: AutoencoderKL(**kwargs, rngs=nnx.Rngs(0))))
    return nnx.merge(graphdef, params), scaling


def _images():
    return jax.random.uniform(jax.random.PRNGKey(1), (2, 28, 28, 1), minval=-1, maxval=1)


def test_kl_autoencoder_run_exports_as_autoencoder_kl(tmp_path):
    run = _run(_kl_config())
    exported = pretrained.export_run(run, tmp_path / "vae")
    assert exported.loads_with == "AutoencoderKL.from_pretrained" and not exported.left_out
    back, scaling = _reread(exported.folder)
    params = jax.device_get(run.params)
    assert scaling == pytest.approx(run.objective.latent_scale(params, run.config.data,
                                                               run.config.seed))
    ours = run.objective.model(params)
    x = _images()
    mean, log_var = ours.encode_grid(x)
    decoded = ours.decode_grid(mean)
    back_mean, back_log_var = back.encode(x)
    for a, b in ((back_mean, mean), (back_log_var, log_var), (back.decode(mean), decoded)):
        np.testing.assert_array_equal(np.asarray(a), np.asarray(b))

    torch = pytest.importorskip("torch")
    diffusers = pytest.importorskip("diffusers")
    vae = diffusers.AutoencoderKL.from_pretrained(exported.folder).eval()
    assert vae.config.scaling_factor == pytest.approx(scaling)
    with torch.no_grad():
        their_mean = vae.encode(torch.from_numpy(np.asarray(x).transpose(0, 3, 1, 2)))
        their_mean = their_mean.latent_dist.mean
        their_decoded = vae.decode(their_mean).sample
    for theirs, mine in ((their_mean, mean), (their_decoded, decoded)):
        theirs = theirs.numpy().transpose(0, 2, 3, 1)
        np.testing.assert_allclose(theirs, np.asarray(mine), atol=1e-4 * np.abs(theirs).max())


def test_latent_diffusion_run_exports_its_autoencoder(tmp_path):
    config = helpers.tiny_ldm_config("unused", "unused")
    config.ldm.autoencoder = _kl_config()
    run = _run(config, edit=lambda params: {**params, "latent_scale": jnp.float32(0.625)})
    exported = pretrained.export_run(run, tmp_path / "ldm")
    assert exported.folder == tmp_path / "ldm" / "vae"
    assert [part.split(" (")[0] for part in exported.left_out] == ["the U-Net", "the text tower"]
    back, scaling = _reread(exported.folder)
    assert scaling == 0.625
    ours = nnx.state(back, nnx.Param).to_pure_dict()
    jax.tree.map(np.testing.assert_array_equal, ours,
                 jax.device_get(run.params["autoencoder"]["autoencoder"]))


def test_export_refuses_autoencoders_diffusers_cannot_express(tmp_path):
    spatial = config_lib.override(config_lib.load(helpers.AUTOENCODER_CONFIG),
                                  helpers.TINY_AUTOENCODER)
    with pytest.raises(PretrainedError, match="'spatial' autoencoder has no diffusers"):
        pretrained.export_run(_run(spatial), tmp_path / "x")
    with pytest.raises(PretrainedError, match="decodes Bernoulli logits"):
        pretrained.export_run(_run(_kl_config("model.likelihood='bernoulli'")), tmp_path / "x")
    with pytest.raises(PretrainedError, match="a gan run has no diffusers counterpart"):
        pretrained.export_run(_run(helpers.tiny_gan_config()), tmp_path / "x")
    assert not (tmp_path / "x").exists()


@pytest.mark.slow  # 35 s: a training process and an export process, each compiling from scratch
def test_cli_trains_and_exports_a_kl_autoencoder(tmp_path):
    workdir, out = tmp_path / "run", tmp_path / "exported"
    result = helpers.run_cli(["train", *helpers.cli_args(config=KL_CONFIG, tiny=TINY_KL),
                              "--workdir", str(workdir)])
    assert result.returncode == 0, result.stderr
    result = helpers.run_cli(["export", "--run", str(workdir), "--to", str(out)])
    assert result.returncode == 0, result.stderr
    assert f"AutoencoderKL.from_pretrained({str(out)!r})" in result.stdout
    config = json.loads((out / "config.json").read_text())
    assert config["_class_name"] == "AutoencoderKL" and config["block_out_channels"] == [8, 16,
                                                                                         16]
    metrics = [json.loads(line) for line in (workdir / "metrics.jsonl").read_text().splitlines()]
    assert all(np.isfinite(m["loss"]) for m in metrics if "loss" in m)
