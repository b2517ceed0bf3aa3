"""The bfloat16 path accelerators take ("auto" there), exercised on the CPU for every family:
parameters and optimizer state stay float32, training makes progress, and a bfloat16 step's
loss agrees with the float32 one on the same state and batch."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from jaxgen import data
from jaxgen.train import make_objective
from tests import helpers

CONFIGS = {
    "vae": lambda *o: helpers.tiny_config("model.kind='conv'", *o),
    "gan": lambda *o: helpers.tiny_gan_config(*o, images=True),
    "diffusion": lambda *o: helpers.tiny_diffusion_config(*o),
    "clip": lambda *o: helpers.tiny_clip_config(*o),
}
# |bf16 loss - f32 loss| / |f32 loss| of the first step: bfloat16 keeps 8 bits of mantissa
# (a relative rounding of 2**-9 per value), and a loss sums thousands of them.
TOLERANCE = 0.03
STEPS = 10


def _batch(config):
    _, iterator = data.train_iterator(config.data.name, config.batch_size, seed=0,
                                      num_threads=1, text_length=config.data.get("text_length", 0))
    return {k: jnp.asarray(v) for k, v in next(iterator).items()}


# The U-Net's bfloat16 convolutions are emulated on this CPU (it has no bf16 units): 50 s.
FAMILIES = ["clip", pytest.param("diffusion", marks=pytest.mark.slow), "gan", "vae"]


@pytest.mark.parametrize("family", FAMILIES)
def test_bfloat16_compute_trains_with_float32_state(family):
    config = CONFIGS[family]()
    low, high = (make_objective(CONFIGS[family](f"compute_dtype='{dtype}'"))
                 for dtype in ("bfloat16", "float32"))
    batch, key = _batch(config), jax.random.PRNGKey(0)
    state = jax.jit(low.init_state)(key)
    name = low.progress_metrics[0]  # the loss ("d_loss" for the GAN)
    step, losses = jax.jit(low.step), []
    for t in range(STEPS):
        state, metrics = step(state, batch, jax.random.PRNGKey(t))
        losses.append(float(metrics[name]))
    floats = {x.dtype for x in jax.tree.leaves((state.params, state.opt_state))
              if jnp.issubdtype(x.dtype, jnp.floating)}
    assert floats == {jnp.dtype(jnp.float32)}, (family, floats)
    assert all(np.isfinite(losses)) and metrics[name].dtype == jnp.float32
    assert np.mean(losses[-3:]) < losses[0], (family, losses)

    # The same step from the trained state (at init the diffusion U-Net's zero output layer
    # makes every dtype's loss E[eps^2]), in each precision.
    _, in_low = step(state, batch, key)
    _, in_high = jax.jit(high.step)(state, batch, key)
    error = abs(float(in_low[name]) - float(in_high[name])) / abs(float(in_high[name]))
    assert 0 < error < TOLERANCE, (family, error)  # nonzero: the bf16 path really ran
