"""Models built by hand for tests, whose answers are known without the code under test.

`LinearGaussian`: a VAE with a linear decoder and a Gaussian likelihood, p(z) = N(0, I),
p(x|z) = N(Wz + b, sigma^2 I). Its marginal p(x) = N(b, WW^T + sigma^2 I) and its true posterior
are Gaussian in closed form (Bishop, PRML, section 12.2: probabilistic PCA). W's columns are
orthogonal, so the true posterior has a diagonal covariance and a VAE encoder can represent it
exactly.

`revealing_model`: a VAE whose decoder writes z into the picture (pixel j = 0.5 + z_j / 20), so
the picture a function returns tells which z it decoded.

`TINY_AUTOENCODER_KL`: the config of a diffusers AutoencoderKL small enough for a test (two blocks,
so a factor of 2; 4 latent channels), built with diffusers' own class as the reference.
"""

from __future__ import annotations

import math

import torch
from torch import nn

from vae_explorer.config import ModelConfig
from vae_explorer.models import VAE, build_model

LOG_2PI = math.log(2 * math.pi)
TINY_AUTOENCODER_KL = dict(
    block_out_channels=(8, 16),
    down_block_types=("DownEncoderBlock2D", "DownEncoderBlock2D"),
    up_block_types=("UpDecoderBlock2D", "UpDecoderBlock2D"),
    layers_per_block=1,
    norm_num_groups=4,
    latent_channels=4,
    sample_size=32,
)


class LinearGaussian:
    def __init__(self, scales=(2.0, 1.0, 0.3), image_shape=(1, 2, 3), sigma: float = 0.5, seed: int = 0):
        generator = torch.Generator().manual_seed(seed)
        self.image_shape, self.sigma = tuple(image_shape), sigma
        self.pixels, self.dim = math.prod(image_shape), len(scales)
        basis, _ = torch.linalg.qr(torch.randn(self.pixels, self.dim, generator=generator, dtype=torch.float64))
        self.scales = torch.tensor(scales, dtype=torch.float64)
        self.W = basis * self.scales  # (P, D), orthogonal columns of norms `scales`
        self.b = 0.5 * torch.randn(self.pixels, generator=generator, dtype=torch.float64)  # (P,)

    # --- closed forms ------------------------------------------------------------------------------
    def log_px(self, x: torch.Tensor) -> torch.Tensor:
        """log p(x) per image, (B,), from the marginal N(b, WW^T + sigma^2 I)."""
        covariance = self.W @ self.W.T + self.sigma**2 * torch.eye(self.pixels, dtype=torch.float64)
        return torch.distributions.MultivariateNormal(self.b, covariance).log_prob(x.flatten(1))

    def posterior(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """The true p(z|x) = N(mean, diag(var)): var = 1 / (1 + s^2 / sigma^2), mean = var W^T (x - b) / sigma^2."""
        var = 1.0 / (1.0 + self.scales**2 / self.sigma**2)  # (D,)
        mean = (x.flatten(1) - self.b) @ self.W * var / self.sigma**2  # (B, D)
        return mean, var.expand_as(mean)

    def elbo(self, x: torch.Tensor, mean: torch.Tensor, var: torch.Tensor) -> torch.Tensor:
        """E_q[log p(x|z)] - KL(q || p(z)) for q = N(mean, diag(var)), per image, in closed form."""
        residual = x.flatten(1) - mean @ self.W.T - self.b  # (B, P)
        spread = (var * self.scales**2).sum(1)  # tr(W diag(var) W^T)
        expected_log_lik = -0.5 * self.pixels * (LOG_2PI + 2 * math.log(self.sigma)) - (
            residual.pow(2).sum(1) + spread
        ) / (2 * self.sigma**2)
        return expected_log_lik - self.kl_to_prior(mean, var)

    @staticmethod
    def kl_to_prior(mean: torch.Tensor, var: torch.Tensor) -> torch.Tensor:
        return 0.5 * (mean.pow(2) + var - 1 - var.log()).sum(1)

    def kl_to_posterior(self, x: torch.Tensor, mean: torch.Tensor, var: torch.Tensor) -> torch.Tensor:
        """KL(q || p(z|x)) between two diagonal Gaussians, per image."""
        true_mean, true_var = self.posterior(x)
        return 0.5 * ((var + (mean - true_mean).pow(2)) / true_var - 1 + true_var.log() - var.log()).sum(1)

    def sample(self, n: int, seed: int = 1) -> torch.Tensor:
        """n images drawn from the model: x = Wz + b + sigma * noise, (n, C, H, W)."""
        generator = torch.Generator().manual_seed(seed)
        z = torch.randn(n, self.dim, generator=generator, dtype=torch.float64)
        noise = torch.randn(n, self.pixels, generator=generator, dtype=torch.float64)
        return (z @ self.W.T + self.b + self.sigma * noise).view(n, *self.image_shape)

    # --- the same model as a vae_explorer VAE (float64) -------------------------------------------
    def vae(self, mean_scale: float = 1.0, mean_shift: float = 0.0, log_var_shift: float = 0.0) -> VAE:
        """A VAE with this decoder and a linear encoder. With the defaults, q(z|x) is the true
        posterior; otherwise its mean is scaled and shifted and its log-variance shifted."""
        config = ModelConfig(
            architecture="mlp",
            latent_dim=self.dim,
            hidden_sizes=[self.pixels],
            likelihood="gaussian",
            gaussian_sigma=self.sigma,
            image_shape=list(self.image_shape),
            num_classes=1,
        )
        model = build_model(config).double()
        var = 1.0 / (1.0 + self.scales**2 / self.sigma**2)
        head = nn.Linear(self.pixels, 2 * self.dim).double()
        decoder = nn.Linear(self.dim, self.pixels).double()
        with torch.no_grad():
            gain = (self.W * var / self.sigma**2).T  # (D, P): mean = gain (x - b)
            head.weight.zero_()
            head.weight[: self.dim] = mean_scale * gain
            head.bias[: self.dim] = -mean_scale * gain @ self.b + mean_shift
            head.bias[self.dim :] = var.log() + log_var_shift
            decoder.weight.copy_(self.W)
            decoder.bias.copy_(self.b)
        model.encoder = nn.Flatten()
        model.to_latent = head
        model.decoder = nn.Sequential(decoder, nn.Unflatten(1, self.image_shape))
        return model.eval()

    def q_of(self, model: VAE, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """The encoder's q(z|x) as (mean, var), read from its weights, not from `encode`."""
        head = model.to_latent
        out = x.flatten(1) @ head.weight.T.detach() + head.bias.detach()
        return out[:, : self.dim], out[:, self.dim :].exp()


class _Reveal(nn.Module):
    """z (B, D) -> images (B, 1, 1, D) with pixel j = 0.5 + z_j / 20 (z within +-10 stays in [0, 1])."""

    def forward(self, z: torch.Tensor) -> torch.Tensor:
        return (0.5 + z / 20).view(len(z), 1, 1, -1)


def revealing_model(latent_dim: int, conditional_classes: int = 0) -> VAE:
    """A VAE (Gaussian likelihood, so its mean image is the decoder's output) whose pictures show z.

    Conditional: the one-hot class is appended to z, so it shows in the last pixels too."""
    config = ModelConfig(
        architecture="mlp",
        latent_dim=latent_dim,
        hidden_sizes=[4],
        likelihood="gaussian",
        image_shape=[1, 1, latent_dim + conditional_classes],
        num_classes=max(conditional_classes, 1),
        conditional=bool(conditional_classes),
    )
    model = build_model(config, seed=0)
    model.decoder = _Reveal()
    return model.eval()


def revealed_z(images: torch.Tensor, latent_dim: int) -> torch.Tensor:
    """The z a revealing model decoded into `images` (B, 1, 1, D)."""
    return (images.reshape(len(images), -1)[:, :latent_dim] - 0.5) * 20
