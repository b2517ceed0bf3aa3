"""The GAN objective: two players, two optimizers, one pure min-max step.

The state's `params` hold {"generator", "discriminator"} (and "generator_stats", the generator's
batch-norm running statistics, when it has any); `opt_state` holds one optax state per player;
`ema_params`, when kept, hold the generator's moving average (and its statistics), which is what
`eval_params` samples from.

One step (`GANObjective.step`) consumes `batch_size` real examples:
- "alternating" (the default, Goodfellow et al. 2014, algorithm 1): `n_critic` discriminator
  updates, each on its own `batch_size / n_critic` real examples and fresh fakes, then one
  generator update against the updated discriminator.
- "simultaneous" (n_critic = 1): both players' gradients at the same parameters and the same
  fakes, applied together, as in ALI's and PacGAN's code.
"""

import jax
import jax.numpy as jnp
import optax
from flax import nnx

from jaxgen import losses
from jaxgen.eval import gan as gan_eval
from jaxgen.models.gan import (
    DCGANDiscriminator,
    DCGANGenerator,
    MlpDiscriminator,
    MlpGenerator,
    pack_samples,
)
from jaxgen.train.objectives import (
    EvalOptions,
    Evaluator,
    LatentSpace,
    Objective,
    Run,
    SampleOptions,
    Sampler,
)
from jaxgen.train.state import (
    TrainState,
    apply_gradients,
    compute_dtype,
    ema_update,
    make_optimizer,
)

UPDATE_ORDERS = ("alternating", "simultaneous")


class GANObjective(Objective, Sampler, LatentSpace, Evaluator):
    """Config `model` fields: kind ("mlp" | "dcgan"), data_shape, latent_dim, num_classes (0 for
    unconditional), g_hidden / d_hidden / d_maxout_pieces (mlp), g_channels / d_channels (dcgan),
    g_batch_norm. Config `gan` fields: loss (see `losses.ADVERSARIAL_LOSSES`), update_order,
    n_critic, pack, gp_weight (WGAN-GP lambda), r1_weight (R1 gamma). `optim` trains the
    generator, `d_optim` the discriminator.
    """

    progress_metrics = ("d_loss", "g_loss")

    def __init__(self, config):
        self.config = config
        gan, model = config.gan, config.model
        self.pair = losses.adversarial_loss(gan.loss)
        if gan.update_order not in UPDATE_ORDERS:
            raise ValueError(f"gan.update_order must be one of {UPDATE_ORDERS}, got "
                             f"{gan.update_order!r}")
        if gan.update_order == "simultaneous" and gan.n_critic != 1:
            raise ValueError("simultaneous updates take one discriminator step: set n_critic=1")
        if gan.n_critic < 1 or gan.pack < 1:
            raise ValueError("gan.n_critic and gan.pack must be at least 1")
        micro = config.batch_size // gan.n_critic
        if config.batch_size % gan.n_critic or micro % gan.pack:
            raise ValueError(
                f"batch_size {config.batch_size} must split into n_critic={gan.n_critic} equal "
                f"discriminator batches, each a multiple of pack={gan.pack}"
            )
        if model.num_classes and gan.pack > 1:
            raise ValueError("packing (gan.pack > 1) is for unconditional GANs; set one of "
                             "model.num_classes=0 or gan.pack=1")
        self.conditional = bool(model.num_classes)
        self.micro_batch = micro
        self.g_tx = make_optimizer(config.optim, config.steps)
        self.d_tx = make_optimizer(config.d_optim, config.steps * gan.n_critic)
        self.ema_decay = config.ema_decay
        generator, discriminator = nnx.eval_shape(lambda: self.build(nnx.Rngs(0)))
        self.g_graphdef = nnx.graphdef(generator)
        self.d_graphdef = nnx.graphdef(discriminator)
        self._check_shapes(generator, discriminator)

    @property
    def latent_dim(self) -> int:
        return self.config.model.latent_dim

    def build(self, rngs: nnx.Rngs):
        """(generator, discriminator) for the config."""
        model, gan = self.config.model, self.config.gan
        common = dict(data_shape=tuple(model.data_shape), num_classes=model.num_classes,
                      dtype=compute_dtype(self.config.compute_dtype), rngs=rngs)
        if model.kind == "mlp":
            return (MlpGenerator(latent_dim=model.latent_dim, hidden=tuple(model.g_hidden),
                                 batch_norm=model.g_batch_norm, **common),
                    MlpDiscriminator(hidden=tuple(model.d_hidden),
                                     maxout_pieces=model.d_maxout_pieces, pack=gan.pack,
                                     **common))
        if model.kind == "dcgan":
            return (DCGANGenerator(latent_dim=model.latent_dim, channels=tuple(model.g_channels),
                                   batch_norm=model.g_batch_norm, **common),
                    DCGANDiscriminator(channels=tuple(model.d_channels), pack=gan.pack,
                                       **common))
        raise ValueError(f"model.kind must be 'mlp' or 'dcgan', got {model.kind!r}")

    def _check_shapes(self, generator, discriminator) -> None:
        """Refuses, at set-up, a generator whose samples are not data-shaped (rather than letting
        the discriminator broadcast them) and a discriminator that does not score them."""
        data_shape = tuple(self.config.model.data_shape)
        n = 2 * self.config.gan.pack
        z = jax.ShapeDtypeStruct((n, self.config.model.latent_dim), jnp.float32)
        labels = jax.ShapeDtypeStruct((n,), jnp.int32)
        fake = jax.eval_shape(lambda g, z, y: g(z, y), generator, z, labels)
        if tuple(fake.shape) != (n, *data_shape):
            raise ValueError(
                f"the generator makes samples of shape {list(fake.shape[1:])} but the data "
                f"(model.data_shape) is {list(data_shape)}"
            )
        scores = jax.eval_shape(lambda d, x, y: d(pack_samples(x, self.config.gan.pack),
                                                  y[::self.config.gan.pack]),
                                discriminator, fake, labels)
        if tuple(scores.shape) != (2,):
            raise ValueError(f"the discriminator should give one score per packed example, "
                             f"shape [2], got {list(scores.shape)}")

    def init_state(self, key: jax.Array) -> TrainState:
        init_key, rng = jax.random.split(key)
        generator, discriminator = self.build(nnx.Rngs(init_key))
        g_params, g_stats = nnx.state(generator, nnx.Param, ...)  # the rest: batch statistics
        params = {"generator": g_params.to_pure_dict(),
                  "discriminator": nnx.state(discriminator, nnx.Param).to_pure_dict()}
        if g_stats := g_stats.to_pure_dict():
            params["generator_stats"] = g_stats
        ema = None
        if self.ema_decay > 0:
            ema = {k: jax.tree.map(jnp.copy, v) for k, v in params.items() if k != "discriminator"}
        opt_state = {"generator": self.g_tx.init(params["generator"]),
                     "discriminator": self.d_tx.init(params["discriminator"])}
        return TrainState(step=jnp.zeros((), jnp.int32), params=params, opt_state=opt_state,
                          ema_params=ema, rng=rng)

    # The two players as functions of their parameters.

    def generate(self, params, z, labels=None, train=False):
        """(samples [B, *data_shape], updated batch-norm statistics) from latents z [B, D]."""
        stats = params.get("generator_stats", {})
        generator = nnx.merge(self.g_graphdef, params["generator"], stats)
        samples = generator(z, labels, train=train)
        new_stats = nnx.state(generator, nnx.BatchStat).to_pure_dict() if stats else {}
        return samples, new_stats

    def critic(self, d_params, labels=None):
        """The discriminator as a function of packed inputs (what the penalties differentiate);
        `labels` [B] are those of the unpacked samples."""
        discriminator = nnx.merge(self.d_graphdef, d_params)
        labels = None if labels is None else labels[:: self.config.gan.pack]
        return lambda packed: discriminator(packed, labels)

    def discriminate(self, d_params, x, labels=None):
        """Scores [B / pack] of data-shaped samples x [B, ...] (packed here)."""
        return self.critic(d_params, labels)(pack_samples(x, self.config.gan.pack))

    def draw_latents(self, key, num):
        return jax.random.normal(key, (num, self.config.model.latent_dim))

    # Losses of each player.

    def discriminator_loss(self, d_params, params, real, labels, key):
        z_key, gp_key = jax.random.split(key)
        fake, _ = self.generate(params, self.draw_latents(z_key, real.shape[0]), labels,
                                train=True)
        gan = self.config.gan
        critic = self.critic(d_params, labels)
        real = pack_samples(real, gan.pack)
        fake = pack_samples(jax.lax.stop_gradient(fake), gan.pack)
        real_scores, fake_scores = critic(real), critic(fake)
        adversarial = self.pair.discriminator(real_scores, fake_scores)
        gp = r1 = jnp.zeros(())
        if gan.gp_weight:
            gp = losses.gradient_penalty(critic, real, fake, gp_key)
        if gan.r1_weight:
            r1 = losses.r1_penalty(critic, real)
        loss = adversarial + gan.gp_weight * gp + 0.5 * gan.r1_weight * r1  # R1: gamma / 2
        return loss, {"d_adversarial": adversarial, "gradient_penalty": gp, "r1": r1,
                      "real_score": jnp.mean(real_scores), "fake_score": jnp.mean(fake_scores)}

    def generator_loss(self, g_params, params, d_params, labels, key):
        num = self.micro_batch
        trial = {**params, "generator": g_params}
        fake, new_stats = self.generate(trial, self.draw_latents(key, num), labels, train=True)
        return self.pair.generator(self.discriminate(d_params, fake, labels)), new_stats

    # The step.

    def _labels(self, labels):
        return labels if self.conditional else None

    def _discriminator_update(self, params, d_opt_state, real, labels, key):
        (loss, aux), grads = jax.value_and_grad(self.discriminator_loss, has_aux=True)(
            params["discriminator"], params, real, self._labels(labels), key)
        d_params, d_opt_state = apply_gradients(self.d_tx, params["discriminator"], d_opt_state,
                                                grads)
        aux = {"d_loss": loss, "d_grad_norm": optax.global_norm(grads), **aux}
        return d_params, d_opt_state, aux

    def _generator_grads(self, params, d_params, labels, key):
        (loss, new_stats), grads = jax.value_and_grad(self.generator_loss, has_aux=True)(
            params["generator"], params, d_params, self._labels(labels), key)
        return loss, grads, new_stats

    def step(self, state: TrainState, batch, key: jax.Array):
        real, labels = batch["image"], batch["label"]
        n, micro = self.config.gan.n_critic, self.micro_batch
        # Discriminator batch j is every n-th example from j: the reshape keeps the batch axis
        # (and its sharding) leading, where a contiguous split would move data between devices.
        reals = jnp.swapaxes(real.reshape(micro, n, *real.shape[1:]), 0, 1)
        label_sets = jnp.swapaxes(labels.reshape(micro, n), 0, 1)
        d_key, g_key = jax.random.split(key)
        params, opt_state = state.params, state.opt_state

        if self.config.gan.update_order == "simultaneous":
            d_params, d_opt, d_aux = self._discriminator_update(
                params, opt_state["discriminator"], reals[0], label_sets[0], d_key)
            # Same parameters and the same fakes for both players (the key draws the latents).
            g_loss, g_grads, new_stats = self._generator_grads(
                params, params["discriminator"], label_sets[0], jax.random.split(d_key)[0])
        else:
            # The critic steps are unrolled: n_critic is small, and XLA's CPU backend runs the
            # convolutions inside a `lax.scan` body about 4x slower than outside one.
            d_params, d_opt = params["discriminator"], opt_state["discriminator"]
            for j, key_j in enumerate(jax.random.split(d_key, n)):
                d_params, d_opt, d_aux = self._discriminator_update(
                    {**params, "discriminator": d_params}, d_opt, reals[j], label_sets[j], key_j)
            g_loss, g_grads, new_stats = self._generator_grads(params, d_params, label_sets[0],
                                                               g_key)

        g_params, g_opt = apply_gradients(self.g_tx, params["generator"], opt_state["generator"],
                                          g_grads)
        new_params = {"generator": g_params, "discriminator": d_params}
        if new_stats:
            new_params["generator_stats"] = new_stats
        ema = state.ema_params
        if ema is not None:
            ema = {**{k: v for k, v in new_params.items() if k == "generator_stats"},
                   "generator": ema_update(ema["generator"], new_params["generator"], state.step,
                                           self.ema_decay)}
        metrics = {**d_aux, "g_loss": g_loss, "g_grad_norm": optax.global_norm(g_grads)}
        new_state = state.replace(
            step=state.step + 1, params=new_params, ema_params=ema,
            opt_state={"generator": g_opt, "discriminator": d_opt},
        )
        return new_state, metrics

    # Sampling and the latent tools.

    def default_labels(self, num: int):
        """Classes 0, 1, ..., K-1, 0, 1, ... (a grid shows one class per column), or None."""
        if not self.conditional:
            return None
        return jnp.arange(num) % self.config.model.num_classes

    def decode(self, params, z: jax.Array, labels=None) -> jax.Array:
        """Generator samples of latents z [N, D] (with the running batch-norm statistics)."""
        if labels is None:
            labels = self.default_labels(z.shape[0])
        return self.generate(params, z, labels, train=False)[0]

    def sample(self, params, key: jax.Array, num: int, labels=None) -> jax.Array:
        return self.decode(params, self.draw_latents(key, num), labels)

    def draw(self, params, key: jax.Array, num: int, options: SampleOptions, mesh):
        """`sample`'s images, with their classes for a conditional GAN (0, 1, ..., K-1 in
        turn)."""
        samples, _ = super().draw(params, key, num, options, mesh)
        return samples, self.default_labels(num)

    def evaluate(self, run: Run, options: EvalOptions) -> dict:
        """Class histogram (images), mode coverage (ring8, grid25) or the helix report
        (`jaxgen.eval.gan`)."""
        return gan_eval.evaluate_run(run, options)
