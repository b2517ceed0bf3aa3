"""Evaluation metrics."""

from jaxgen.eval.vae import evaluate as evaluate_vae

__all__ = ["evaluate_vae"]
