"""The training engine: state, optimizer, checkpoints, the loop, and one objective per family."""

from jaxgen.train.checkpoint import Checkpointer, CheckpointError
from jaxgen.train.families import make as make_objective
from jaxgen.train.loop import NonFiniteLossError, TrainResult, train
from jaxgen.train.state import TrainState, gradient_step, make_optimizer

__all__ = [
    "CheckpointError",
    "Checkpointer",
    "NonFiniteLossError",
    "TrainResult",
    "TrainState",
    "gradient_step",
    "make_objective",
    "make_optimizer",
    "train",
]
