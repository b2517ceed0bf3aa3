"""Held-out evaluation does not depend on how it is batched, padded, chunked or sharded."""

import jax
import numpy as np

from jaxgen import data, parallel
from jaxgen.eval import evaluate_vae
from jaxgen.train import make_objective


def test_evaluation_is_independent_of_batching_and_devices(tiny_config):
    objective = make_objective(tiny_config())
    params = objective.init_state(jax.random.PRNGKey(0)).params
    images = data.load_arrays("mnist5k", "test")[1][:50]
    one_device = parallel.make_mesh(1, jax.devices()[:1])
    whole = evaluate_vae(objective, params, images, mesh=one_device, num_samples=20,
                         batch_size=50)
    # 8 devices, batches of 16 (the last one padded), chunks of 5 draws.
    split = evaluate_vae(objective, params, images, mesh=parallel.make_mesh(1), num_samples=20,
                         batch_size=16, sample_chunk=5)
    for key in ("elbo", "iwae_nll", "kl"):
        np.testing.assert_allclose(split[key], whole[key], rtol=1e-5)
    assert whole["iwae_nll"] < -whole["elbo"]  # the IWAE bound is the tighter one
