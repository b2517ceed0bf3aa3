"""Spectral normalisation (Miyato et al. 2018) as a pure transform of a parameter tree.

Every weight W of at least two dimensions (kernels, embeddings) is divided by an estimate of
its largest singular value sigma(W), taken over the matrix of its last axis against all others
(a conv kernel [kh, kw, in, out] as [kh * kw * in, out]). The estimate is one step of power
iteration per call from a vector u kept between steps: state beside the parameters, not a
parameter, updated inside the jitted step and checkpointed with the rest (the GAN's
`params["discriminator_sn"]`, as the generator's batch statistics sit beside its weights).
u and v are held constant in the gradient, as in Miyato et al.'s code and PyTorch's
`spectral_norm`.
"""

import jax
import jax.numpy as jnp
import numpy as np


def _name(path) -> str:
    return "/".join(str(getattr(k, "key", getattr(k, "idx", k))) for k in path)


def _normalized_leaves(params) -> list[tuple[str, jax.Array]]:
    leaves = jax.tree_util.tree_flatten_with_path(params)[0]
    return [(_name(path), leaf) for path, leaf in leaves if np.ndim(leaf) >= 2]


def _l2_normalize(x, eps):
    return x * jax.lax.rsqrt(jnp.maximum(jnp.sum(x * x), eps * eps))


def init(key: jax.Array, params) -> dict[str, jax.Array]:
    """A unit vector u [out] per normalised weight, by its path ("conv_0/kernel")."""
    leaves = _normalized_leaves(params)
    keys = jax.random.split(key, max(len(leaves), 1))
    return {name: _l2_normalize(jax.random.normal(k, (leaf.shape[-1],), jnp.float32), 1e-12)
            for (name, leaf), k in zip(leaves, keys, strict=False)}


def normalize(params, vectors: dict[str, jax.Array], *, n_steps: int = 1,
              eps: float = 1e-12):
    """(params with each weight W / sigma(W), the updated vectors, {path: sigma}) after
    `n_steps` of power iteration from `vectors`; gradients reach W through both W and
    sigma(W)."""
    leaves, treedef = jax.tree_util.tree_flatten_with_path(params)
    new_leaves, new_vectors, sigmas = [], {}, {}
    for path, leaf in leaves:
        name = _name(path)
        if np.ndim(leaf) < 2:
            new_leaves.append(leaf)
            continue
        if name not in vectors:
            raise KeyError(f"no spectral-norm vector for {name}: the vectors were made for "
                           "another model")
        w = leaf.reshape(-1, leaf.shape[-1]).astype(jnp.float32)
        u = vectors[name]
        for _ in range(n_steps):
            v = _l2_normalize(w @ u, eps)
            u = _l2_normalize(w.T @ v, eps)
        u, v = jax.lax.stop_gradient(u), jax.lax.stop_gradient(v)
        sigma = v @ (w @ u)
        new_leaves.append((leaf / sigma).astype(leaf.dtype))
        new_vectors[name], sigmas[name] = u, sigma
    return jax.tree_util.tree_unflatten(treedef, new_leaves), new_vectors, sigmas
