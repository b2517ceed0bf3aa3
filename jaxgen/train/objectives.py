"""The objective contract: what the engine needs of every model family, and the capabilities a
family may offer beside it.

Every family's objective is an `Objective`: built from a config, it makes its train state from
a key and steps it, `step(state, batch, key) -> (state, metrics)`. The loop needs no more.

A capability is a small Protocol of its own (`Sampler`, `LatentSpace`, `Encoder`,
`PromptToImage`, `Evaluator`, `UsesFrozenRuns`). A family declares one by naming it among its
base classes, `class VAEObjective(Objective, Sampler, Encoder, Evaluator)`, and the loop and the
CLI ask the declaration, `supports(objective, Encoder)`, never the attributes. A capability's
methods are abstract, so a family that declares one without writing its methods fails when it
is built, not when a command first needs them.

`jaxgen.train.families` maps family names to objectives and says, in one line, which families
have a capability a command needs (`CapabilityError`).
"""

import abc
import dataclasses
from typing import Any, ClassVar, Protocol

import jax


class CapabilityError(Exception):
    """A command asked a run for something its family does not do (e.g. `interpolate` on a
    CLIP run). The CLI prints it as one line and exits with code 2."""


@dataclasses.dataclass
class Run:
    """An opened run, what capabilities act on: its config, objective, train state and mesh."""

    config: Any
    objective: Any
    state: Any
    mesh: Any

    @property
    def params(self):
        return self.state.eval_params


class Objective(Protocol):
    """What the engine trains: a model family's state and its pure step."""

    config: Any  # the run's ConfigDict
    progress_metrics: ClassVar[tuple[str, ...]] = ("loss",)  # shown on the progress bar
    # The dotted config entry holding the shape of one training example, checked against the
    # dataset before anything is built.
    example_shape_key: ClassVar[str] = "model.data_shape"

    @abc.abstractmethod
    def init_state(self, key: jax.Array):
        """The initial `TrainState` (a pure function of the key: jitted with out_shardings)."""

    @abc.abstractmethod
    def step(self, state, batch: dict, key: jax.Array) -> tuple[Any, dict]:
        """One pure training step: (new state, flat dict of scalar metrics)."""


def supports(objective, capability) -> bool:
    """Whether `objective` (or an objective class) declares `capability`."""
    cls = objective if isinstance(objective, type) else type(objective)
    return capability in cls.__mro__


# Capabilities.


@dataclasses.dataclass(frozen=True)
class SampleOptions:
    """What a user may ask of `sample` beyond the count and seed; None leaves the run's config
    default. Which fields a family takes is its `Sampler.sample_options`."""

    sampler: str | None = None
    steps: int | None = None
    guidance: float | None = None
    interval: tuple[float, float] | None = None
    labels: tuple[int, ...] | None = None

    def given(self) -> list[str]:
        return [f.name for f in dataclasses.fields(self) if getattr(self, f.name) is not None]


class Sampler(Protocol):
    """Draws new data from noise: the `sample` command and the loop's sample grids."""

    sample_options: ClassVar[tuple[str, ...]] = ()  # the SampleOptions fields it takes

    @abc.abstractmethod
    def sample(self, params, key: jax.Array, num: int) -> jax.Array:
        """`num` samples [num, *data_shape] in the data range, with the config's settings."""

    def draw(self, params, key: jax.Array, num: int, options: SampleOptions,
             mesh) -> tuple[jax.Array, jax.Array | None]:
        """(samples, the class of each or None) with `options` applied, for the `sample`
        command. The default takes no options and no classes."""
        del mesh
        self.check_options(options)
        return jax.jit(self.sample, static_argnums=2)(params, key, num), None

    def check_options(self, options: SampleOptions) -> None:
        """Refuses the options this family does not take."""
        if refused := [name for name in options.given() if name not in self.sample_options]:
            raise CapabilityError(
                f"{', '.join('--' + name for name in refused)} "
                f"{'does' if len(refused) == 1 else 'do'} not apply to "
                f"{self.config.family} runs (their sampling takes "
                f"{', '.join('--' + n for n in self.sample_options) or 'no options'})")


class LatentSpace(Protocol):
    """A decoder of flat latent codes: interpolation between prior draws, latent arithmetic on
    classified draws, and latent walks (`interpolate`, `arith`)."""

    # `sample.pictures.walk_frames` keywords: a family whose decode is costly walks a shorter
    # tour (a diffusion model's decode is a whole sampler run).
    walk_tour: ClassVar[dict] = {}

    @property
    @abc.abstractmethod
    def latent_dim(self) -> int:
        """The size of a flat code."""

    @abc.abstractmethod
    def decode(self, params, z: jax.Array) -> jax.Array:
        """Data [N, *data_shape] from codes z [N, latent_dim]."""


class Encoder(LatentSpace, Protocol):
    """Codes of real data, so `interpolate` and `arith` work between encoded test images."""

    @abc.abstractmethod
    def encode(self, params, images: jax.Array) -> tuple[jax.Array, Any]:
        """(codes [N, latent_dim], the family's extra: a VAE's log-variances, or None)."""


class PromptToImage(Protocol):
    """Text to image: the `generate` command and `jaxgen.pipeline.TextToImage`."""

    @abc.abstractmethod
    def text_to_image(self, params, mesh, prompts, num: int, *, guidance=None, interval=None,
                      seed: int = 0, sampler=None, steps=None, batch_size: int = 64):
        """uint8 images [num, H, W, C] of `prompts` taken in turn (see `TextToImage`)."""


@dataclasses.dataclass(frozen=True)
class EvalOptions:
    """The `eval` command's choices; None takes the run's config (`eval` section)."""

    num: int | None = None  # test examples (VAE), samples (GAN, diffusion), per prompt (ldm)
    iwae_samples: int | None = None
    seed: int = 0
    out_dir: Any = None  # where pictures of the evaluation go (the run directory)
    # The parameters of the other runs the evaluation reads (`UsesFrozenRuns.evaluation_runs`),
    # by name; a part whose run is not there is missing.
    frozen: Any = None


class Evaluator(Protocol):
    """The family's metrics of a run: the `eval` command."""

    @abc.abstractmethod
    def evaluate(self, run: Run, options: EvalOptions) -> dict:
        """A JSON-able dict of metrics (with the step and the seconds it took)."""


@dataclasses.dataclass(frozen=True)
class FrozenRun:
    """A part of this run's parameters that another run trained, frozen here.

    `setting` is the config entry naming the run (for messages: "ldm.autoencoder_run"),
    `config` the part's config as this run expects it (found at the entry `config_entry`),
    `sections` the dotted entries of it that the other run's saved config must match,
    `subtree` the key of that run's parameters to take (None: all of them).
    """

    setting: str
    workdir: str
    config: Any
    config_entry: str
    sections: tuple[str, ...]
    subtree: str | None = None


class UsesFrozenRuns(Protocol):
    """Parts trained elsewhere (latent diffusion's autoencoder and text tower). The objective
    names them; the engine reads them (`train.run.load_frozen`) when a run starts and hands the
    arrays in, so no objective opens a run directory itself."""

    @abc.abstractmethod
    def frozen_runs(self) -> dict[str, FrozenRun]:
        """The parts by name."""

    @abc.abstractmethod
    def with_frozen(self, state, parts: dict, shardings):
        """`state` with the loaded `parts` (host arrays, by name) placed in its parameters."""

    def evaluation_runs(self) -> dict[str, FrozenRun]:
        """Other runs only `evaluate` reads (by name; the engine hands their parameters in as
        `EvalOptions.frozen`): none unless a family says so."""
        return {}
