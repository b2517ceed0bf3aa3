"""Prompt in, image out: a latent diffusion run as a text-to-image pipeline.

    from jaxgen.pipeline import TextToImage
    pipe = TextToImage.from_run("runs/ldm_mnist5k")
    images = pipe("a thin seven", num=16, guidance=4.0, seed=0)   # uint8 [16, 28, 28, 1]
    images = pipe(["a thick two", "a small nine"], num=8)          # prompts in turn
    sd = TextToImage.from_pretrained("sd15")   # a diffusers Stable Diffusion folder

The same seed gives the same images, whatever the batch size: each image's noise comes from
(seed, its index). Prompts, guidance and the noise interval are traced (changing them does not
recompile); the sampler and its step count are static. A batch that the device count divides
is sharded over all devices (its images agree with unsharded ones to a grey level). Prompts
longer than the text tower's context are an error, not cut; the empty prompt is the
unconditional model, so guidance does nothing to it.
"""

from jaxgen.train import families
from jaxgen.train.objectives import PromptToImage
from jaxgen.train.run import load_run


class TextToImage:
    def __init__(self, run):
        families.require(run.config.family, PromptToImage, "text-to-image")
        self.run = run
        self.objective = run.objective

    @classmethod
    def from_run(cls, workdir, step: int | None = None) -> "TextToImage":
        return cls(load_run(workdir, step, needs=PromptToImage, command="text-to-image"))

    @staticmethod
    def from_pretrained(path, **kwargs):
        """A diffusers Stable Diffusion folder as the same kind of callable (prompts in,
        uint8 images out): `jaxgen.pretrained.stable_diffusion.StableDiffusion`, which also
        takes height, width and initial latents."""
        from jaxgen.pretrained.stable_diffusion import StableDiffusion

        return StableDiffusion.from_pretrained(path, **kwargs)

    def __call__(self, prompts, num: int | None = None, *, guidance: float | None = None,
                 interval=None, seed: int = 0, sampler: str | None = None,
                 steps: int | None = None, batch_size: int = 64):
        """uint8 images [num, H, W, C] of `prompts` (a string, or a list taken in turn; num
        defaults to one per prompt). guidance: w, cond + w (cond - uncond) against the empty
        prompt (default: the run's `sample.guidance`; 0 is the plain conditional model)."""
        return self.objective.text_to_image(
            self.run.params, self.run.mesh, prompts, num, guidance=guidance, interval=interval,
            seed=seed, sampler=sampler, steps=steps, batch_size=batch_size)
