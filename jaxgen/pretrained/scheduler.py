"""A diffusers scheduler config (`scheduler/scheduler_config.json`) as jaxgen's `diffusion`
and `sample` config sections: the noise schedule the model was trained on, what it predicts,
and the timestep grid diffusers' schedulers would visit.

Read strictly: the options that define the noise process must be ones jaxgen computes
(`rescale_betas_zero_snr`, `thresholding` and unknown beta schedules are refused); the options
that only choose the scheduler's own algorithm (PNDM's PRK steps, DPM-Solver's order) are
ignored, as jaxgen's sampler is picked with `--sampler`.
"""

import json
from pathlib import Path

from jaxgen.pretrained.configs import check_options
from jaxgen.pretrained.weights import PretrainedError

BETA_SCHEDULES = {"linear": "linear", "scaled_linear": "scaled_linear",
                  "squaredcos_cap_v2": "cosine"}
PREDICTIONS = {"epsilon": "eps", "sample": "x0", "v_prediction": "v"}
# Options of the scheduler's algorithm, not of the model: jaxgen's sampler is chosen apart.
ALGORITHM_OPTIONS = (
    "skip_prk_steps", "variance_type", "solver_order", "algorithm_type", "solver_type",
    "lower_order_final", "euler_at_final", "use_karras_sigmas", "use_exponential_sigmas",
    "use_beta_sigmas", "use_lu_lambdas", "final_sigmas_type", "lambda_min_clipped",
    "dynamic_thresholding_ratio", "sample_max_value", "interpolation_type", "timestep_type",
    "sigma_min", "sigma_max", "variance_type", "use_flow_sigmas", "flow_shift",
)


def scheduler_settings(config: dict) -> tuple[dict, dict]:
    """(`diffusion` fields, `sample` fields) of a diffusers scheduler config."""
    allowed = {
        "num_train_timesteps": None, "beta_start": None, "beta_end": None,
        "beta_schedule": tuple(BETA_SCHEDULES), "trained_betas": (None,),
        "prediction_type": tuple(PREDICTIONS), "timestep_spacing": ("leading", "trailing",
                                                                     "linspace"),
        "steps_offset": None, "clip_sample": None, "clip_sample_range": None,
        "set_alpha_to_one": None, "thresholding": (False,), "rescale_betas_zero_snr": (False,),
        **{k: None for k in ALGORITHM_OPTIONS},
    }
    what = f"scheduler {config.get('_class_name', '')}".strip()
    check_options(config, allowed, what)
    if config.get("_class_name", "").startswith("FlowMatch"):
        raise PretrainedError(f"{what}: flow-matching schedulers are not read yet")
    schedule = BETA_SCHEDULES[config.get("beta_schedule", "linear")]
    diffusion = {"parameterization": PREDICTIONS[config.get("prediction_type", "epsilon")],
                 "schedule": schedule,
                 "num_train_steps": int(config.get("num_train_timesteps", 1000)),
                 "beta_start": None, "beta_end": None}
    if schedule != "cosine":
        diffusion["beta_start"] = float(config.get("beta_start", 0.0001))
        diffusion["beta_end"] = float(config.get("beta_end", 0.02))
    clip = config.get("clip_sample", False)
    # A config without timestep_spacing (Stable Diffusion 1.x's) leaves it to the scheduler
    # each sampler stands for: None lets `Denoising.grid` choose as diffusers would.
    sample = {"spacing": config.get("timestep_spacing"),
              "steps_offset": int(config.get("steps_offset", 0)),
              "clip_x0": float(config.get("clip_sample_range", 1.0)) if clip else None,
              # DDIM's last step: DDIMScheduler's default True (PNDM's and SD's: False).
              "set_alpha_to_one": bool(config.get("set_alpha_to_one", True))}
    return diffusion, sample


def scheduler_config(diffusion, sample, class_name: str = "DDPMScheduler") -> dict:
    """The diffusers scheduler config of jaxgen's `diffusion` and `sample` sections."""
    if diffusion["parameterization"] == "flow":
        raise PretrainedError("a flow-matching run has no DDPM-family scheduler counterpart")
    names = {v: k for k, v in BETA_SCHEDULES.items()}
    config = {"_class_name": class_name, "num_train_timesteps": diffusion["num_train_steps"],
              "beta_schedule": names[diffusion["schedule"]], "trained_betas": None,
              "prediction_type": {v: k for k, v in PREDICTIONS.items()}[
                  diffusion["parameterization"]],
              "timestep_spacing": sample.get("spacing") or "leading",
              "steps_offset": sample.get("steps_offset", 0) or 0,
              "clip_sample": sample.get("clip_x0") is not None,
              "clip_sample_range": sample.get("clip_x0") or 1.0,
              "variance_type": "fixed_small"}
    if diffusion["schedule"] != "cosine":
        defaults = {"linear": (1e-4, 0.02), "scaled_linear": (0.00085, 0.012)}
        start, end = defaults[diffusion["schedule"]]
        config["beta_start"] = diffusion.get("beta_start") or start
        config["beta_end"] = diffusion.get("beta_end") or end
    return config


def read_scheduler(folder) -> dict:
    """A pipeline's `scheduler/scheduler_config.json`, whatever scheduler class it names."""
    path = Path(folder) / "scheduler_config.json"
    if not path.exists():
        raise PretrainedError(f"{path} is missing")
    try:
        return json.loads(path.read_text())
    except json.JSONDecodeError as e:
        raise PretrainedError(f"{path} is not valid JSON ({e})") from None
