"""Test-set metrics of a trained VAE: the ELBO and its parts, KL per dimension, active units and
the importance-weighted bound.

All figures are per image in nats, averaged over the test set, computed with seeded samples so
that evaluating the same checkpoint twice gives the same numbers.
"""

from __future__ import annotations

import math

import torch

from .data import Dataset
from .latent import encode_means
from .losses import gaussian_kl, log_normal
from .models import VAE
from .training import average_loss

ACTIVE_UNIT_THRESHOLD = 0.01  # Burda et al.: a unit is active if Cov_x(E_q[z_u]) > 0.01


def kl_per_dimension(mu: torch.Tensor, logvar: torch.Tensor) -> torch.Tensor:
    """Mean KL to the prior of each latent dimension over a set of posteriors, (D,) nats."""
    return gaussian_kl(mu, logvar).mean(0)


def active_dimensions(mu: torch.Tensor, threshold: float = ACTIVE_UNIT_THRESHOLD) -> torch.Tensor:
    """Which dimensions' posterior means vary across the data (Burda et al.), (D,) bool."""
    return mu.var(dim=0, unbiased=True) > threshold if len(mu) > 1 else torch.zeros(mu.shape[1], dtype=torch.bool)


def active_units(mu: torch.Tensor, threshold: float = ACTIVE_UNIT_THRESHOLD) -> int:
    """Number of latent dimensions whose posterior mean varies across the data (Burda et al., 2016, sec. 5.2)."""
    return int(active_dimensions(mu, threshold).sum())


@torch.no_grad()
def iwae_log_likelihood(model: VAE, x: torch.Tensor, y: torch.Tensor | None = None, k: int = 100,
                        generator: torch.Generator | None = None) -> torch.Tensor:
    """The importance-weighted lower bound on log p(x) per image, (B,).

    Burda, Grosse & Salakhutdinov, arXiv:1509.00519, eq. 8:
        L_k(x) = log (1/k) sum_i p(x, z_i) / q(z_i|x),  z_i ~ q(z|x).
    L_1 is the ELBO and L_k rises towards log p(x) as k grows.
    """
    model.eval()
    q = model.encode(x, y)
    batch, dim = q.mean.shape
    mu, logvar = q.mean.repeat_interleave(k, 0), q.logvar.repeat_interleave(k, 0)  # (B*k, D)
    z = model.reparameterize(mu, logvar, generator)
    yk = None if y is None or not model.cond_dim else y.repeat_interleave(k, 0)
    params = model.decode(z, yk)  # (B*k, C, H, W)
    log_px_z = model.log_likelihood(x.repeat_interleave(k, 0), params)
    log_pz = -0.5 * (z.pow(2) + math.log(2 * math.pi)).sum(1)
    log_qz = log_normal(z, mu, logvar)
    log_w = (log_px_z + log_pz - log_qz).view(batch, k)
    return torch.logsumexp(log_w, dim=1) - math.log(k)


@torch.no_grad()
def evaluate(model: VAE, data: Dataset, k: int = 100, beta: float = 1.0, seed: int = 0, batch_size: int = 500) -> dict:
    """Test metrics of `model` on `data.test_x`; the keys that `evaluate` writes to metrics.json."""
    device = next(model.parameters()).device
    model.eval()
    y = data.test_y if model.cond_dim else None
    elbo = average_loss(model, data.test_x, y, beta=1.0, seed=seed)
    mu, logvar = encode_means(model, data.test_x, y)
    kl_per_dim = kl_per_dimension(mu, logvar)
    generator = torch.Generator(device=device).manual_seed(seed)
    iwae_sum = 0.0
    chunk = max(1, batch_size * 10 // max(k, 1))  # about batch_size*10 decoded images at a time
    for start in range(0, len(data.test_x), chunk):
        xb = data.test_x[start: start + chunk].to(device)
        yb = None if y is None else y[start: start + chunk].to(device)
        iwae_sum += float(iwae_log_likelihood(model, xb, yb, k, generator).double().sum())
    metrics = {
        "neg_elbo": elbo["recon"] + elbo["kl"],
        "recon": elbo["recon"],
        "kl": elbo["kl"],
        "kl_per_dim": [float(v) for v in kl_per_dim],
        "active_units": active_units(mu),
        "iwae_nll": -iwae_sum / len(data.test_x),
        "iwae_k": k,
        "n_test": len(data.test_x),
        "eval_seed": seed,
    }
    if beta != 1.0:
        metrics["beta_loss"] = elbo["recon"] + beta * elbo["kl"]
    if data.test_factors is not None and model.latent_dim >= 2:  # known generative factors: disentanglement
        from .disentanglement import factor_vae_score, mig

        codes, factors = mu.numpy(), data.test_factors.numpy()
        metrics["mig"], per_factor = mig(codes, factors)
        metrics["mig_per_factor"] = dict(zip(data.factor_names, per_factor))
        metrics["factor_vae_score"] = factor_vae_score(codes, factors, seed=seed)
    return metrics
