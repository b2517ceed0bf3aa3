"""Prompt in, image out: a latent diffusion run as a text-to-image pipeline.

    from jaxgen.pipeline import TextToImage
    pipe = TextToImage.from_run("runs/ldm_mnist5k")
    images = pipe("a thin seven", num=16, guidance=4.0, seed=0)   # uint8 [16, 28, 28, 1]
    images = pipe(["a thick two", "a small nine"], num=8)          # prompts in turn

The same seed gives the same images, whatever the batch size: each image's noise comes from
(seed, its index). Prompts, guidance and the noise interval are traced (changing them does not
recompile); the sampler and its step count are static. A batch that the device count divides
is sharded over all devices (its images agree with unsharded ones to a grey level). Prompts
longer than the text tower's context are an error, not cut; the empty prompt is the
unconditional model, so guidance does nothing to it.
"""

import jax
import jax.numpy as jnp
import numpy as np

from jaxgen import parallel, viz


class TextToImage:
    def __init__(self, run):
        if run.config.family != "ldm":
            raise ValueError(f"text-to-image needs a latent diffusion run (family 'ldm'); "
                             f"{run.config.family!r} runs do not take prompts")
        self.run = run
        self.objective = run.objective
        self._generate = jax.jit(self._batch, static_argnames=("sampler", "steps"))

    @classmethod
    def from_run(cls, workdir, step: int | None = None) -> "TextToImage":
        from jaxgen.train.run import load_run

        return cls(load_run(workdir, step))

    def _batch(self, params, tokens, keys, guidance, interval, *, sampler, steps):
        """Images [B, H, W, C] for tokens [B, T], each drawn from its own key."""

        def one(token_row, key):
            return self.objective.generate_images(params, token_row[None], key, guidance,
                                                  interval, sampler=sampler, steps=steps)[0]

        return jax.vmap(one)(tokens, keys)

    def __call__(self, prompts, num: int | None = None, *, guidance: float | None = None,
                 interval=None, seed: int = 0, sampler: str | None = None,
                 steps: int | None = None, batch_size: int = 64) -> np.ndarray:
        """uint8 images [num, H, W, C] of `prompts` (a string, or a list taken in turn; num
        defaults to one per prompt). guidance: w, cond + w (cond - uncond) against the empty
        prompt (default: the run's `sample.guidance`; 0 is the plain conditional model)."""
        prompts = [prompts] if isinstance(prompts, str) else list(prompts)
        if not prompts:
            raise ValueError("give at least one prompt")
        num = len(prompts) if num is None else num
        if num < 1:
            raise ValueError(f"num must be at least 1, got {num}")
        config = self.run.config.sample
        sampler = sampler or config.sampler
        self.objective.check_sampler(sampler)
        guidance = config.guidance if guidance is None else guidance
        interval = config.guidance_interval if interval is None else tuple(interval)
        if interval is not None:
            interval = jnp.asarray(interval, jnp.float32)
        tokens = self.objective.prompt_tokens(prompts, num)
        keys = jax.vmap(lambda i: jax.random.fold_in(jax.random.PRNGKey(seed), i))(
            jnp.arange(num))
        images = []
        for i in range(0, num, batch_size):
            chunk = (tokens[i:i + batch_size], keys[i:i + batch_size])
            if len(chunk[0]) % self.run.mesh.size == 0:  # sharded over the batch
                chunk = jax.device_put(chunk, parallel.batch_sharding(self.run.mesh))
            images.append(np.asarray(self._generate(self.run.params, *chunk, guidance, interval,
                                                    sampler=sampler,
                                                    steps=steps or config.steps)))
        return viz.to_uint8(np.concatenate(images))
