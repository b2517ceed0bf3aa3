"""The objective contract as a user meets it: every family declares what it can do, a command
on a run whose family cannot do it is one line and exit code 2 (before any checkpoint is read),
and a family that declares a capability without its methods cannot be built."""

import pytest

from jaxgen import cli
from jaxgen import config as config_lib
from jaxgen.train import families
from jaxgen.train.objectives import (
    Encoder,
    Evaluator,
    LatentSpace,
    Objective,
    PromptToImage,
    Sampler,
    UsesFrozenRuns,
    supports,
)
from tests import helpers

DECLARED = {
    "vae": {Sampler, LatentSpace, Encoder, Evaluator},
    "gan": {Sampler, LatentSpace, Evaluator},
    "diffusion": {Sampler, LatentSpace, Encoder, Evaluator},
    "clip": {Evaluator},
    "ldm": {Sampler, PromptToImage, Evaluator, UsesFrozenRuns},
}
CONFIGS = {"vae": helpers.CPU_CONFIG, "gan": helpers.GAN_IMAGES_CONFIG,
           "diffusion": helpers.DIFFUSION_CONFIG, "clip": helpers.CLIP_CONFIG,
           "ldm": helpers.LDM_CONFIG}
# Each run command with the capability it needs and the arguments it takes beside --run.
COMMANDS = {"sample": (Sampler, []), "generate": (PromptToImage, ["a seven"]),
            "interpolate": (LatentSpace, []), "arith": (LatentSpace, []),
            "eval": (Evaluator, [])}
NEEDS = {Sampler: "a sampler", PromptToImage: "a text-to-image model",
         LatentSpace: "a latent space", Evaluator: "an evaluation"}


def test_every_family_declares_its_capabilities():
    assert set(families.FAMILIES) == set(DECLARED)
    everything = {Sampler, LatentSpace, Encoder, PromptToImage, Evaluator, UsesFrozenRuns}
    for name, cls in families.FAMILIES.items():
        assert supports(cls, Objective)
        assert {c for c in everything if supports(cls, c)} == DECLARED[name], name


def test_a_declared_capability_must_be_written():
    class Forgetful(Objective, Sampler):
        def init_state(self, key):
            return None

        def step(self, state, batch, key):
            return state, {}

    with pytest.raises(TypeError, match="abstract method.*sample"):
        Forgetful()


@pytest.fixture(scope="module")
def bare_runs(tmp_path_factory):
    """A run directory per family holding only its config: enough for the capability check,
    which comes before any checkpoint is read."""
    root = tmp_path_factory.mktemp("bare")
    for family, path in CONFIGS.items():
        (root / family).mkdir()
        (root / family / "config.json").write_text(config_lib.load(path).to_json())
    return root


def _pairs(applies: bool):
    return [(command, family) for command, (capability, _) in COMMANDS.items()
            for family in DECLARED if (capability in DECLARED[family]) == applies]


@pytest.mark.parametrize(("command", "family"), _pairs(applies=False))
def test_a_command_the_family_cannot_do_is_one_line(bare_runs, capsys, command, family):
    capability, extra = COMMANDS[command]
    assert cli.main([command, *extra, "--run", str(bare_runs / family)]) == 2
    have = [f for f in DECLARED if capability in DECLARED[f]]
    listed = have[0] if len(have) == 1 else f"{', '.join(have[:-1])} and {have[-1]}"
    err = capsys.readouterr().err
    assert err == (f"error: {command} needs {NEEDS[capability]}, which {listed} runs have; "
                   f"this is a {family} run\n")


@pytest.mark.parametrize(("command", "family"), _pairs(applies=True))
def test_a_command_the_family_can_do_gets_past_the_check(bare_runs, capsys, command, family):
    capability, extra = COMMANDS[command]
    assert cli.main([command, *extra, "--run", str(bare_runs / family)]) == 1
    assert "holds no checkpoint yet" in capsys.readouterr().err


def test_the_table_covers_every_pair():
    assert len(_pairs(True)) + len(_pairs(False)) == len(COMMANDS) * len(DECLARED)
    assert ("interpolate", "ldm") in _pairs(False) and ("sample", "clip") in _pairs(False)


def test_sample_options_a_family_does_not_take(tmp_path, capsys):
    assert cli.main(["train", "--workdir", str(tmp_path), *helpers.cli_args("steps=2")]) == 0
    capsys.readouterr()
    assert cli.main(["sample", "--run", str(tmp_path), "--guidance", "2", "--steps", "4"]) == 2
    assert capsys.readouterr().err == ("error: --steps, --guidance do not apply to vae runs "
                                       "(their sampling takes no options)\n")
    assert cli.main(["sample", "--run", str(tmp_path), "--labels", "1"]) == 2
    assert "error: --labels does not apply to vae runs" in capsys.readouterr().err
