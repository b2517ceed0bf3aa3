"""The train state pytree, the optimizer built from a config, and the shared gradient update."""

from collections.abc import Callable
from typing import Any

import jax
import jax.numpy as jnp
import optax
from flax import nnx, struct

from jaxgen import parallel, platforms


class TrainState(struct.PyTreeNode):
    """Everything that changes from step to step; all of it is checkpointed.

    `params` and `ema_params` are plain nested dicts of arrays (an NNX State's pure dict), merged
    with the model's graphdef inside the loss. `ema_params` is None when EMA is off. `rng` is the
    run's base key: step s draws with `fold_in(rng, s)`, so a resumed run continues the stream.
    """

    step: jax.Array
    params: Any
    opt_state: Any
    ema_params: Any
    rng: jax.Array

    @property
    def eval_params(self):
        """The EMA parameters when kept (they sample and score better), else the raw ones."""
        return self.params if self.ema_params is None else self.ema_params

    @classmethod
    def create(cls, params, tx: optax.GradientTransformation, rng: jax.Array, use_ema: bool):
        return cls(
            step=jnp.zeros((), jnp.int32),
            params=params,
            opt_state=tx.init(params),
            ema_params=jax.tree.map(jnp.copy, params) if use_ema else None,
            rng=rng,
        )


def init_state(build: Callable[[nnx.Rngs], nnx.Module], tx: optax.GradientTransformation,
               ema_decay: float, key: jax.Array) -> TrainState:
    """The train state of one network: `build`'s parameters (`nnx.Param` only: no other
    variable reaches the optimizer) initialised from one half of `key`, the other half the
    run's base key."""
    init_key, rng = jax.random.split(key)
    params = nnx.state(build(nnx.Rngs(init_key)), nnx.Param).to_pure_dict()
    return TrainState.create(params, tx, rng, use_ema=ema_decay > 0)


def state_layout(objective, mesh, min_fsdp_size: int = 2**14) -> tuple[Any, Any]:
    """(abstract state, shardings) of an objective's train state on `mesh`, built without
    allocating it: the target for creating the state sharded, and for restoring it."""
    abstract = jax.eval_shape(objective.init_state, jax.random.PRNGKey(0))
    return abstract, parallel.state_shardings(abstract, mesh, min_fsdp_size)


def make_optimizer(optim, total_steps: int) -> optax.GradientTransformation:
    """Adam or AdamW with linear warm-up then cosine decay, after global-norm clipping.

    `optim` fields: name ("adam" | "adamw"), learning_rate, warmup_steps, min_lr_ratio
    (final lr / peak lr), b1, b2, weight_decay (adamw), grad_clip_norm (0 disables).
    """
    schedule = optax.warmup_cosine_decay_schedule(
        init_value=0.0,
        peak_value=optim.learning_rate,
        warmup_steps=min(optim.warmup_steps, max(total_steps - 1, 0)),
        decay_steps=max(total_steps, 1),
        end_value=optim.learning_rate * optim.min_lr_ratio,
    )
    if optim.name == "adam":
        opt = optax.adam(schedule, b1=optim.b1, b2=optim.b2)
    elif optim.name == "adamw":
        opt = optax.adamw(schedule, b1=optim.b1, b2=optim.b2, weight_decay=optim.weight_decay)
    else:
        raise ValueError(f"optim.name must be 'adam' or 'adamw', got {optim.name!r}")
    if optim.grad_clip_norm:
        return optax.chain(optax.clip_by_global_norm(optim.grad_clip_norm), opt)
    return opt


def ema_update(ema_params: Any, params: Any, step: jax.Array, decay: float) -> Any:
    """One step of the parameters' exponential moving average, with warm-up.

    The decay is min(decay, (1 + t) / (10 + t)) at step t (TensorFlow's ExponentialMovingAverage
    with num_updates), so early averages do not keep the random initialisation: without it, a
    0.999 average after 1,500 steps still holds 22% of the init.
    """
    t = jnp.asarray(step, jnp.float32)
    decay = jnp.minimum(decay, (1.0 + t) / (10.0 + t))
    return optax.incremental_update(params, ema_params, step_size=1.0 - decay)


def gradient_step(
    state: TrainState,
    loss_fn: Callable[[Any, Any, jax.Array], tuple[jax.Array, dict]],
    batch: Any,
    key: jax.Array,
    tx: optax.GradientTransformation,
    ema_decay: float,
) -> tuple[TrainState, dict[str, jax.Array]]:
    """One optimizer step on `loss_fn(params, batch, key) -> (loss, metrics)`.

    The EMA of the parameters (`ema_update`) is updated here, inside the jitted step, so it is
    exact on every step and lives in the checkpoint.
    """
    (loss, metrics), grads = jax.value_and_grad(loss_fn, has_aux=True)(state.params, batch, key)
    params, opt_state = apply_gradients(tx, state.params, state.opt_state, grads)
    ema_params = state.ema_params
    if ema_params is not None:
        ema_params = ema_update(ema_params, params, state.step, ema_decay)
    metrics = {"loss": loss, "grad_norm": optax.global_norm(grads), **metrics}
    new_state = state.replace(
        step=state.step + 1, params=params, opt_state=opt_state, ema_params=ema_params
    )
    return new_state, metrics


def apply_gradients(tx: optax.GradientTransformation, params: Any, opt_state: Any,
                    grads: Any) -> tuple[Any, Any]:
    """(new params, new optimizer state) after one update of `tx` with `grads`."""
    updates, opt_state = tx.update(grads, opt_state, params)
    return optax.apply_updates(params, updates), opt_state


def attention_kernel(config) -> str:
    """The config's `attention_implementation` ("auto" in configs written before it)."""
    return config.get("attention_implementation", "auto")


def compute_dtype(name: str):
    """"auto": bfloat16 when building for a GPU or TPU, float32 for a CPU (`platforms.current`,
    the host's backend unless a program is being exported for another); else the named dtype."""
    if name == "auto":
        return jnp.bfloat16 if platforms.is_accelerator() else jnp.float32
    return jnp.dtype(name)
