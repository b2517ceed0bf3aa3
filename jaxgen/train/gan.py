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

For limited data (Karras et al. 2020; Zhao et al. 2020), all off by default:
- `gan.spectral_norm`: the discriminator's weights divided by their largest singular value
  (`models.spectral_norm`); the power-iteration vectors are `params["discriminator_sn"]`,
  updated by each discriminator update.
- `gan.augment`: DiffAugment's transforms (`jaxgen.augment`, e.g. "color,translation,cutout")
  applied to every image the discriminator sees, real and fake, in both players' losses and
  the R1 penalty, each transform to each image with probability `gan.augment_p`.
- `gan.ada_target` > 0: adaptive augmentation (ADA): the probability is `params["ada_p"]`,
  starting at 0 and moved after each step by sign(r_t - target) * batch / (ada_kimg * 1000),
  r_t = E[sign(D(real))] of the step's real batch (Karras et al. 2020, section 3); logged as
  `ada_p` and `ada_rt`.
- `gan.r1_every` k > 1: lazy R1 (StyleGAN2): the penalty on every k-th step only, times k.
"""

import jax
import jax.numpy as jnp
import optax
from flax import nnx

from jaxgen import augment, losses
from jaxgen.eval import gan as gan_eval
from jaxgen.models import spectral_norm
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
    n_critic, pack, gp_weight (WGAN-GP lambda), r1_weight (R1 gamma), and optionally
    spectral_norm, augment, augment_p, ada_target, ada_kimg, r1_every (module docstring).
    `optim` trains the generator, `d_optim` the discriminator.
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
        self._limited_data_options(gan, model)
        self.g_tx = make_optimizer(config.optim, config.steps)
        self.d_tx = make_optimizer(config.d_optim, config.steps * gan.n_critic)
        self.ema_decay = config.ema_decay
        generator, discriminator = nnx.eval_shape(lambda: self.build(nnx.Rngs(0)))
        self.g_graphdef = nnx.graphdef(generator)
        self.d_graphdef = nnx.graphdef(discriminator)
        self._check_shapes(generator, discriminator)

    def _limited_data_options(self, gan, model) -> None:
        self.spectral_norm = bool(gan.get("spectral_norm", False))
        self.augment_policy = ",".join(augment.check_policy(gan.get("augment", "")))
        self.augment_p = float(gan.get("augment_p", 1.0))
        self.ada_target = float(gan.get("ada_target", 0.0) or 0.0)
        self.ada_kimg = float(gan.get("ada_kimg", 100.0))
        self.r1_every = int(gan.get("r1_every", 1))
        if self.augment_policy and model.kind != "dcgan":
            raise ValueError("gan.augment transforms images: it needs model.kind 'dcgan', got "
                             f"{model.kind!r}")
        if not 0.0 <= self.augment_p <= 1.0 or not 0.0 <= self.ada_target < 1.0:
            raise ValueError("gan.augment_p must be in [0, 1] and gan.ada_target in [0, 1)")
        if self.ada_target and not self.augment_policy:
            raise ValueError("gan.ada_target adapts the augmentation probability: name the "
                             "transforms in gan.augment (e.g. 'translation,cutout')")
        if self.ada_kimg <= 0 or self.r1_every < 1:
            raise ValueError("gan.ada_kimg must be positive and gan.r1_every at least 1")
        if self.ada_target:
            self.progress_metrics = ("d_loss", "g_loss", "ada_p")

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
        if self.spectral_norm:
            params["discriminator_sn"] = spectral_norm.init(jax.random.fold_in(init_key, 1),
                                                            params["discriminator"])
        if self.ada_target:
            params["ada_p"] = jnp.zeros((), jnp.float32)
        ema = None
        if self.ema_decay > 0:
            ema = {k: jax.tree.map(jnp.copy, v) for k, v in params.items()
                   if k in ("generator", "generator_stats")}
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

    def critic_weights(self, d_params, params):
        """(the weights the discriminator computes with, the updated spectral-norm vectors or
        None): `d_params` spectrally normalised with `params["discriminator_sn"]` when
        gan.spectral_norm is on, else as they are."""
        if not self.spectral_norm:
            return d_params, None
        weights, vectors, _ = spectral_norm.normalize(d_params, params["discriminator_sn"])
        return weights, vectors

    def augment_probability(self, params):
        return params["ada_p"] if self.ada_target else self.augment_p

    def augment(self, key, x, params):
        """The discriminator's view of images x: `gan.augment`'s transforms, or x."""
        if not self.augment_policy:
            return x
        return augment.diff_augment(key, x, self.augment_policy,
                                    self.augment_probability(params))

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

    def discriminator_loss(self, d_params, params, real, labels, key, step=0):
        """(loss, aux) of the discriminator's raw weights `d_params`; aux carries the updated
        spectral-norm vectors ("sn_vectors") when spectral norm is on. `step` times lazy R1."""
        z_key, gp_key = jax.random.split(key)
        fake, _ = self.generate(params, self.draw_latents(z_key, real.shape[0]), labels,
                                train=True)
        gan = self.config.gan
        weights, vectors = self.critic_weights(d_params, params)
        critic = self.critic(weights, labels)
        fake = jax.lax.stop_gradient(fake)
        if self.augment_policy:
            real_key, fake_key = jax.random.split(jax.random.fold_in(key, 1))
            real, fake = self.augment(real_key, real, params), self.augment(fake_key, fake, params)
        real = pack_samples(real, gan.pack)
        fake = pack_samples(fake, gan.pack)
        real_scores, fake_scores = critic(real), critic(fake)
        adversarial = self.pair.discriminator(real_scores, fake_scores)
        gp = r1 = jnp.zeros(())
        if gan.gp_weight:
            gp = losses.gradient_penalty(critic, real, fake, gp_key)
        if gan.r1_weight and self.r1_every == 1:
            r1 = losses.r1_penalty(critic, real)
        elif gan.r1_weight:  # lazy: every r1_every-th step, scaled by r1_every
            r1 = jax.lax.cond(step % self.r1_every == 0,
                              lambda: self.r1_every * losses.r1_penalty(critic, real),
                              lambda: jnp.zeros((), jnp.float32))
        loss = adversarial + gan.gp_weight * gp + 0.5 * gan.r1_weight * r1  # R1: gamma / 2
        aux = {"d_adversarial": adversarial, "gradient_penalty": gp, "r1": r1,
               "real_score": jnp.mean(real_scores), "fake_score": jnp.mean(fake_scores)}
        if self.ada_target:
            aux["ada_rt"] = jnp.mean(jnp.sign(real_scores))
        if vectors is not None:
            aux["sn_vectors"] = vectors
        return loss, aux

    def generator_loss(self, g_params, params, d_params, labels, key):
        num = self.micro_batch
        trial = {**params, "generator": g_params}
        fake, new_stats = self.generate(trial, self.draw_latents(key, num), labels, train=True)
        if self.augment_policy:
            fake = self.augment(jax.random.fold_in(key, 1), fake, params)
        weights, _ = self.critic_weights(d_params, params)
        return self.pair.generator(self.discriminate(weights, fake, labels)), new_stats

    # The step.

    def _labels(self, labels):
        return labels if self.conditional else None

    def _discriminator_update(self, params, d_opt_state, real, labels, key, step):
        """(new discriminator weights, its optimizer state, aux, the spectral-norm vectors
        after this update or None)."""
        (loss, aux), grads = jax.value_and_grad(self.discriminator_loss, has_aux=True)(
            params["discriminator"], params, real, self._labels(labels), key, step)
        d_params, d_opt_state = apply_gradients(self.d_tx, params["discriminator"], d_opt_state,
                                                grads)
        vectors = aux.pop("sn_vectors", None)
        aux = {"d_loss": loss, "d_grad_norm": optax.global_norm(grads), **aux}
        return d_params, d_opt_state, aux, vectors

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
            d_params, d_opt, d_aux, vectors = self._discriminator_update(
                params, opt_state["discriminator"], reals[0], label_sets[0], d_key, state.step)
            rts = [d_aux.get("ada_rt")]
            # Same parameters and the same fakes for both players (the key draws the latents).
            g_loss, g_grads, new_stats = self._generator_grads(
                params, params["discriminator"], label_sets[0], jax.random.split(d_key)[0])
        else:
            # The critic steps are unrolled: n_critic is small, and XLA's CPU backend runs the
            # convolutions inside a `lax.scan` body about 4x slower than outside one.
            d_params, d_opt = params["discriminator"], opt_state["discriminator"]
            current, rts = params, []
            for j, key_j in enumerate(jax.random.split(d_key, n)):
                d_params, d_opt, d_aux, vectors = self._discriminator_update(
                    current, d_opt, reals[j], label_sets[j], key_j, state.step)
                current = {**current, "discriminator": d_params}
                if vectors is not None:
                    current["discriminator_sn"] = vectors
                rts.append(d_aux.get("ada_rt"))
            g_loss, g_grads, new_stats = self._generator_grads(current, d_params,
                                                               label_sets[0], g_key)

        g_params, g_opt = apply_gradients(self.g_tx, params["generator"], opt_state["generator"],
                                          g_grads)
        new_params = {"generator": g_params, "discriminator": d_params}
        if new_stats:
            new_params["generator_stats"] = new_stats
        if vectors is not None:
            new_params["discriminator_sn"] = vectors
        if self.ada_target:  # Karras et al. 2020, eq. 1's r_t, one adjustment per step
            r_t = jnp.mean(jnp.stack(rts))
            adjust = jnp.sign(r_t - self.ada_target) * self.config.batch_size / (
                self.ada_kimg * 1000)
            new_params["ada_p"] = jnp.clip(params["ada_p"] + adjust, 0.0, 1.0)
            d_aux = {**d_aux, "ada_rt": r_t, "ada_p": new_params["ada_p"]}
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
