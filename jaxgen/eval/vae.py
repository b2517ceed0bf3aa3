"""Held-out likelihood of a VAE: the ELBO and the importance-weighted bound (IWAE NLL).

Test images are binarised once with a fixed key (for the Bernoulli likelihood), so two models
scored with the same seed see the same binary digits. Both bounds come from the same K posterior
samples per example: the ELBO as the mean of the K one-sample bounds, the IWAE bound as their
log-mean-exp (Burda et al. 2016), which tightens toward log p(x) as K grows.
"""

import jax
import jax.numpy as jnp
import numpy as np

from jaxgen import losses, parallel


def _bounds(objective, params, images, targets, key, num_samples: int, chunk: int):
    model = objective.model(params)
    mean, log_var = model.encode(images)

    def log_weights(chunk_key):
        eps = jax.random.normal(chunk_key, (chunk, *mean.shape))
        z = mean + jnp.exp(0.5 * log_var) * eps  # [chunk, B, D]
        outputs = model.decode(z.reshape(-1, z.shape[-1]))
        tiled = jnp.broadcast_to(targets, (chunk, *targets.shape)).reshape(outputs.shape)
        log_likelihood = objective.log_likelihood(model, outputs, tiled).reshape(chunk, -1)
        log_prior = losses.diagonal_gaussian_log_density(z, 0.0, 0.0)
        log_posterior = losses.diagonal_gaussian_log_density(z, mean, log_var)
        return log_likelihood, log_prior, log_posterior

    keys = jax.random.split(key, num_samples // chunk)
    terms = jax.lax.map(log_weights, keys)  # three [n_chunks, chunk, B]
    log_likelihood, log_prior, log_posterior = (t.reshape(num_samples, -1) for t in terms)
    kl = losses.gaussian_kl(mean, log_var)
    elbo = jnp.mean(log_likelihood, axis=0) - kl
    iwae = losses.iwae_bound(log_likelihood, log_prior, log_posterior)
    return elbo, iwae, kl


def evaluate(
    objective,
    params,
    images: np.ndarray,
    *,
    mesh,
    seed: int = 0,
    num_samples: int = 500,
    batch_size: int = 100,
    sample_chunk: int = 50,
) -> dict[str, float]:
    """Mean held-out ELBO (nats, higher is better) and IWAE NLL (nats, lower is better).

    `images` [N, ...] in [-1, 1]. Batches are split over the mesh's devices; the last one is
    padded and the padding masked out.
    """
    if num_samples % sample_chunk:
        sample_chunk = np.gcd(num_samples, sample_chunk)
    batch_size = -(-batch_size // mesh.size) * mesh.size
    binarize_key, sample_key = jax.random.split(jax.random.PRNGKey(seed))
    targets = np.asarray(objective.targets(binarize_key, jnp.asarray(images)))
    sharding = parallel.batch_sharding(mesh)
    bounds = jax.jit(
        lambda p, x, t, k: _bounds(objective, p, x, t, k, num_samples, sample_chunk),
        in_shardings=(None, sharding, sharding, None),
    )
    totals = {"elbo": [], "iwae": [], "kl": []}
    for start in range(0, len(images), batch_size):
        x, t = images[start:start + batch_size], targets[start:start + batch_size]
        valid = len(x)
        if valid < batch_size:
            pad = [(0, batch_size - valid)] + [(0, 0)] * (x.ndim - 1)
            x, t = np.pad(x, pad), np.pad(t, pad)
        key = jax.random.fold_in(sample_key, start)
        out = jax.device_get(bounds(params, x, t, key))
        for name, value in zip(totals, out, strict=True):
            totals[name].append(np.asarray(value)[:valid])
    result = {k: float(np.mean(np.concatenate(v))) for k, v in totals.items()}
    return {
        "elbo": result["elbo"],
        "iwae_nll": -result["iwae"],
        "kl": result["kl"],
        "num_examples": len(images),
        "iwae_samples": num_samples,
    }
