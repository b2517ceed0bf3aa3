"""Inception Score (Salimans et al. 2016, section 4): exp(E_x KL(p(y|x) || p(y))) from a
classifier's logits, with its mean and spread over splits of the samples.

As torchmetrics' `InceptionScore.compute`: optionally permute the samples, cut them into
chunks of ceil(N / splits) rows (`torch.chunk`; the last may be shorter, and when N is not a
multiple of `splits` there can be fewer chunks than `splits`), score each chunk against its own
marginal p(y), and report the mean and the sample standard deviation (ddof=1, torch's default;
Salimans et al.'s code used numpy's ddof=0). torchmetrics always permutes with torch's global
RNG; here the permutation is explicit: pass a key to permute, or None to split in the given
order (as Salimans et al.'s code did). Computed with numpy in float64.
"""

import math

import jax
import numpy as np

from jaxgen.metrics import _checks


def _log_softmax(logits: np.ndarray) -> np.ndarray:
    shifted = logits - logits.max(axis=1, keepdims=True)
    return shifted - np.log(np.sum(np.exp(shifted), axis=1, keepdims=True))


def _chunk_score(log_probs: np.ndarray) -> float:
    # log p(y) = log mean_x p(y|x), via a logsumexp so classes no sample predicts stay finite.
    peak = log_probs.max(axis=0)
    log_marginal = peak + np.log(np.mean(np.exp(log_probs - peak), axis=0))
    kl = np.sum(np.exp(log_probs) * (log_probs - log_marginal), axis=1)
    return float(np.exp(np.mean(kl)))


def inception_score(logits, splits: int = 10,
                    key: jax.Array | None = None) -> tuple[float, float]:
    """Inception Score of classifier predictions.

    Args:
      logits: [N, C] unnormalised log-probabilities of p(y|x) (log-probabilities work too),
        N >= splits.
      splits: number of chunks the samples are scored in (torchmetrics' and the paper's 10).
      key: a `jax.random` key to permute the samples before splitting (torchmetrics permutes);
        None keeps their order.

    Returns:
      (mean, std) over chunks, floats; std has ddof=1 (NaN for a single chunk). Between 1
      (every prediction the same) and C (confident predictions spread evenly over C classes).
    """
    logits = np.asarray(logits, np.float64)
    if logits.ndim != 2:
        raise ValueError(f"logits must have shape [N, C], got shape {logits.shape}")
    _checks.finite(logits, "logits")
    if not (isinstance(splits, int) and 1 <= splits <= logits.shape[0]):
        raise ValueError(f"splits must be an integer between 1 and the number of samples "
                         f"({logits.shape[0]}), got {splits!r}")
    if key is not None:
        logits = logits[np.asarray(jax.random.permutation(key, logits.shape[0]))]
    log_probs = _log_softmax(logits)
    size = math.ceil(logits.shape[0] / splits)
    scores = np.array([_chunk_score(log_probs[start:start + size])
                       for start in range(0, logits.shape[0], size)])
    std = float(np.std(scores, ddof=1)) if len(scores) > 1 else float("nan")
    return float(np.mean(scores)), std
