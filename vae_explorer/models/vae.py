"""The VAE (Kingma & Welling, arXiv:1312.6114): an encoder/decoder pair from the registry
(models/architectures.py) with a Gaussian head, the posterior it encodes, and how it is built.

    model = build_model(ModelConfig(architecture="mlp", latent_dim=20, image_shape=[1, 28, 28]))
    q = model.encode(x)                     # Posterior with .mean, .logvar, .sample(), .kl()
    z = model.reparameterize(q.mean, q.logvar)
    params = model.decode(z)                # likelihood parameters, (B, C, H, W): logits or means
    images = model.generate(z)              # the mean of p(x|z), (B, C, H, W) in [0, 1]
"""

from __future__ import annotations

import dataclasses
import math
import threading

import torch
from torch import nn

from ..config import ModelConfig
from ..errors import ConfigError
from .architectures import ACTIVATIONS, ARCHITECTURES, SPATIAL_ARCHITECTURES
from .losses import LOG_2PI, LossParts, full_precision, gaussian_kl, gaussian_kl_between, log_normal, reconstruction_nll

_SEEDED_INIT = threading.Lock()  # seeded inits in two threads (two app sessions) must not interleave
MIN_LOG_SIGMA = math.log(1e-3)  # floor of a learned Gaussian sigma, so the NLL cannot run off to -inf
# The largest model built (trained, loaded or uploaded): 200 MB of float32 weights, the upload limit
# for model.safetensors, and 64 MB of values computed per image by the encoder and decoder.
MAX_PARAMETERS = 50_000_000
MAX_ACTIVATIONS = 1 << 24


class Posterior:
    """The diagonal Gaussian q(z|x) = N(mean, diag(exp(logvar))); shapes (B, latent_dim), or
    (B, latent_dim, h, w) for a spatial latent (a Gaussian per channel and position)."""

    def __init__(self, mean: torch.Tensor, logvar: torch.Tensor):
        self.mean, self.logvar = mean, logvar

    @property
    def stddev(self) -> torch.Tensor:
        return torch.exp(0.5 * self.logvar)

    def sample(self, generator: torch.Generator | None = None) -> torch.Tensor:
        """A reparameterized (differentiable) sample z = mean + stddev * eps."""
        return VAE.reparameterize(self.mean, self.logvar, generator)

    def kl_per_dim(self) -> torch.Tensor:
        """KL to N(0, I) per latent dimension (B, D); for a spatial latent, per channel summed over positions."""
        kl = gaussian_kl(self.mean, self.logvar)  # (B, D) or (B, D, h, w)
        return kl.flatten(2).sum(2) if kl.dim() > 2 else kl

    def kl(self) -> torch.Tensor:
        return self.kl_per_dim().sum(1)  # (B,)

    def log_prob(self, z: torch.Tensor) -> torch.Tensor:
        return log_normal(z.flatten(1), self.mean.flatten(1), self.logvar.flatten(1))


class VAE(nn.Module):
    def __init__(self, config: ModelConfig):
        super().__init__()
        self.config = config
        self.cond_dim = config.num_classes if config.conditional else 0
        encoder, features, decoder = ARCHITECTURES[config.architecture](config, self.cond_dim)
        self.encoder, self.decoder = encoder, decoder
        # One linear head gives both mu and log sigma^2: (B, features) -> (B, 2 * latent_dim); for a
        # spatial latent, a 1x1 convolution, the same head at every position: (B, 2 * latent_dim, h, w).
        if self.spatial:
            self.to_latent = nn.Conv2d(features, 2 * config.latent_dim, 1)
        else:
            self.to_latent = nn.Linear(features + self.cond_dim, 2 * config.latent_dim)
        channels = config.image_shape[0]
        if (
            config.prior == "vamp"
        ):  # pseudo-inputs u_k = sigmoid(a_k), images learned with the model (Tomczak & Welling, eq. 9)
            self.pseudo_logits = nn.Parameter(0.1 * torch.randn(config.pseudo_inputs, *config.image_shape))
            # 1 once the pseudo-inputs started from training images (`start_pseudo_inputs`); saved with the weights
            self.register_buffer("pseudo_started", torch.zeros(()))
        if config.top_latent_dim:  # q(z2|z) and p(z|z2): one hidden layer each, as wide as the encoder's last
            act, width = ACTIVATIONS[config.activation], config.hidden_sizes[-1]
            self.top_encoder = nn.Sequential(
                nn.Linear(config.latent_dim, width), act(), nn.Linear(width, 2 * config.top_latent_dim)
            )
            self.top_prior = nn.Sequential(
                nn.Linear(config.top_latent_dim, width), act(), nn.Linear(width, 2 * config.latent_dim)
            )
        log_sigma = torch.full((channels,), math.log(config.gaussian_sigma))
        if config.likelihood == "gaussian-learned":
            self.log_sigma = nn.Parameter(log_sigma)
        else:  # fixed: a constant from the config, so it is not saved with the weights
            self.register_buffer("log_sigma", log_sigma, persistent=False)

    @property
    def latent_dim(self) -> int:
        """The size of z, or of a spatial latent's channels."""
        return self.config.latent_dim

    @property
    def spatial(self) -> bool:
        """Whether z is a map (latent_dim, H/f, W/f) rather than a vector."""
        return self.config.architecture in SPATIAL_ARCHITECTURES

    @property
    def factor(self) -> int:
        """A spatial latent's f: image pixels per latent position, along each side (1 for a vector latent)."""
        return 2 ** len(self.config.channels) if self.spatial else 1

    def latent_shape(self, image_shape=None) -> tuple[int, ...]:
        """The shape of one image's z: (latent_dim,), or (latent_dim, H/f, W/f) for images of
        `image_shape` (C, H, W) (the training images' when not given)."""
        if not self.spatial:
            return (self.latent_dim,)
        _, h, w = image_shape or self.config.image_shape
        return (self.latent_dim, h // self.factor, w // self.factor)

    def _condition(self, y: torch.Tensor | None, batch: int) -> torch.Tensor | None:
        if not self.cond_dim:
            return None
        if y is None:
            raise ValueError("this conditional model needs class labels y")
        y = torch.as_tensor(y, device=self.to_latent.weight.device).long()
        if y.dim() == 0:  # one class for the whole batch
            y = y.expand(batch)
        return nn.functional.one_hot(y, self.cond_dim).to(self.to_latent.weight.dtype)  # (B, K)

    def encode(self, x: torch.Tensor, y: torch.Tensor | None = None) -> Posterior:
        h = self.encoder(x)  # (B, features)
        cond = self._condition(y, len(x))
        if cond is not None:
            h = torch.cat([h, cond], 1)
        mu, logvar = full_precision(self.to_latent(h)).chunk(2, dim=1)  # (B, D) each, float32 at least under autocast
        return Posterior(mu, logvar)

    @staticmethod
    def reparameterize(
        mu: torch.Tensor, logvar: torch.Tensor, generator: torch.Generator | None = None
    ) -> torch.Tensor:
        """z = mu + sigma * eps with eps ~ N(0, I) (Kingma & Welling, section 2.4).

        eps is drawn where `generator` lives, else on mu's device: a CPU generator gives the same
        eps for the same seed whatever device the model is on (evaluation draws there, so a metric
        does not depend on where it ran); training keeps a generator on its own device."""
        device = mu.device if generator is None else generator.device
        eps = torch.randn(mu.shape, generator=generator, device=device, dtype=mu.dtype).to(mu.device)
        return mu + eps * torch.exp(0.5 * logvar)

    def decode(self, z: torch.Tensor, y: torch.Tensor | None = None) -> torch.Tensor:
        """Likelihood parameters of p(x|z), (B, C, H, W): logits (Bernoulli) or means (Gaussian)."""
        cond = self._condition(y, len(z))
        if cond is not None:
            z = torch.cat([z, cond], 1)
        return self.decoder(z)

    def mean_image(self, params: torch.Tensor) -> torch.Tensor:
        """The mean of p(x|z) as an image in [0, 1]."""
        if self.config.likelihood == "bernoulli":
            return torch.sigmoid(params)
        return params.clamp(0.0, 1.0)

    def forward(self, x: torch.Tensor, y: torch.Tensor | None = None) -> tuple[torch.Tensor, Posterior, torch.Tensor]:
        q = self.encode(x, y)
        z = self.reparameterize(q.mean, q.logvar)
        return self.decode(z, y), q, z

    def loss(
        self,
        x: torch.Tensor,
        y: torch.Tensor | None = None,
        beta: float = 1.0,
        generator: torch.Generator | None = None,
    ) -> LossParts:
        """Per-image recon, KL and recon + beta * KL, in nats, with one sample of z."""
        return self.loss_and_posterior(x, y, beta, generator)[0]

    def loss_and_posterior(
        self,
        x: torch.Tensor,
        y: torch.Tensor | None = None,
        beta: float = 1.0,
        generator: torch.Generator | None = None,
    ) -> tuple[LossParts, Posterior, torch.Tensor]:
        """`loss`, q(z|x) it was computed from and the KL per dimension of z (B, D) (for statistics
        per latent dimension and free bits)."""
        q = self.encode(x, y)
        z = q.sample(generator)
        recon = -self.log_likelihood(x, self.decode(z, y))
        kl, per_dim = self.kl_terms(q, z, generator)  # N(0, I): analytic, as losses.vae_loss computes it
        return LossParts(recon, kl, recon + beta * kl), q, per_dim

    # --- the prior p(z) --------------------------------------------------------------------------------

    @property
    def standard_prior(self) -> bool:
        """p(z) = N(0, I): the KL is analytic and splits by dimension."""
        return getattr(self.config, "prior", "normal") == "normal" and not getattr(self.config, "top_latent_dim", 0)

    @torch.no_grad()
    def start_pseudo_inputs(self, images: torch.Tensor) -> bool:
        """Set a VampPrior's pseudo-inputs to these training images (K of them), once: Tomczak &
        Welling found starting from data better than from noise, whose posteriors all look alike
        to an untrained encoder, so the mixture begins as one component. True if it did."""
        if self.config.prior != "vamp" or bool(self.pseudo_started):
            return False
        self.pseudo_logits.copy_(torch.logit(images.to(self.pseudo_logits).clamp(0.02, 0.98)))
        self.pseudo_started.fill_(1.0)
        return True

    def _vamp_components(self) -> tuple[torch.Tensor, torch.Tensor]:
        """The VampPrior's K components: the posterior of each pseudo-input, means and log-variances (K, D)."""
        q = self.encode(torch.sigmoid(self.pseudo_logits))
        return q.mean, q.logvar

    def _top(self, net: nn.Module, h: torch.Tensor) -> Posterior:
        mu, logvar = full_precision(net(h)).chunk(2, dim=1)
        return Posterior(mu, logvar)

    def prior_log_prob(self, z: torch.Tensor) -> torch.Tensor:
        """log p(z) per code, (B,): N(0, I), or the VampPrior's mixture log (1/K) sum_k q(z|u_k)
        (Tomczak & Welling, eq. 9). A two-level model's p(z) is an integral over z2 with no closed
        form: its bounds go through `importance_log_weights`."""
        if self.config.top_latent_dim:
            raise ValueError("a two-level VAE has no closed-form p(z); use importance_log_weights")
        if self.config.prior == "vamp":
            mean, logvar = self._vamp_components()
            log_components = log_normal(z.unsqueeze(1), mean.unsqueeze(0), logvar.unsqueeze(0))  # (B, K)
            return torch.logsumexp(log_components, 1) - math.log(len(mean))
        return -0.5 * (z.pow(2) + LOG_2PI).flatten(1).sum(-1)

    def kl_terms(
        self, q: Posterior, z: torch.Tensor, generator: torch.Generator | None = None
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """The KL term of the ELBO per image (B,) at the sample z ~ q(z|x), and per dimension of z (B, D).

        N(0, I): analytic. VampPrior: log q(z|x) - log p(z) at z (one-sample, as Tomczak & Welling
        train it); per dimension, the same against the prior's marginal in that dimension (a 1-D
        mixture; these do not add up to the whole, which also counts how the mixture ties the
        dimensions together). Two levels: KL(q(z|x) || p(z|z2)) per dimension, analytic at one
        z2 ~ q(z2|z), plus the top level's KL(q(z2|z) || N(0, I)) in the total."""
        if self.config.top_latent_dim:
            top = self._top(self.top_encoder, z)
            p = self._top(self.top_prior, top.sample(generator))
            per_dim = gaussian_kl_between(q.mean, q.logvar, p.mean, p.logvar)
            return per_dim.sum(1) + top.kl(), per_dim
        if self.config.prior == "vamp":
            mean, logvar = self._vamp_components()  # (K, D)
            log_q = -0.5 * (LOG_2PI + q.logvar + (z - q.mean).pow(2) * torch.exp(-q.logvar))  # (B, D)
            log_p = -0.5 * (LOG_2PI + logvar + (z.unsqueeze(1) - mean).pow(2) * torch.exp(-logvar))  # (B, K, D)
            kl = log_q.sum(1) - (torch.logsumexp(log_p.sum(2), 1) - math.log(len(mean)))
            return kl, log_q - (torch.logsumexp(log_p, 1) - math.log(len(mean)))
        per_dim = q.kl_per_dim()
        return per_dim.sum(1), per_dim

    @torch.no_grad()
    def sample_prior(self, n: int, generator: torch.Generator | None = None) -> torch.Tensor:
        """n codes z ~ p(z), (n, D) (a spatial latent: (n, D, h, w) at the training images' size), on the
        model's device; the noise from `generator` (on the CPU)."""
        device = next(self.parameters()).device
        if self.config.prior == "vamp":
            mean, logvar = self._vamp_components()
            k = torch.randint(len(mean), (n,), generator=generator).to(device)
            eps = torch.randn(n, self.latent_dim, generator=generator).to(device)
            return mean[k] + eps * torch.exp(0.5 * logvar[k])
        if self.config.top_latent_dim:
            z2 = torch.randn(n, self.config.top_latent_dim, generator=generator).to(device)
            p = self._top(self.top_prior, z2)
            return p.mean + torch.randn(n, self.latent_dim, generator=generator).to(device) * p.stddev
        return torch.randn(n, *self.latent_shape(), generator=generator).to(device)

    def importance_log_weights(
        self, x: torch.Tensor, y: torch.Tensor | None = None, k: int = 1, generator: torch.Generator | None = None
    ) -> tuple[torch.Tensor, torch.Tensor, Posterior]:
        """log w_i = log p(x|z_i) + log p(z_i) - log q(z_i|x) for k samples z_i ~ q(z|x) per image,
        (B, k), differentiable (reparameterized); also log p(x|z_i) (B, k) and q itself."""
        q = self.encode(x, y)
        batch = len(x)
        mu, logvar = q.mean.repeat_interleave(k, 0), q.logvar.repeat_interleave(k, 0)  # (B*k, D)
        z = self.reparameterize(mu, logvar, generator)
        yk = None if y is None or not self.cond_dim else torch.as_tensor(y).repeat_interleave(k, 0)
        log_px_z = self.log_likelihood(x.repeat_interleave(k, 0), self.decode(z, yk))
        if self.config.top_latent_dim:  # log p(z|z2) + log p(z2) - log q(z2|z) at one z2 ~ q(z2|z) per sample
            top = self._top(self.top_encoder, z)
            z2 = top.sample(generator)
            p = self._top(self.top_prior, z2)
            log_pz = log_normal(z, p.mean, p.logvar) - 0.5 * (z2.pow(2) + LOG_2PI).sum(1) - top.log_prob(z2)
        else:
            log_pz = self.prior_log_prob(z)
        log_w = log_px_z + log_pz - log_normal(z.flatten(1), mu.flatten(1), logvar.flatten(1))
        return log_w.view(batch, k), log_px_z.view(batch, k), q

    def iwae_loss(
        self, x: torch.Tensor, y: torch.Tensor | None = None, k: int = 5, generator: torch.Generator | None = None
    ) -> LossParts:
        """-L_k per image, the importance-weighted bound of Burda, Grosse & Salakhutdinov
        (arXiv:1509.00519, eq. 8), L_k = log (1/k) sum_i w_i; `recon` is -log p(x|z_1) of the first
        sample and `kl` the analytic KL of q, for the record."""
        log_w, log_px_z, q = self.importance_log_weights(x, y, k, generator)
        bound = torch.logsumexp(log_w, dim=1) - math.log(k)
        return LossParts(-log_px_z[:, 0], q.kl(), -bound)

    def log_likelihood(self, x: torch.Tensor, params: torch.Tensor) -> torch.Tensor:
        """log p(x|z) per image, (B,)."""
        return -reconstruction_nll(x, params, self.config.likelihood, self.sigma_log())

    def describe_likelihood(self) -> str:
        """One sentence for a page: what p(x|z) this model is scored with."""
        if self.config.likelihood == "bernoulli":
            return "scored as a Bernoulli per pixel (the decoder gives logits), inputs in [0, 1]"
        sigmas = ", ".join(f"{v:.3g}" for v in self.sigma_log().exp().tolist())
        kind = "learned" if self.config.likelihood == "gaussian-learned" else "fixed"
        return f"scored as a Gaussian, sigma {sigmas} per channel ({kind}), inputs in [0, 1]"

    def sigma_log(self) -> torch.Tensor | None:
        if self.config.likelihood == "bernoulli":
            return None
        return self.log_sigma.clamp(min=MIN_LOG_SIGMA)

    @torch.no_grad()
    def generate(self, z: torch.Tensor, y: torch.Tensor | None = None) -> torch.Tensor:
        """Images in [0, 1] decoded from latent vectors z (B, D)."""
        return self.mean_image(self.decode(z, y))

    @torch.no_grad()
    def reconstruct(self, x: torch.Tensor, y: torch.Tensor | None = None) -> torch.Tensor:
        """Images decoded from the posterior mean of x: deterministic."""
        return self.generate(self.encode(x, y).mean, y)

    def num_parameters(self) -> int:
        return sum(p.numel() for p in self.parameters())


def fit_to_data(config: ModelConfig, image_shape, class_names) -> ModelConfig:
    """A copy of `config` with the image shape and classes of a dataset filled in."""
    return dataclasses.replace(
        config, image_shape=list(image_shape), num_classes=len(class_names), class_names=list(class_names)
    )


def _values(layers: nn.Module, shape: tuple[int, ...]) -> tuple[int, tuple[int, ...]]:
    """The values the layers of a Sequential compute for one input of `shape` (no batch dimension),
    and the shape they end with: each layer's output shape follows from its own settings (the
    formulas of torch.nn's Conv2d and ConvTranspose2d), so nothing is run."""
    total = 0
    for layer in layers:
        if isinstance(layer, nn.Linear):
            shape = (layer.out_features,)
        elif isinstance(layer, (nn.Conv2d, nn.ConvTranspose2d)):
            sides = []
            for i, side in enumerate(shape[1:]):
                k, s, p, d = layer.kernel_size[i], layer.stride[i], layer.padding[i], layer.dilation[i]
                if isinstance(layer, nn.Conv2d):
                    sides.append((side + 2 * p - d * (k - 1) - 1) // s + 1)
                else:
                    sides.append((side - 1) * s - 2 * p + d * (k - 1) + layer.output_padding[i] + 1)
            shape = (layer.out_channels, *sides)
        elif isinstance(layer, nn.Upsample) and isinstance(layer.scale_factor, (int, float)):
            shape = (shape[0], *(int(side * layer.scale_factor) for side in shape[1:]))
        elif isinstance(layer, nn.Flatten):
            shape = (math.prod(shape),)
        elif isinstance(layer, nn.Unflatten):
            shape = tuple(layer.unflattened_size)
        elif not isinstance(layer, tuple(ACTIVATIONS.values())):  # a layer of unknown shape: no guess
            raise TypeError(f"no shape rule for {type(layer).__name__}")
        total += math.prod(shape)
    return total, shape


def model_size(config: ModelConfig) -> tuple[int, int]:
    """(parameters, values computed per image by the encoder and decoder) of the VAE `config`
    describes. The model is built on torch's meta device, where tensors have shapes but no memory,
    so nothing is allocated however large the config says; the values follow from each layer's
    settings (`_values`), the same as its outputs' sizes for one image."""
    with torch.device("meta"):  # thread-local: this thread's new tensors only
        model = VAE(config)
    try:
        encoded, _ = _values(model.encoder, tuple(config.image_shape))
        latent = model.latent_shape()
        decoded, _ = _values(model.decoder, (latent[0] + model.cond_dim, *latent[1:]))
        return model.num_parameters(), encoded + 2 * math.prod(latent) + decoded  # 2 latents: (mu, logvar)
    except TypeError:  # a registered architecture with other layers: one image through it on the meta device (slower)
        values = []
        model.eval()  # batch norms take one image
        with torch.device("meta"):
            hooks = [
                m.register_forward_hook(lambda module, inputs, out: values.append(out.numel()))
                for m in model.modules()
                if not list(m.children())
            ]
            with torch.no_grad():
                y = torch.zeros(1, dtype=torch.long) if model.cond_dim else None
                model.decode(model.encode(torch.zeros(1, *config.image_shape), y).mean, y)
            for hook in hooks:
                hook.remove()
        return model.num_parameters(), sum(values)


def check_model_size(config: ModelConfig, source: str = "model config") -> None:
    """ConfigError when the model would be larger than this app builds (MAX_PARAMETERS, MAX_ACTIVATIONS)."""
    parameters, values = model_size(config)
    if parameters > MAX_PARAMETERS:
        raise ConfigError(
            f"{source}: this model would have {parameters:,} parameters ({parameters * 4 / 2**30:.1f} GB), more "
            f"than the {MAX_PARAMETERS:,} vae-explorer builds; use fewer or narrower model.hidden_sizes or "
            "model.channels, or smaller images."
        )
    if values > MAX_ACTIVATIONS:
        raise ConfigError(
            f"{source}: this model would compute {values:,} values per image ({values * 4 / 2**20:,.0f} MB), more "
            f"than the {MAX_ACTIVATIONS:,} vae-explorer allows; use fewer model.channels or smaller images."
        )


def check_spatial_kind(model: ModelConfig, source: str = "model config") -> None:
    """A spatial latent has N(0, I) at every position: no labels, VampPrior or second level."""
    if model.architecture not in SPATIAL_ARCHITECTURES:
        return
    for key, on, fix in (
        ("model.conditional", model.conditional, "set it to false"),
        ("model.prior vamp", model.prior == "vamp", "set model.prior to normal"),
        ("model.top_latent_dim", model.top_latent_dim > 0, "set it to 0"),
    ):
        if on:
            raise ConfigError(
                f"{source}: model.architecture {model.architecture} has a latent map with the N(0, I) prior at "
                f"every position, without {key}; {fix}."
            )


def build_model(config: ModelConfig, seed: int | None = None) -> VAE:
    """A freshly initialised VAE for a complete `ModelConfig` (image_shape filled in).

    With `seed`, the initial weights depend on it alone (the global RNG is left as it was).
    """
    if config.architecture not in ARCHITECTURES:
        raise ConfigError(
            f"model.architecture {config.architecture!r} is unknown; use one of {', '.join(ARCHITECTURES)}."
        )
    if config.image_shape is None or len(config.image_shape) != 3:
        raise ConfigError(
            "model.image_shape must be [channels, height, width]; it is set from the dataset when training."
        )
    if config.conditional and not config.num_classes:
        raise ConfigError("model.conditional needs model.num_classes; it is set from the dataset when training.")
    from ..config import TrainConfig, check_model_kind

    check_model_kind(config, TrainConfig(), "model config")
    check_spatial_kind(config)
    check_model_size(config)  # before anything is allocated
    if seed is None:
        return VAE(config)
    with _SEEDED_INIT, torch.random.fork_rng(devices=[]):  # the global RNG is shared by every thread
        torch.manual_seed(seed)
        return VAE(config)
