"""Diffusion samplers as one `lax.scan` each, for any denoiser `fn(x_t, t) -> prediction`.

Discrete (variance-preserving) samplers: `t` is the integer training timestep [B] of the
`NoiseSchedule`; the prediction is in the parameterization the denoiser was trained with
("eps", "x0" or "v"), converted here with `schedules.to_x0_and_eps`. They visit `steps` (noisiest
first, see `timesteps`) and end with a clean sample (alphas_cumprod = 1, as diffusers'
`set_alpha_to_one` and `final_sigmas_type="zero"`), or at the last of `steps` with
`to_clean=False`.

- `ddim_sample`: DDIM (Song et al. 2021), deterministic at eta = 0;
- `ddpm_sample`: DDPM's ancestral sampler (Ho et al. 2020): DDIM with eta = 1 at every step;
- `dpm_solver_sample`: DPM-Solver++(2M) (Lu et al. 2022), second order, for 10-20 steps;
- `ddim_invert`: deterministic DDIM run backwards, data to noise.

Flow matching samplers integrate `dx/dt = v(x, t)` from t = 1 (noise) to t = 0 (data) on a
continuous time grid (`flow_times`): `euler_sample` (first order) and `heun_sample` (second
order; its last step is an Euler step, as in Karras et al. 2022).

Classifier-free guidance is a wrapper of the denoiser (`guided`), so it composes with every
sampler; the guidance scale and its noise interval are traced values.
"""

from collections.abc import Callable

import jax
import jax.numpy as jnp
import numpy as np

from jaxgen import schedules

Denoiser = Callable[[jax.Array, jax.Array], jax.Array]

SPACINGS = ("leading", "trailing", "linspace")


def timesteps(num_train_steps: int, num_steps: int, spacing: str = "trailing",
              steps_offset: int = 0, scheduler: str = "ddim") -> np.ndarray:
    """The training timesteps a sampler visits, from noisiest to cleanest, as diffusers'
    schedulers name the choices (Lin et al. 2024 discuss why "trailing" should be preferred):

    - "leading": 0, r, 2r, ... with r = T // n (the DDIM paper's; never visits t = T - 1),
      each plus `steps_offset` (Stable Diffusion 1.x's schedulers: 1);
    - "trailing": T - 1, T - 1 - T/n, ... rounded (starts from the noisiest step);
    - "linspace": n points evenly from 0 to T - 1, rounded.

    diffusers' DPM-Solver (`scheduler="dpm_solver"`) lays out two of them its own way: it
    spaces n + 1 points and drops t = 0 ("leading": r = T // (n + 1); "linspace": from 0 to
    T - 1), so that its grid ends at a noisy step before the final jump to clean data.

    Example:
        >>> from jaxgen.sample.diffusion import timesteps
        >>> timesteps(1000, 4).tolist()  # "trailing": starts at T - 1
        [999, 749, 499, 249]
        >>> timesteps(1000, 4, spacing="leading").tolist()
        [750, 500, 250, 0]
    """
    if not 1 <= num_steps <= num_train_steps:
        raise ValueError(f"num_steps must be in [1, {num_train_steps}], got {num_steps}")
    if scheduler not in ("ddim", "dpm_solver"):
        raise ValueError(f"scheduler must be 'ddim' or 'dpm_solver', got {scheduler!r}")
    solver = scheduler == "dpm_solver"
    if spacing == "leading" and solver:
        steps = np.arange(1, num_steps + 1) * (num_train_steps // (num_steps + 1)) + steps_offset
    elif spacing == "linspace" and solver:
        steps = np.round(np.linspace(0, num_train_steps - 1, num_steps + 1))[1:]
    elif spacing == "leading":
        steps = np.arange(num_steps) * (num_train_steps // num_steps) + steps_offset
        if steps[-1] >= num_train_steps:
            raise ValueError(f"steps_offset {steps_offset} takes the last of {num_steps} "
                             f"leading steps past T - 1 = {num_train_steps - 1}")
    elif spacing == "trailing":
        steps = np.round(np.arange(num_train_steps, 0, -num_train_steps / num_steps)) - 1
        steps = steps[::-1]
    elif spacing == "linspace":
        steps = np.round(np.linspace(0, num_train_steps - 1, num_steps))
    else:
        raise ValueError(f"spacing must be one of {SPACINGS}, got {spacing!r}")
    return steps.astype(np.int32)[::-1].copy()


def _path(schedule: schedules.NoiseSchedule, steps, to_clean: bool, final_alpha_cumprod=1.0):
    """(model timesteps [n], alphas_cumprod at them [n], alphas_cumprod after each step [n]).
    With `to_clean`, the last step goes to `final_alpha_cumprod` (1: clean data)."""
    steps = jnp.asarray(steps, jnp.int32)
    acp = schedule.alphas_cumprod
    if to_clean:
        end = jnp.full((1,), final_alpha_cumprod, acp.dtype)
        return steps, acp[steps], jnp.concatenate([acp[steps[1:]], end])
    if steps.shape[0] < 2:
        raise ValueError("to_clean=False needs at least two timesteps: a start and an end")
    return steps[:-1], acp[steps[:-1]], acp[steps[1:]]


def _predict(fn, x, t, acp_t, parameterization, clip_x0=None):
    """(x0, eps) predicted at x_t. With `clip_x0` = c, x0 is clipped to [-c, c] and eps
    recomputed from it (DDPM's `clip_denoised`, diffusers' `clip_sample`): at high noise an eps
    model's x0 = (x_t - sigma eps) / alpha divides small errors by a tiny alpha."""
    batch = (x.shape[0],)
    alpha, sigma = jnp.sqrt(acp_t), jnp.sqrt(1.0 - acp_t)
    prediction = fn(x, jnp.full(batch, t))
    x0, eps = schedules.to_x0_and_eps(prediction, x, jnp.full(batch, alpha), jnp.full(batch, sigma),
                                   parameterization)
    if clip_x0 is not None:
        x0 = jnp.clip(x0, -clip_x0, clip_x0)
        eps = (x - alpha * x0) / sigma
    return x0, eps


def ddim_sample(fn: Denoiser, schedule: schedules.NoiseSchedule, x_T: jax.Array, steps,
                key: jax.Array, eta: float | jax.Array = 0.0, parameterization: str = "eps",
                to_clean: bool = True, clip_x0: float | None = None,
                final_alpha_cumprod: float = 1.0) -> jax.Array:
    """DDIM (Song et al. 2021, eq. 12) from x_T [B, ...] over `steps` (noisiest first); `eta`
    = 0 is deterministic, `eta` = 1 has DDPM's posterior variance. `clip_x0`: see
    `_predict` (1.0 for data in [-1, 1]). `final_alpha_cumprod`: where the last step lands;
    1 is clean data (diffusers' `set_alpha_to_one`), Stable Diffusion's schedulers stop at
    alphas_cumprod[0] (`set_alpha_to_one=False`).

    Example:
        >>> import jax, jax.numpy as jnp
        >>> from jaxgen.sample.diffusion import ddim_sample, timesteps
        >>> from jaxgen.schedules import linear_schedule
        >>> schedule, x0, noise = linear_schedule(100), jnp.array([[0.5, -0.5]]), jnp.ones((1, 2))
        >>> x_T = schedule.alpha[99] * x0 + schedule.sigma[99] * noise
        >>> x = ddim_sample(lambda x, t: noise, schedule, x_T, timesteps(100, 5), jax.random.key(0))
        >>> bool(jnp.allclose(x, x0, atol=1e-5))  # the true noise leads back to x0
        True
    """

    def step(x, inputs):
        t, acp_t, acp_prev, key_i = inputs
        x0, eps = _predict(fn, x, t, acp_t, parameterization, clip_x0)
        noise_std = eta * jnp.sqrt((1 - acp_prev) / (1 - acp_t) * (1 - acp_t / acp_prev))
        direction = jnp.sqrt(jnp.maximum(1 - acp_prev - noise_std**2, 0.0))
        x = (jnp.sqrt(acp_prev) * x0 + direction * eps
             + noise_std * jax.random.normal(key_i, x.shape, x.dtype))
        return x, None

    t, acp_t, acp_prev = _path(schedule, steps, to_clean, final_alpha_cumprod)
    keys = jax.random.split(key, t.shape[0])
    x, _ = jax.lax.scan(step, x_T, (t, acp_t, acp_prev, keys))
    return x


def ddpm_sample(fn: Denoiser, schedule: schedules.NoiseSchedule, x_T: jax.Array, key: jax.Array,
                parameterization: str = "eps", clip_x0: float | None = None) -> jax.Array:
    """DDPM's ancestral sampler (Ho et al. 2020, algorithm 2) over all T steps. Its variance
    beta~_t = (1 - abar_{t-1}) / (1 - abar_t) beta_t is DDIM's at eta = 1, so this is that
    sampler on the full schedule.

    Example:
        >>> import jax, jax.numpy as jnp
        >>> from jaxgen.sample.diffusion import ddpm_sample
        >>> from jaxgen.schedules import linear_schedule
        >>> x0, key = jnp.array([[0.5, -0.5]]), jax.random.key(0)
        >>> x = ddpm_sample(lambda x, t: x0, linear_schedule(10), jnp.ones((1, 2)), key, "x0")
        >>> bool(jnp.allclose(x, x0, atol=1e-5))  # noise is added on the way, none at the end
        True
    """
    steps = np.arange(schedule.num_steps - 1, -1, -1)
    return ddim_sample(fn, schedule, x_T, steps, key, 1.0, parameterization, clip_x0=clip_x0)


def dpm_solver_sample(fn: Denoiser, schedule: schedules.NoiseSchedule, x_T: jax.Array, steps,
                      parameterization: str = "eps", to_clean: bool = True,
                      clip_x0: float | None = None) -> jax.Array:
    """DPM-Solver++(2M) (Lu et al. 2022, algorithm 2): a multistep exponential integrator of the
    probability-flow ODE in the data prediction, second order in the step of lambda = log
    (alpha / sigma). The first step is first order (no history yet), and so is the step to a
    clean sample, where lambda is infinite (diffusers does the same at `final_sigmas_type =
    "zero"`): it returns the predicted x0.

    Example:
        >>> import jax.numpy as jnp
        >>> from jaxgen.sample.diffusion import dpm_solver_sample, timesteps
        >>> from jaxgen.schedules import linear_schedule
        >>> schedule, x0, noise = linear_schedule(100), jnp.array([[0.5, -0.5]]), jnp.ones((1, 2))
        >>> x_T = schedule.alpha[99] * x0 + schedule.sigma[99] * noise
        >>> x = dpm_solver_sample(lambda x, t: noise, schedule, x_T, timesteps(100, 5))
        >>> bool(jnp.allclose(x, x0, atol=1e-5))  # the true noise leads back to x0
        True
    """

    def step(carry, inputs):
        x, x0_prev, h_prev, first = carry
        t, acp_t, acp_next = inputs
        x0, _ = _predict(fn, x, t, acp_t, parameterization, clip_x0)
        sigma_t, sigma_next = jnp.sqrt(1 - acp_t), jnp.sqrt(1 - acp_next)
        # exp(-h) = (sigma_next / alpha_next) / (sigma_t / alpha_t), 0 at a clean target.
        ratio = sigma_next * jnp.sqrt(acp_t) / (jnp.sqrt(acp_next) * sigma_t)
        h = -jnp.log(jnp.maximum(ratio, 1e-30))
        r = h_prev / h
        second = (1 + 0.5 / r) * x0 - 0.5 / r * x0_prev
        use_second = jnp.logical_not(first) & (ratio > 0)
        d = jnp.where(use_second, second, x0)
        x = sigma_next / sigma_t * x + jnp.sqrt(acp_next) * (1 - ratio) * d
        return (x, x0, h, jnp.zeros((), bool)), None

    t, acp_t, acp_next = _path(schedule, steps, to_clean)
    carry = (x_T, jnp.zeros_like(x_T), jnp.ones((), x_T.dtype), jnp.ones((), bool))
    (x, *_), _ = jax.lax.scan(step, carry, (t, acp_t, acp_next))
    return x


def ddim_invert(fn: Denoiser, schedule: schedules.NoiseSchedule, x0: jax.Array, steps,
                parameterization: str = "eps") -> jax.Array:
    """Deterministic DDIM backwards, from clean data x0 to the noise at `steps[0]` (the same
    `steps` a sampler would take, noisiest first). Each step from level a to the noisier level
    b uses the prediction at (x_a, t_b), the usual approximation x_a ~ x_b (Song et al. 2021,
    section 4.3; diffusers' `DDIMInverseScheduler`), so `ddim_sample` of the result returns
    x0 up to a discretisation error that vanishes as the steps get finer.

    Example:
        >>> import jax.numpy as jnp
        >>> from jaxgen.sample.diffusion import ddim_invert, timesteps
        >>> from jaxgen.schedules import linear_schedule
        >>> schedule, x0, noise = linear_schedule(100), jnp.array([[0.5, -0.5]]), jnp.ones((1, 2))
        >>> x_T = ddim_invert(lambda x, t: noise, schedule, x0, timesteps(100, 5))
        >>> bool(jnp.allclose(x_T, schedule.alpha[99] * x0 + schedule.sigma[99] * noise, atol=1e-5))
        True
    """
    t_b = jnp.asarray(steps, jnp.int32)[::-1]
    acp_b = schedule.alphas_cumprod[t_b]
    acp_a = jnp.concatenate([jnp.ones((1,), acp_b.dtype), acp_b[:-1]])

    def step(x, inputs):
        t, a, b = inputs
        _, eps = _predict(fn, x, t, b, parameterization)  # the model's view: x is at level b
        x = jnp.sqrt(b / a) * (x - jnp.sqrt(1 - a) * eps) + jnp.sqrt(1 - b) * eps
        return x, None

    x, _ = jax.lax.scan(step, x0, (t_b, acp_a, acp_b))
    return x


# Flow matching: x_t = (1 - t) x0 + t eps, velocity v = eps - x0.

def flow_times(num_steps: int, shift: float = 1.0) -> np.ndarray:
    """num_steps + 1 times from 1 to 0, uniform, then shifted toward the noise end by
    t' = shift t / (1 + (shift - 1) t) (Esser et al. 2024, SD3's timestep shift).

    Example:
        >>> from jaxgen.sample.diffusion import flow_times
        >>> flow_times(4).tolist()
        [1.0, 0.75, 0.5, 0.25, 0.0]
        >>> [round(t, 4) for t in flow_times(4, shift=3.0).tolist()]  # more time near noise
        [1.0, 0.9, 0.75, 0.5, 0.0]
    """
    if num_steps < 1:
        raise ValueError(f"num_steps must be at least 1, got {num_steps}")
    t = np.linspace(1.0, 0.0, num_steps + 1)
    return (shift * t / (1 + (shift - 1) * t)).astype(np.float32)


def euler_sample(fn: Denoiser, x_T: jax.Array, times) -> jax.Array:
    """Euler steps of dx/dt = v(x, t) over `times` (from 1 to 0).

    Example:
        >>> import jax.numpy as jnp
        >>> from jaxgen.sample.diffusion import euler_sample, flow_times
        >>> x0, noise = jnp.array([[0.5, -0.5]]), jnp.ones((1, 2))
        >>> x = euler_sample(lambda x, t: noise - x0, noise, flow_times(4))  # the straight path
        >>> bool(jnp.allclose(x, x0, atol=1e-5))
        True
    """
    times = jnp.asarray(times, jnp.float32)

    def step(x, ts):
        t, t_next = ts
        return x + (t_next - t) * fn(x, jnp.full((x.shape[0],), t)), None

    x, _ = jax.lax.scan(step, x_T, (times[:-1], times[1:]))
    return x


def heun_sample(fn: Denoiser, x_T: jax.Array, times) -> jax.Array:
    """Heun's second-order method (Karras et al. 2022, algorithm 1) over `times`: an Euler
    predictor, then the average of the two slopes; a step that ends at t = 0 stays Euler
    (the slope there is not defined for a noise-free input). Two evaluations per step but
    the last.

    Example:
        >>> import jax.numpy as jnp
        >>> from jaxgen.sample.diffusion import euler_sample, flow_times, heun_sample
        >>> velocity, x_T, times = (lambda x, t: x), jnp.ones((1, 1)), flow_times(8)
        >>> exact = x_T * jnp.exp(-1.0)  # dx/dt = x, from t = 1 back to 0
        >>> error = lambda sampler: float(jnp.abs(sampler(velocity, x_T, times) - exact).max())
        >>> error(heun_sample) < error(euler_sample) / 5
        True
    """
    times = jnp.asarray(times, jnp.float32)
    batch = (x_T.shape[0],)

    def step(x, ts):
        t, t_next = ts
        v = fn(x, jnp.full(batch, t))
        x_euler = x + (t_next - t) * v

        def correct():
            v_next = fn(x_euler, jnp.full(batch, t_next))
            return x + (t_next - t) * 0.5 * (v + v_next)

        return jax.lax.cond(t_next > 0, correct, lambda: x_euler), None

    x, _ = jax.lax.scan(step, x_T, (times[:-1], times[1:]))
    return x


# Classifier-free guidance.

def guided(model_fn: Callable, condition, null_condition, guidance_scale: float | jax.Array,
           noise_level: Callable[[jax.Array], jax.Array] | None = None,
           interval: tuple = (0.0, float("inf"))) -> Denoiser:
    """Classifier-free guidance (Ho & Salimans 2022) as a denoiser `fn(x, t)` for any sampler:
    `cond + w (cond - uncond)` from one forward pass of `model_fn(x, t, condition)` over the
    batch doubled into (conditional, unconditional) halves. w = 0 is the plain conditional
    model; diffusers' `guidance_scale` is 1 + w. The mix is linear, so it means the same in
    every parameterization (eps, x0, v, velocity).

    `condition` and `null_condition` are pytrees with batch-leading leaves (labels [B], text
    embeddings [B, L, D]). With `noise_level(t)` (sigma / alpha of the step), guidance applies
    only where it lies in `interval` = (low, high] (Kynkaanniemi et al. 2024: guidance at the
    high-noise end costs diversity, at the low-noise end it does little). The scale and the
    interval may be traced: changing them does not recompile.

    Example:
        >>> import jax.numpy as jnp
        >>> from jaxgen.sample.diffusion import guided
        >>> model = lambda x, t, label: x * label[:, None]  # a toy conditional denoiser
        >>> x, t, label, null = jnp.ones((1, 2)), jnp.zeros(1), jnp.array([3.0]), jnp.array([1.0])
        >>> guided(model, label, null, guidance_scale=0.0)(x, t).tolist()  # the conditional model
        [[3.0, 3.0]]
        >>> guided(model, label, null, guidance_scale=2.0)(x, t).tolist()  # 3 + 2 (3 - 1)
        [[7.0, 7.0]]
    """

    def fn(x, t):
        both = jax.tree.map(lambda c, n: jnp.concatenate([c, n]), condition, null_condition)
        out = model_fn(jnp.concatenate([x, x]), jnp.concatenate([t, t]), both)
        cond, uncond = jnp.split(out, 2)
        scale = jnp.broadcast_to(jnp.asarray(guidance_scale, cond.dtype), t.shape)
        if noise_level is not None:
            level = noise_level(t)
            scale = jnp.where((level > interval[0]) & (level <= interval[1]), scale, 0.0)
        scale = scale.reshape(-1, *([1] * (cond.ndim - 1)))
        return cond + scale * (cond - uncond)

    return fn
