"""Opening a finished (or running) training run from its directory, for sampling and evaluation."""

import dataclasses
from pathlib import Path

import jax

from jaxgen import config as config_lib
from jaxgen import parallel
from jaxgen.train import objectives
from jaxgen.train.checkpoint import Checkpointer, with_shardings


@dataclasses.dataclass
class Run:
    config: object
    objective: object
    state: object
    mesh: object

    @property
    def params(self):
        return self.state.eval_params


def load_run(workdir: str | Path, step: int | None = None) -> Run:
    workdir = Path(workdir)
    if not (workdir / "config.json").exists():
        raise FileNotFoundError(
            f"{workdir} is not a training run (no config.json); train one first with "
            "`python -m jaxgen train --config experiments/... --workdir DIR`."
        )
    config = config_lib.load(workdir / "config.json")
    objective = objectives.make(config)
    mesh = parallel.make_mesh(1)
    abstract = jax.eval_shape(objective.init_state, jax.random.PRNGKey(0))
    target = with_shardings(abstract, parallel.state_shardings(abstract, mesh))
    checkpointer = Checkpointer(workdir / "checkpoints")
    state = checkpointer.restore(target, step=step)
    checkpointer.close()
    if state is None:
        raise FileNotFoundError(f"{workdir / 'checkpoints'} holds no checkpoint yet.")
    return Run(config, objective, state, mesh)
