"""The benchmarks harness: FLOPs against closed forms, timing bookkeeping, the CLI's rows for
sampling and training on the 8 fake CPU devices, device-count scaling, results files and the
table, and (where torch and diffusers are installed) the PyTorch reference's network against
ours. Nothing here asserts a speed."""

import importlib.util
import json

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from benchmarks import harness, peaks, report
from benchmarks.__main__ import main
from tests import helpers

TINY = [item for o in helpers.TINY_DIFFUSION for item in ("--set", o)]


def test_flops_of_a_matmul_are_two_per_multiply_add():
    a = jax.ShapeDtypeStruct((64, 128), jnp.float32)
    b = jax.ShapeDtypeStruct((128, 32), jnp.float32)
    assert harness.flops(jnp.matmul, a, b) == 2 * 64 * 128 * 32


def test_timed_reports_median_and_spread_of_every_repeat():
    calls = []
    result = harness.timed(lambda: calls.append(1) or jnp.zeros(()), repeats=3, calls=4)
    assert len(calls) == 1 + 3 * 4  # a warm-up, then repeats x calls
    assert result["seconds_min"] <= result["seconds_median"] <= result["seconds_max"]
    with pytest.raises(ValueError, match="repeats"):
        harness.timed(lambda: None, repeats=0)


def test_datasheet_peaks_match_device_kinds():
    assert peaks.datasheet_peak("NVIDIA H100 80GB HBM3", "bfloat16") == 989e12
    assert peaks.datasheet_peak("NVIDIA H100 PCIe", "bfloat16") == 756e12
    assert peaks.datasheet_peak("NVIDIA H200", "bfloat16") == 989e12
    assert peaks.datasheet_peak("TPU v5 lite", "bfloat16") == 197e12
    assert peaks.datasheet_peak("cpu", "float32") is None
    assert peaks.measured_matmul_peak("float32", size=128, chain=2, repeats=1) > 0


def test_sample_rows_count_model_flops_per_evaluation(tmp_path):
    out = tmp_path / "cpu.json"
    for guidance in ([], ["--guidance", "2"]):
        assert main(["sample", "--model", "unet-mnist", *TINY, "--batch", "16", "--steps", "3",
                     "--sampler", "dpm_solver", "--repeats", "2", "--no-peak", *guidance,
                     "--out", str(out)]) == 0
    plain, guided = json.loads(out.read_text())["rows"]
    for row in (plain, guided):
        assert row["devices"] == 8 and row["nfe"] == 3 and row["compile_seconds"] > 0
        assert row["images_per_second"] == pytest.approx(16 / row["seconds_median"])
        assert row["seconds_min"] <= row["seconds_median"] <= row["seconds_max"]
        assert row["environment"]["backend"] == "cpu" and row["environment"]["jax"]
        assert row["compiled_bytes"] > 0 and row["parameters"] > 0
    # guidance evaluates the denoiser on the doubled batch: exactly twice the FLOPs
    assert guided["flops_per_call"] == 2 * plain["flops_per_call"] > 0
    assert guided["guidance"] == 2.0 and plain["guidance"] is None
    table = report.markdown(json.loads(out.read_text())["rows"])
    assert "dpm_solver-3, w=2" in table and table.count("\n") == 4


@pytest.mark.slow  # 20 s: compiles the text-to-image pipeline of three networks and times it
def test_latent_diffusion_rows_time_prompt_to_image(tmp_path):
    """`--model ldm`: text tower, U-Net steps and decoder in one program; guidance doubles
    the U-Net's work, not the decoder's. (Its train row is a slow test below.)"""
    out = tmp_path / "cpu.json"
    tiny = [item for o in helpers.TINY_LDM for item in ("--set", o)]
    for guidance in ([], ["--guidance", "4"]):
        assert main(["sample", "--model", "ldm", *tiny, "--batch", "8", "--steps", "2",
                     "--repeats", "1", "--no-peak", *guidance, "--out", str(out)]) == 0
    plain, guided = json.loads(out.read_text())["rows"]
    assert plain["nfe"] == guided["nfe"] == 2 and plain["images_per_second"] > 0
    assert plain["flops_per_call"] < guided["flops_per_call"] < 2 * plain["flops_per_call"]


@pytest.mark.slow  # 30 s, most of it compiling the sharded initial state of three networks
def test_latent_diffusion_train_row_steps_on_caption_tokens(tmp_path):
    out = tmp_path / "cpu.json"
    tiny = [item for o in helpers.TINY_LDM for item in ("--set", o)]
    assert main(["train", "--model", "ldm", *tiny, "--batch", "8", "--repeats", "1",
                 "--calls", "1", "--no-peak", "--out", str(out)]) == 0
    (step,) = json.loads(out.read_text())["rows"]
    assert step["task"] == "train" and step["flops_per_call"] > 0


def test_train_rows(tmp_path):
    out = tmp_path / "cpu.json"
    assert main(["train", "--model", "vae", "--batch", "16", "--repeats", "2", "--calls", "2",
                 "--out", str(out)]) == 0
    (row,) = json.loads(out.read_text())["rows"]
    assert row["task"] == "train" and row["devices"] == 8 and row["steps_per_second"] > 0
    assert row["examples_per_second"] == pytest.approx(16 * row["steps_per_second"])
    assert row["flops_per_call"] > 0 and 0 < row["mfu_measured"] < 1


def test_scaling_over_batch_and_device_count(tmp_path, capsys):
    out = tmp_path / "cpu.json"
    assert main(["scale", "--model", "unet-mnist", *TINY, "--task", "sample", "--steps", "2",
                 "--batches", "8,16", "--device-counts", "1,8", "--repeats", "2", "--no-peak",
                 "--out", str(out)]) == 0
    rows = json.loads(out.read_text())["rows"]
    assert [(r["devices"], r["batch"]) for r in rows] == [(1, 8), (1, 16), (8, 8), (8, 16)]
    # one network and sampler: the FLOPs of a call grow with the batch alone
    assert rows[1]["flops_per_call"] == 2 * rows[0]["flops_per_call"] == 2 * rows[2][
        "flops_per_call"]
    capsys.readouterr()
    assert main(["table", str(out)]) == 0
    assert capsys.readouterr().out.count("| sample | unet-mnist | jaxgen jit |") == 4
    assert main(["scale", "--model", "unet-mnist", "--batches", "12", "--device-counts",
                 "8"]) == 1
    assert "not divisible by the 8 devices" in capsys.readouterr().err


def test_bad_requests_say_what_is_wrong(tmp_path, capsys):
    assert main(["train", "--model", "nope", "--batch", "8"]) == 1
    assert "unknown model 'nope'" in capsys.readouterr().err
    assert main(["sample", "--model", "unet-mnist", "--batch", "8", "--torch", "eager"]) == 1
    assert "--model unet-cifar10" in capsys.readouterr().err
    results = tmp_path / "r.json"
    results.write_text(json.dumps({"device": "TPU v4", "rows": []}))
    with pytest.raises(ValueError, match="one file per device"):
        report.add_rows(results, {"device": "cpu"}, [])


@pytest.mark.slow  # 25 s: times Inception-v3 at 299 x 299 on the CPU
def test_fid_rows_time_its_parts_and_add_them_to_the_estimate(tmp_path, capsys):
    """`fid`: featurisation on the 8 devices, one statistics update per batch, one distance,
    and the estimate of a whole FID as exactly their sum."""
    out = tmp_path / "cpu.json"
    assert main(["fid", "--batch", "8", "--size", "32", "--repeats", "1", "--num", "1000",
                 "--no-peak", "--out", str(out)]) == 0
    rows = json.loads(out.read_text())["rows"]
    assert [r["task"] for r in rows] == ["fid-features", "fid-update", "fid-distance",
                                         "fid-estimate"]
    features, update, distance, estimate = rows
    assert (features["devices"], features["height"], features["batch"]) == (8, 32, 8)
    assert features["images_per_second"] == pytest.approx(8 / features["seconds_median"])
    assert features["compile_seconds"] > 0 and features["compiled_bytes"] > 0
    # torchvision's Inception-v3 (27,161,264) less its auxiliary head (3,326,696), plus the 8
    # extra classes of TF's 1008-way fc (8 x 2049): pytorch-fid's network
    assert features["parameters"] == 27_161_264 - 3_326_696 + 8 * 2049 == 23_850_960
    # the network always runs at 299 x 299: 32-pixel inputs add only their resize
    from flax import nnx

    from benchmarks import fid_bench
    from jaxgen.models.inception import FIDInceptionV3

    network = nnx.eval_shape(lambda: FIDInceptionV3(rngs=nnx.Rngs(0)))
    graphdef, abstract = nnx.split(network)
    forward = harness.flops(lambda s, x: nnx.merge(graphdef, s).forward(x), abstract,
                            jax.ShapeDtypeStruct((1, 299, 299, 3), jnp.float32))
    assert features["flops_per_call"] == pytest.approx(8 * features["flops_per_image"])
    assert forward < features["flops_per_image"] < 1.01 * forward
    assert update["dim"] == distance["dim"] == fid_bench.FEATURES == 2048
    assert update["batch"] == 8 and update["seconds_median"] > 0 < distance["seconds_median"]
    assert estimate["derived"] and estimate["batches"] == 125  # ceil(1000 / 8)
    assert estimate["featurise_seconds"] == pytest.approx(1000 / features["images_per_second"])
    assert estimate["estimate_seconds"] == pytest.approx(
        estimate["featurise_seconds"] + 125 * update["seconds_median"]
        + distance["seconds_median"])
    capsys.readouterr()
    assert main(["table", str(out)]) == 0
    page = capsys.readouterr().out
    assert "**FID of 1,000 samples, derived**" in page and "| featurise 32x32 uint8" in page
    assert page.count("\n| ") == 5  # the head and the four rows, no step table

    # the optional metrics, at small sizes (their CLI defaults are KID's 100 subsets of 1000)
    kid = fid_bench.bench_kid(64, repeats=1, subsets=2, subset_size=32)
    recall = fid_bench.bench_precision_recall(64, repeats=1)
    assert kid["seconds_median"] > 0 and (kid["subsets"], kid["subset_size"]) == (2, 32)
    assert recall["seconds_median"] > 0 and recall["k"] == 3
    assert "KID, 2 subsets of 32, 64 x 2048 each" in report.fid_markdown([kid, recall])


def test_fid_bad_requests_say_what_is_wrong(capsys):
    for argv, message in (
            (["--batch", "12"], "not divisible by the 8 devices"),
            (["--batch", "8", "--size", "0"], "--size must be a positive integer"),
            (["--batch", "8", "--metric-samples", "500"], "subsets of 1000 samples"),
            (["--batch", "8", "--devices", "9"], "this machine has 8")):
        assert main(["fid", *argv]) == 1
        err = capsys.readouterr().err
        assert message in err and err.count("\n") == 1, err


def test_layers_lists_every_convolution_that_runs(tmp_path, capsys, monkeypatch):
    from flax import nnx

    from benchmarks import jaxgen_bench
    from jaxgen.train import make_objective

    config = jaxgen_bench.load_config("unet-mnist", None, helpers.TINY_DIFFUSION, "fp32", None)
    layers = jaxgen_bench.conv_layers(config, 2)
    # every conv module of the U-Net runs once per forward, and nothing else convolves
    objective = make_objective(config)
    model = nnx.eval_shape(lambda: objective.build(nnx.Rngs(0)))
    kernels = sorted(tuple(m.kernel.shape) for _, m in nnx.iter_graph(model)
                     if isinstance(m, nnx.Conv))
    assert sorted(tuple(layer["kernel"]) for layer in layers
                  for _ in range(layer["count"])) == kernels
    assert all(layer["input"][0] == 2 for layer in layers)

    # the CLI times the two largest (three jitted programs each: the list is checked above)
    monkeypatch.setattr(jaxgen_bench, "conv_layers", lambda *a: layers[:2])
    out = tmp_path / "cpu.json"
    assert main(["layers", "--model", "unet-mnist", *TINY, "--batch", "2", "--repeats", "1",
                 "--calls", "1", "--out", str(out)]) == 0
    rows = json.loads(out.read_text())["rows"]
    assert [r["kernel"] for r in rows] == [layer["kernel"] for layer in layers[:2]]
    assert all(r["framework"] == "jaxgen" and r[f"{part}_s"] > 0
               for r in rows for part in report._PARTS)
    assert rows[0]["flops"] == max(jaxgen_bench._conv_flops(layer) for layer in layers)
    capsys.readouterr()
    assert main(["table", str(out)]) == 0
    page = capsys.readouterr().out
    count = sum(layer["count"] for layer in layers[:2])
    assert page.count("\n| 2x") == 2 and f"| all |  |  | {count} |" in page
    monkeypatch.undo()
    assert main(["layers", "--model", "vae", "--batch", "2"]) == 1
    assert "diffusion U-Net's convolutions, not a 'vae'" in capsys.readouterr().err


def test_pytorch_reference_is_the_same_network():
    pytest.importorskip("torch")
    pytest.importorskip("diffusers")
    from benchmarks import jaxgen_bench, torch_ref
    from jaxgen.train import make_objective

    config = jaxgen_bench.load_config("unet-cifar10", None, [], "fp32", None)
    objective = make_objective(config)
    params = jax.eval_shape(objective.init_state, jax.random.PRNGKey(0)).params
    reference = torch_ref.ddpm_unet()
    assert jaxgen_bench.parameter_count(params) == torch_ref.parameter_count(reference) \
        == 35_746_307
    ours = harness.flops(lambda p, x, t: objective.denoiser(p)(x, t, None), params,
                         jax.ShapeDtypeStruct((2, 32, 32, 3), jnp.float32), jnp.zeros((2,)))
    theirs = torch_ref.forward_flops(reference, 2)
    # XLA counts only the multiply-adds that touch real pixels, torch also the zero padding of
    # each 3x3 convolution (about 4% of the total at 32..4 pixels)
    assert 0.94 < ours / theirs < 1.0, (ours, theirs)
    import torch

    # convolution by convolution (kernel, stride, output), as `benchmarks layers` times them
    seen = []
    for module in reference.modules():
        if isinstance(module, torch.nn.Conv2d):
            module.register_forward_hook(lambda m, _, out: seen.append(
                (*m.weight.shape[2:], m.weight.shape[1], m.weight.shape[0], m.stride[0],
                 out.shape[0], *out.shape[2:], out.shape[1])))
    with torch.no_grad():
        reference(torch.zeros(2, 3, 32, 32), torch.zeros(2))
    ours, layers = [], jaxgen_bench.conv_layers(config, 2)
    for layer in layers:
        (n, h, w, _), (kh, kw, c_in, c_out) = layer["input"], layer["kernel"]
        stride = layer["strides"][0]
        ours += [(kh, kw, c_in, c_out, stride, n, h // stride, w // stride, c_out)] * layer[
            "count"]
    assert sorted(ours) == sorted(seen) and len(seen) == 65
    # and each is timed as the same convolution: XLA's uneven "SAME" padding at stride 2 too
    (down,) = [layer for layer in layers
               if layer["strides"] == [2, 2] and layer["input"][1] == 32]
    x = jax.random.normal(jax.random.PRNGKey(1), down["input"])
    kernel = jax.random.normal(jax.random.PRNGKey(2), down["kernel"])
    expected = jax.lax.conv_general_dilated(x, kernel, down["strides"], "SAME",
                                            dimension_numbers=("NHWC", "HWIO", "NHWC"))
    got = torch_ref.conv2d(down, torch.tensor(np.asarray(x)).permute(0, 3, 1, 2),
                           torch.tensor(np.asarray(kernel)).permute(3, 2, 0, 1))
    np.testing.assert_allclose(got.permute(0, 2, 3, 1).numpy(), expected, rtol=1e-4, atol=1e-3)
    assert down["padding"] == [[0, 1], [0, 1]]
    row = torch_ref.bench_conv_layer(down, repeats=1, calls=1)
    assert all(row[f"{part}_s"] > 0 for part in report._PARTS)

    dropouts = [m.p for m in torch_ref.ddpm_unet(dropout=0.1).modules()
                if isinstance(m, torch.nn.Dropout)]
    # one per residual block, as ours (the attention blocks' output dropout stays 0)
    assert dropouts.count(0.1) == 22 and set(dropouts) == {0.0, 0.1}


def test_pytorch_train_step_does_the_work_of_ours(monkeypatch):
    """The reference step is given the config's dropout and EMA: timing a step that skips
    them against ours (which does both) would flatter PyTorch."""
    from benchmarks import __main__ as cli
    from benchmarks import jaxgen_bench, torch_ref

    seen = {}
    monkeypatch.setattr(torch_ref, "bench_train",
                        lambda batch, dtype, mode, repeats, calls, **work: seen.update(work) or {})
    args = cli._parser().parse_args(["train", "--model", "unet-cifar10", "--batch", "4"])
    cli._torch_rows(args, ["eager"], "train", 4)
    config = jaxgen_bench.load_config("unet-cifar10", None, [], "fp32", None)
    assert seen == {"dropout": config.model.dropout, "ema_decay": config.ema_decay}
    assert seen["dropout"] == 0.1 and seen["ema_decay"] == 0.9999  # DDPM's CIFAR-10 recipe


def test_pytorch_rows_are_compared_with_the_jaxgen_row_of_their_own_command():
    def row(framework, throughput, command, batch=2):
        return {"framework": framework, "model": "unet-cifar10", "task": "sample",
                "dtype": "fp32", "batch": batch, "steps": 5, "guidance": None,
                "images_per_second": throughput, "seconds_median": batch / throughput,
                "seconds_min": 1.0, "seconds_max": 1.0,
                "environment": {"command": command, "date": "2026-01-01", "jax": "0.10"}}

    rows = [row("jaxgen", 1.0, "a"), row("pytorch", 0.5, "a"), row("jaxgen", 3.0, "b"),
            row("pytorch", 1.0, "c")]
    ratios = [r.get("jaxgen_ratio") for r in report.with_ratios(rows)]
    assert ratios == [None, 2.0, None, None]  # the later command's jaxgen row is not used
    page = report.results_page({"device": "cpu", "rows": rows})
    assert page.startswith("# Benchmarks on cpu") and "| 2.00x |" in page
    assert page.count("- `a`") == 1 and "- `c`" in page


def _small_sd15(monkeypatch):
    """SD 1.5's U-Net config at reduced widths and depth: the same code path, in seconds."""
    from benchmarks import sd15

    monkeypatch.setattr(sd15, "SD15_UNET", {
        **sd15.SD15_UNET, "block_out_channels": [32, 64], "layers_per_block": 1,
        "down_block_types": ["CrossAttnDownBlock2D", "DownBlock2D"],
        "up_block_types": ["UpBlock2D", "CrossAttnUpBlock2D"], "norm_num_groups": 8,
        "attention_head_dim": 2})
    return sd15


@pytest.mark.slow  # 20 s: compiles and times a guided U-Net loop on 1 and 8 devices
def test_sd15_rows_time_the_guided_unet_loop(monkeypatch, tmp_path):
    sd15 = _small_sd15(monkeypatch)
    from jaxgen.pretrained.unet2d_condition import unet_kwargs

    with_torch = all(importlib.util.find_spec(m) for m in ("torch", "diffusers"))
    out = tmp_path / "cpu.json"
    assert main(["sample", "--model", "sd15", "--size", "64", "--batch", "8", "--steps", "2",
                 "--guidance", "3", "--repeats", "1", "--no-peak", "--out", str(out),
                 *(["--torch", "eager"] if with_torch else [])]) == 0
    rows = json.loads(out.read_text())["rows"]
    ours = rows[0]
    assert (ours["framework"], ours["model"], ours["height"], ours["devices"]) == (
        "jaxgen", "sd15", 64, 8)
    assert (ours["sampler"], ours["steps"], ours["guidance"]) == ("dpm_solver", 2, 3.0)
    # two steps of one forward over the doubled (guided) batch of 8 latents of 8 x 8
    kwargs = unet_kwargs(sd15.unet_config(64))
    assert kwargs["data_shape"] == (8, 8, 4)
    assert ours["flops_per_call"] == 2 * sd15.forward_flops_jaxgen(kwargs, 16) > 0
    if with_torch:
        theirs = rows[1]
        assert (theirs["framework"], theirs["mode"], theirs["height"]) == ("pytorch", "eager",
                                                                            64)
        assert theirs["parameters"] == ours["parameters"]
        # torch counts the 3x3 convolutions' zero padding too (a large share at 8..4 pixels),
        # XLA the elementwise work too (a large share at these widths)
        assert 0.8 < ours["flops_per_call"] / theirs["flops_per_call"] < 1.05
        page = report.results_page(json.loads(out.read_text()))
        assert "| sample | sd15 64px | pytorch eager |" in page and page.count("x |") >= 1


def test_sd15_bad_requests_say_what_is_wrong(monkeypatch, capsys):
    _small_sd15(monkeypatch)
    assert main(["sample", "--model", "sd15", "--size", "100", "--batch", "8"]) == 1
    assert "multiple of 64" in capsys.readouterr().err
    assert main(["sample", "--model", "sd15", "--sampler", "euler", "--batch", "8"]) == 1
    assert "dpm_solver or ddim" in capsys.readouterr().err
    assert main(["all", "--model", "sd15", "--batch", "8"]) == 1
    assert "times sampling" in capsys.readouterr().err


def test_sd15_reference_is_the_same_network():
    """At full size (shapes only, nothing allocated): the parameter count of SD 1.5's U-Net,
    and the FLOPs of one forward at 512 x 512, ours against torch's counter."""
    pytest.importorskip("torch")
    pytest.importorskip("diffusers")
    from flax import nnx

    from benchmarks import sd15
    from jaxgen.models.unet import UNet
    from jaxgen.pretrained.unet2d_condition import unet_kwargs

    kwargs = unet_kwargs(sd15.unet_config(512))
    model = nnx.eval_shape(lambda: UNet(**kwargs, rngs=nnx.Rngs(0)))
    reference = sd15.diffusers_unet(512, "meta")
    count = sum(x.size for x in jax.tree.leaves(nnx.state(model, nnx.Param)))
    assert count == sum(p.numel() for p in reference.parameters()) == sd15.PARAMETERS
    ours = sd15.forward_flops_jaxgen(kwargs, 2)
    theirs = sd15.forward_flops_torch(reference, 512, 2)
    assert 0.97 < ours / theirs < 1.0, (ours, theirs)  # the padding, as for CIFAR-10's


@pytest.mark.slow  # 75 s: compiles and saves the MNIST U-Net's state twice (sync, async)
def test_checkpoint_save_cost_rows(tmp_path):
    """`python -m benchmarks.checkpoint_save`: a sync and an async row on the same state, each
    save finished (the wait included) before its cost is taken."""
    from benchmarks import checkpoint_save

    rows = checkpoint_save.main(["--model", "unet-mnist", "--batch", "8", "--steps", "1",
                                 "--saves", "1", "--after", "1", "--out",
                                 str(tmp_path / "rows.json")])
    assert [row["mode"] for row in rows] == ["sync", "async"]
    assert rows[0]["state_bytes"] == rows[1]["state_bytes"] > 4 * rows[0]["parameters"]
    for row in rows:
        assert row["blocking_seconds"] > 0 and row["step_seconds"] > 0
        assert len(row["save_costs"]) == 1
    assert json.loads((tmp_path / "rows.json").read_text()) == rows
