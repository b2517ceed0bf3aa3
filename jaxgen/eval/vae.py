"""Held-out likelihood of a VAE: the ELBO and the importance-weighted bound (IWAE NLL).

Test images are binarised once with a fixed key (for the Bernoulli likelihood), so two models
scored with the same seed see the same binary digits. For each example, K posterior samples give
the IWAE bound (Burda et al. 2016, eq. 8), which tightens toward log p(x) as K grows, and the
ELBO as the mean of their reconstruction terms minus the analytic KL. Each example draws its
noise from its own key (the seed folded with its index), so the figures do not depend on the
batch size or the device count.
"""

import time

import jax
import jax.numpy as jnp
import numpy as np

from jaxgen import data, losses, parallel


def _bounds(objective, params, inputs, targets, keys, num_samples: int, chunk: int):
    """Per-example (elbo, iwae, kl), each [B], from `num_samples` draws per example.

    Args:
        inputs: [B, ...] encoder inputs. targets: [B, ...] what the likelihood scores.
        keys: [B] one PRNG key per example. The K draws go through the decoder `chunk` at a
            time (K / chunk sequential chunks of chunk * B decodes) to bound memory.
    """
    model = objective.model(params)
    mean, log_var = model.encode(inputs)  # [B, D]

    # All K draws of an example come from its own key, whatever the chunking.
    eps = jax.vmap(lambda k: jax.random.normal(k, (num_samples, mean.shape[-1])))(keys)
    eps = jnp.moveaxis(eps.reshape(len(keys), -1, chunk, mean.shape[-1]), 0, 2)  # [K/c, c, B, D]

    def chunk_terms(chunk_eps):
        z = mean + jnp.exp(0.5 * log_var) * chunk_eps  # [chunk, B, D]
        outputs = model.decode(z.reshape(-1, z.shape[-1]))
        tiled = jnp.broadcast_to(targets, (chunk, *targets.shape)).reshape(outputs.shape)
        log_likelihood = objective.log_likelihood(model, outputs, tiled).reshape(chunk, -1)
        log_prior = losses.diagonal_gaussian_log_density(z, 0.0, 0.0)
        log_posterior = losses.diagonal_gaussian_log_density(z, mean, log_var)
        return log_likelihood, log_prior, log_posterior

    terms = jax.lax.map(chunk_terms, eps)  # 3 x [K/chunk, chunk, B]
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
    padded and the padding dropped before averaging.
    """
    if num_samples < 1 or len(images) == 0:
        raise ValueError("evaluation needs at least one example and one sample per example")
    sample_chunk = int(np.gcd(num_samples, sample_chunk))
    batch_size = -(-batch_size // mesh.size) * mesh.size
    binarize_key, sample_key = jax.random.split(jax.random.PRNGKey(seed))
    inputs, targets = (np.asarray(a) for a in objective.prepare(binarize_key, jnp.asarray(images)))
    example_keys = jax.vmap(lambda i: jax.random.fold_in(sample_key, i))(jnp.arange(len(images)))
    example_keys = np.asarray(example_keys)
    sharding = parallel.batch_sharding(mesh)
    bounds = jax.jit(
        lambda p, x, y, k: _bounds(objective, p, x, y, k, num_samples, sample_chunk),
        in_shardings=(None, sharding, sharding, sharding),
    )
    totals = {"elbo": [], "iwae": [], "kl": []}
    for start in range(0, len(images), batch_size):
        batch = [a[start:start + batch_size] for a in (inputs, targets, example_keys)]
        valid = len(batch[0])
        if valid < batch_size:
            batch = [np.pad(a, [(0, batch_size - valid)] + [(0, 0)] * (a.ndim - 1))
                     for a in batch]
        out = jax.device_get(bounds(params, *batch))
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


def evaluate_run(run, options) -> dict:
    """`evaluate` on the run's `eval.split` (the first `options.num` or `eval.num_examples`
    examples), with K = `options.iwae_samples` or `eval.iwae_samples`."""
    cfg = run.config
    _, images, _ = data.load_arrays(cfg.data.name, cfg.eval.split, seed=cfg.seed,
                                    data_dir=cfg.data.data_dir)
    images = images[: options.num or cfg.eval.num_examples]
    t0 = time.perf_counter()
    metrics = evaluate(run.objective, run.params, images, mesh=run.mesh,
                       num_samples=options.iwae_samples or cfg.eval.iwae_samples,
                       batch_size=cfg.eval.batch_size, seed=options.seed)
    metrics.update(step=int(run.state.step), seconds=time.perf_counter() - t0,
                   split=cfg.eval.split, dataset=cfg.data.name)
    return metrics
