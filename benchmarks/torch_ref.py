"""The field's reference for the same network: DDPM's CIFAR-10 U-Net as diffusers'
`UNet2DModel` (the config of the released `google/ddpm-cifar10-32`, 35,746,307 parameters,
built locally with random weights: nothing is downloaded), timed eager and under
`torch.compile`, in fp32 and bf16, with the same harness rules as jaxgen's side.

Sampling is the loop a diffusers pipeline runs: `DDIMScheduler` (linear betas, "trailing"
spacing, x0 clipped to [-1, 1], eta 0) stepping the U-Net's epsilon prediction, with
classifier-free guidance as one forward over the doubled batch when a scale is given.
Needs `pip install -e ".[bench]"` (torch, diffusers).
"""

import time

from benchmarks import harness

DDPM_CIFAR10 = dict(
    sample_size=32, in_channels=3, out_channels=3, layers_per_block=2,
    block_out_channels=(128, 256, 256, 256),
    down_block_types=("DownBlock2D", "AttnDownBlock2D", "DownBlock2D", "DownBlock2D"),
    up_block_types=("UpBlock2D", "UpBlock2D", "AttnUpBlock2D", "UpBlock2D"),
    attention_head_dim=None, norm_num_groups=32, norm_eps=1e-6, downsample_padding=0,
    flip_sin_to_cos=False, freq_shift=1, act_fn="silu", time_embedding_type="positional",
)
DTYPES = {"fp32": "float32", "bf16": "bfloat16"}


def available() -> str | None:
    """None if torch and diffusers import; else why not."""
    try:
        import diffusers  # noqa: F401
        import torch  # noqa: F401
    except ImportError as e:
        return f"{e.name} is not installed (pip install -e '.[bench]')"
    return None


def ddpm_unet(num_classes: int = 0, dropout: float = 0.0):
    """diffusers' UNet2DModel in DDPM's CIFAR-10 config; with `num_classes`, a class embedding
    of num_classes + 1 rows (the last is the null class for guidance), as jaxgen's U-Net."""
    from diffusers import UNet2DModel

    extra = {"num_class_embeds": num_classes + 1} if num_classes else {}
    return UNet2DModel(**DDPM_CIFAR10, dropout=dropout, **extra)


def parameter_count(model) -> int:
    return sum(p.numel() for p in model.parameters())


def forward_flops(model, batch: int, num_classes: int = 0) -> float:
    """FLOPs of one forward at `batch` (torch's FlopCounterMode: matmuls, convolutions and
    attention, 2 per multiply-add)."""
    weight = next(model.parameters())
    x, t, labels = _inputs(batch, num_classes, weight.dtype, weight.device)
    return counted_flops(lambda: model(x, t, class_labels=labels))


def counted_flops(call) -> float:
    """FLOPs torch's FlopCounterMode counts in one `call()` under inference mode."""
    import torch
    from torch.utils.flop_counter import FlopCounterMode

    counter = FlopCounterMode(display=False)
    with torch.inference_mode(), counter:
        call()
    return float(counter.get_total_flops())


def _inputs(batch, num_classes, dtype, device):
    import torch

    x = torch.randn(batch, 3, 32, 32, dtype=dtype, device=device)
    t = torch.full((batch,), 500, dtype=torch.long, device=device)
    labels = (torch.arange(batch, device=device) % (num_classes + 1)) if num_classes else None
    return x, t, labels


def _setup(mode: str, build):
    """(torch, device, the model `build()` makes on that device, a sync for `harness.timed`)."""
    import torch
    from diffusers.utils import logging

    logging.set_verbosity_error()  # its advice on casting loaded checkpoints does not apply

    if mode not in ("eager", "compile"):
        raise ValueError(f"torch mode must be 'eager' or 'compile', got {mode!r}")
    device = _device(torch)
    torch.manual_seed(0)
    model = build().to(device)
    sync = torch.cuda.synchronize if device == "cuda" else (lambda: None)
    return torch, device, model, lambda _: sync()


def bench_sample(batch: int, steps: int, dtype: str = "fp32", mode: str = "eager",
                 guidance: float | None = None, repeats: int = 5) -> dict:
    """Images/s of DDIM sampling with diffusers' U-Net and scheduler."""
    from diffusers import DDIMScheduler

    num_classes = 0 if guidance is None else 10
    torch, device, model, sync = _setup(mode, lambda: ddpm_unet(num_classes))
    flops = steps * forward_flops(model, batch * (1 if guidance is None else 2), num_classes)
    torch_dtype = getattr(torch, DTYPES[dtype])
    model = model.to(torch_dtype).eval()
    net = torch.compile(model) if mode == "compile" else model
    scheduler = DDIMScheduler(num_train_timesteps=1000, beta_schedule="linear",
                              clip_sample=True, timestep_spacing="trailing")
    scheduler.set_timesteps(steps)
    x_T, _, labels = _inputs(batch, num_classes, torch.float32, device)
    if labels is not None:
        labels = torch.arange(batch, device=device) % num_classes
        both = torch.cat([labels, torch.full_like(labels, num_classes)])

    def sample():
        x = x_T
        with torch.inference_mode():
            for t in scheduler.timesteps:
                if guidance is None:
                    eps = net(x.to(torch_dtype), t).sample.float()
                else:
                    out = net(torch.cat([x, x]).to(torch_dtype), t, class_labels=both).sample
                    cond, uncond = out.float().chunk(2)
                    eps = cond + guidance * (cond - uncond)  # jaxgen's convention
                x = scheduler.step(eps, t, x, eta=0.0).prev_sample
        return x

    t0 = time.perf_counter()
    sync(sample())  # the first call compiles under torch.compile
    compile_s = time.perf_counter() - t0
    timing = harness.timed(sample, repeats, wait=sync)
    return {"task": "sample", "batch": batch, "devices": 1, "sampler": "ddim", "steps": steps,
            "guidance": guidance, "nfe": steps, **timing, "compile_seconds": compile_s,
            "images_per_second": batch / timing["seconds_median"],
            "parameters": parameter_count(model),
            "flops_per_call": flops,
            **_memory(torch, device)}


def bench_train(batch: int, dtype: str = "fp32", mode: str = "eager", repeats: int = 5,
                calls: int = 5, dropout: float = 0.1, ema_decay: float = 0.9999) -> dict:
    """Steps/s of one DDPM training step as jaxgen's: epsilon MSE at uniform timesteps,
    `dropout` in the residual blocks, Adam with gradient clipping, and an EMA of the weights
    (diffusers' EMAModel, whose warm-up min(decay, (1 + t) / (10 + t)) is jaxgen's; 0 turns it
    off). bf16 is autocast over fp32 weights, as jaxgen's bf16 compute."""
    torch, device, model, sync = _setup(mode, lambda: ddpm_unet(0, dropout))
    forward = forward_flops(model, batch)
    model.train()
    net = torch.compile(model) if mode == "compile" else model
    optimizer = torch.optim.Adam(model.parameters(), lr=2e-4)
    ema = None
    if ema_decay > 0:
        from diffusers.training_utils import EMAModel

        ema = EMAModel(model.parameters(), decay=ema_decay, foreach=True)
    betas = torch.linspace(1e-4, 0.02, 1000, device=device)
    alpha_bar = torch.cumprod(1 - betas, 0)
    x0 = torch.rand(batch, 3, 32, 32, device=device) * 2 - 1

    def step():
        t = torch.randint(0, 1000, (batch,), device=device)
        noise = torch.randn_like(x0)
        a = alpha_bar[t].sqrt()[:, None, None, None]
        s = (1 - alpha_bar[t]).sqrt()[:, None, None, None]
        with torch.autocast(device, dtype=torch.bfloat16, enabled=dtype == "bf16"):
            loss = torch.nn.functional.mse_loss(net(a * x0 + s * noise, t).sample.float(), noise)
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
        optimizer.step()
        if ema is not None:
            ema.step(model.parameters())
        return loss

    t0 = time.perf_counter()
    sync(step())
    compile_s = time.perf_counter() - t0
    timing = harness.timed(step, repeats, calls, wait=sync)
    return {"task": "train", "batch": batch, "devices": 1, **timing,
            "compile_seconds": compile_s, "steps_per_second": 1.0 / timing["seconds_median"],
            "examples_per_second": batch / timing["seconds_median"],
            "parameters": parameter_count(model),
            # forward + backward: 3x the forward's FLOPs, the usual count (Kaplan et al. 2020)
            "flops_per_call": 3 * forward, **_memory(torch, device)}


def _device(torch) -> str:
    """"cuda" when there is a GPU, with cuDNN's autotuner on (fixed shapes, as XLA autotunes its
    convolutions: the fair counterpart); else "cpu"."""
    if not torch.cuda.is_available():
        return "cpu"
    torch.backends.cudnn.benchmark = True
    return "cuda"


def _memory(torch, device) -> dict:
    if device != "cuda":
        return {}
    return {"device_peak_bytes": int(torch.cuda.max_memory_allocated())}


def bench_conv_layer(layer: dict, repeats: int = 5, calls: int = 3) -> dict:
    """PyTorch's (eager) seconds for one layer of `jaxgen_bench.conv_layers`: the forward, and
    the input and kernel gradients each alone (`autograd.grad` of a kept graph runs only the
    backward convolution)."""
    import torch

    device = _device(torch)
    sync = torch.cuda.synchronize if device == "cuda" else (lambda: None)
    dtype = getattr(torch, layer["dtype"])
    n, h, w, c_in = layer["input"]
    kh, kw, _, c_out = layer["kernel"]
    torch.manual_seed(0)
    x = torch.randn(n, c_in, h, w, device=device, dtype=dtype)
    kernel = (torch.randn(c_out, c_in, kh, kw, device=device) * 0.05).to(dtype)

    def forward():
        with torch.no_grad():
            return conv2d(layer, x, kernel)

    grads = {}
    for name, wrt in (("input_grad", x), ("kernel_grad", kernel)):
        wrt = wrt.detach().requires_grad_(True)
        out = conv2d(layer, wrt, kernel) if name == "input_grad" else conv2d(layer, x, wrt)
        cotangent = torch.ones_like(out)
        grads[name] = lambda out=out, wrt=wrt, g=cotangent: torch.autograd.grad(
            out, wrt, g, retain_graph=True)[0]
    row = {"task": "layer", **layer}
    for name, call in (("forward", forward), *grads.items()):
        row[f"{name}_s"] = harness.timed(call, repeats, calls, wait=lambda _: sync())[
            "seconds_median"]
    return row


def conv2d(layer: dict, x, kernel):
    """A `jaxgen_bench.conv_layers` layer in PyTorch (NCHW input, OIHW kernel); uneven padding
    (XLA's "SAME" at stride 2) is an explicit pad, as diffusers' downsampling does."""
    import torch

    (ph0, ph1), (pw0, pw1) = layer["padding"]
    if (ph0, pw0) != (ph1, pw1):
        x = torch.nn.functional.pad(x, (pw0, pw1, ph0, ph1))
        return torch.nn.functional.conv2d(x, kernel, stride=layer["strides"])
    return torch.nn.functional.conv2d(x, kernel, stride=layer["strides"], padding=(ph0, pw0))
