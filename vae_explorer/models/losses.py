"""The VAE objective as pure functions, per image, in nats.

Kingma & Welling, "Auto-Encoding Variational Bayes" (arXiv:1312.6114), eq. 10:

    -ELBO(x) = E_q(z|x)[-log p(x|z)] + KL(q(z|x) || p(z))

The expectation is estimated with one sample of z (the reparameterization trick); the KL between
the diagonal Gaussian posterior and the N(0, I) prior is analytic (Appendix B). Every function
here returns one value per image (shape (B,)), summed over pixels or latent dimensions; taking the
mean over the batch is left to the caller.
"""

from __future__ import annotations

import math
from typing import NamedTuple

import torch
import torch.nn.functional as F

LOG_2PI = math.log(2 * math.pi)


def full_precision(t: torch.Tensor) -> torch.Tensor:
    """bfloat16 or float16 values (from layers under torch.autocast) as float32; others as they are.

    The loss, the KL and the posterior are computed at least in float32 under mixed precision."""
    return t.float() if t.dtype in (torch.bfloat16, torch.float16) else t


class LossParts(NamedTuple):
    recon: torch.Tensor  # (B,) -log p(x|z) in nats
    kl: torch.Tensor  # (B,) KL(q(z|x) || p(z)) in nats (N(0, I): analytic; other priors: one-sample estimates)
    total: torch.Tensor  # (B,) recon + beta * kl


def gaussian_kl(mu: torch.Tensor, logvar: torch.Tensor) -> torch.Tensor:
    """KL(N(mu, sigma^2) || N(0, 1)) per latent dimension, (B, D).

    Kingma & Welling, Appendix B: -KL = 1/2 * sum(1 + log sigma^2 - mu^2 - sigma^2).
    """
    return -0.5 * (1 + logvar - mu.pow(2) - logvar.exp())


def gaussian_kl_between(
    mu_q: torch.Tensor, logvar_q: torch.Tensor, mu_p: torch.Tensor, logvar_p: torch.Tensor
) -> torch.Tensor:
    """KL(N(mu_q, sigma_q^2) || N(mu_p, sigma_p^2)) per dimension, (B, D):
    1/2 * (log sigma_p^2 - log sigma_q^2 + (sigma_q^2 + (mu_q - mu_p)^2) / sigma_p^2 - 1)."""
    return 0.5 * (logvar_p - logvar_q + (logvar_q.exp() + (mu_q - mu_p).pow(2)) * torch.exp(-logvar_p) - 1)


def reconstruction_nll(
    x: torch.Tensor, params: torch.Tensor, likelihood: str, log_sigma: torch.Tensor | None = None
) -> torch.Tensor:
    """-log p(x|z) per image, (B,), for decoder output `params` shaped like x (B, C, H, W).

    bernoulli: `params` are logits; the cross-entropy also applies to grey values in [0, 1].
    gaussian / gaussian-learned: `params` are the means; `log_sigma` is (C,) log standard deviations.
    """
    params = full_precision(params)
    if likelihood == "bernoulli":
        per_pixel = F.binary_cross_entropy_with_logits(params, x, reduction="none")
    else:
        log_sigma = log_sigma.view(1, -1, 1, 1)  # (1, C, 1, 1)
        per_pixel = 0.5 * ((x - params) * torch.exp(-log_sigma)).pow(2) + log_sigma + 0.5 * LOG_2PI
    return per_pixel.flatten(1).sum(1)


def vae_loss(
    x: torch.Tensor,
    params: torch.Tensor,
    mu: torch.Tensor,
    logvar: torch.Tensor,
    likelihood: str,
    beta: float = 1.0,
    log_sigma: torch.Tensor | None = None,
) -> LossParts:
    """The beta-weighted negative ELBO per image: recon + beta * KL, each part in nats, (B,)."""
    recon = reconstruction_nll(x, params, likelihood, log_sigma)
    kl = gaussian_kl(mu, logvar).sum(1)
    return LossParts(recon, kl, recon + beta * kl)


def free_bits_loss(recon: torch.Tensor, kl_per_dim: torch.Tensor, beta: float, free_bits: float) -> LossParts:
    """recon + beta * sum_j max(lambda, KL_j) with KL_j the batch's mean KL of dimension j (Kingma et
    al. 2016, "Improved Variational Inference with Inverse Autoregressive Flow", eq. 15): a dimension
    whose KL is below lambda nats costs lambda, so the gradient stops pushing it to the prior.

    Per image: a dimension below its free bits counts lambda for every image, the others their own
    KL, so the batch mean of `total` is the objective exactly and has its gradient. `kl` is the
    true KL. Shapes: recon (B,), kl_per_dim (B, D)."""
    below = kl_per_dim.detach().mean(0) < free_bits  # (D,)
    charged = torch.where(below, torch.full_like(kl_per_dim, free_bits), kl_per_dim)
    return LossParts(recon, kl_per_dim.sum(1), recon + beta * charged.sum(1))


def log_normal(z: torch.Tensor, mu: torch.Tensor, logvar: torch.Tensor) -> torch.Tensor:
    """log N(z; mu, diag(exp(logvar))) summed over the last dimension."""
    return -0.5 * (LOG_2PI + logvar + (z - mu).pow(2) * torch.exp(-logvar)).sum(-1)


def kl_to_prior(mu: float, sigma: float) -> float:
    """KL(N(mu, sigma^2) || N(0, 1)) of one dimension, in nats."""
    return float(gaussian_kl(torch.tensor([mu]), torch.log(torch.tensor([sigma]) ** 2)).sum())
