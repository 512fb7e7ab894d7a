"""Test-set metrics of a trained VAE: the ELBO and its parts, KL per dimension, active units and
the importance-weighted bound, the ELBO-IWAE gap, and the Fréchet distance of samples.

All figures are per image in nats, averaged over the test set, computed with seeded samples so
that evaluating the same checkpoint twice gives the same numbers.
"""

from __future__ import annotations

import dataclasses
import math

import numpy as np
import torch

from ..data import Dataset
from ..latent import encode_means
from ..models import VAE, gaussian_kl
from ..training import average_loss

ACTIVE_UNIT_THRESHOLD = 0.01  # Burda et al.: a unit is active if Cov_x(E_q[z_u]) > 0.01


def kl_per_dimension(mu: torch.Tensor, logvar: torch.Tensor) -> torch.Tensor:
    """Mean KL to the prior of each latent dimension over a set of posteriors, (D,) nats."""
    return gaussian_kl(mu, logvar).mean(0)


def active_dimensions(mu: torch.Tensor, threshold: float = ACTIVE_UNIT_THRESHOLD) -> torch.Tensor:
    """Which dimensions' posterior means vary across the data (Burda et al.), (D,) bool."""
    if len(mu) < 2:  # one code cannot vary
        return torch.zeros(mu.shape[1], dtype=torch.bool)
    return mu.var(dim=0) > threshold


def active_units(mu: torch.Tensor, threshold: float = ACTIVE_UNIT_THRESHOLD) -> int:
    """Number of latent dimensions whose posterior mean varies across the data (Burda et al., 2016, sec. 5.2)."""
    return int(active_dimensions(mu, threshold).sum())


@torch.no_grad()
def importance_bounds(
    model: VAE, x: torch.Tensor, y: torch.Tensor | None = None, k: int = 100, generator: torch.Generator | None = None
) -> tuple[torch.Tensor, torch.Tensor]:
    """Two lower bounds on log p(x) per image from the same k samples z_i ~ q(z|x), each (B,):

    the ELBO estimated with k samples, mean_i log w_i, and the importance-weighted bound
    (Burda, Grosse & Salakhutdinov, arXiv:1509.00519, eq. 8)
        L_k(x) = log (1/k) sum_i w_i,  w_i = p(x, z_i) / q(z_i|x).
    L_k >= the ELBO for every image (Jensen), L_1 is the ELBO, and L_k rises towards log p(x)
    as k grows; log p(x) - ELBO = KL(q(z|x) || p(z|x)), so their gap shows how far the
    encoder's Gaussian is from the true posterior.
    """
    model.eval()
    log_w = model.importance_log_weights(x, y if model.cond_dim else None, k, generator)[0].double()  # (B, k)
    return log_w.mean(1), torch.logsumexp(log_w, dim=1) - math.log(k)


def iwae_log_likelihood(
    model: VAE, x: torch.Tensor, y: torch.Tensor | None = None, k: int = 100, generator: torch.Generator | None = None
) -> torch.Tensor:
    """The importance-weighted lower bound L_k on log p(x) per image, (B,) (see importance_bounds)."""
    return importance_bounds(model, x, y, k, generator)[1]


@torch.no_grad()
def neg_elbo_per_image(
    model: VAE, x: torch.Tensor, y: torch.Tensor | None = None, seed: int = 0, batch_size: int = 1000
) -> torch.Tensor:
    """-ELBO of each image, (N,) nats: reconstruction at one z ~ q(z|x) plus the KL, the noise from a CPU
    generator seeded `seed` (as `average_loss` draws it, so their mean is its neg-ELBO)."""
    model.eval()
    device = next(model.parameters()).device
    generator = torch.Generator().manual_seed(seed)
    parts = []
    for start in range(0, len(x), batch_size):
        xb = x[start : start + batch_size].to(device)
        yb = None if y is None or not model.cond_dim else y[start : start + batch_size].to(device)
        loss = model.loss_and_posterior(xb, yb, 1.0, generator)[0]
        parts.append((loss.recon + loss.kl).double().cpu())
    return torch.cat(parts) if parts else torch.zeros(0, dtype=torch.float64)


def first_test_images(data: Dataset, n: int | None) -> Dataset:
    """`data` with only its first n test images (all of them when n is None or larger)."""
    if n is None or n >= len(data.test_x):
        return data
    factors = None if data.test_factors is None else data.test_factors[:n]
    return dataclasses.replace(data, test_x=data.test_x[:n], test_y=data.test_y[:n], test_factors=factors)


@torch.no_grad()
def sample_quality(model: VAE, data: Dataset, classifier, n: int = 5000, seed: int = 0) -> dict:
    """Fréchet distance between classifier features of n test images and of n samples from the
    prior (decoded to their mean image), and, as the floor a perfect model would reach, between
    n training and n test images."""
    from ..latent import sample_prior
    from .fid import frechet_distance

    n = min(n, len(data.test_x), len(data.train_x))
    real = classifier.embed(data.test_x[:n])
    if model.cond_dim:  # sample each class as often as the test set holds it
        labels = data.test_y[:n]
        z = model.sample_prior(n, torch.Generator().manual_seed(seed))
        fake = model.generate(z, labels).cpu()
    else:
        fake = sample_prior(model, n, seed=seed)
    return {
        "fid": frechet_distance(real, classifier.embed(fake)),
        "fid_floor": frechet_distance(real, classifier.embed(data.train_x[:n])),
        "fid_n": n,
    }


@torch.no_grad()
def basic_metrics(model: VAE, data: Dataset, beta: float = 1.0, seed: int = 0) -> tuple[dict, torch.Tensor]:
    """The test metrics every training ends by writing (a second or less): neg-ELBO, reconstruction,
    KL in all and per dimension (a spatial latent's: per channel), active units; and the posterior means
    (N, D) or (N, D, h, w) they came from."""
    model.eval()
    y = data.test_y if model.cond_dim else None
    elbo = average_loss(model, data.test_x, y, beta=1.0, seed=seed)
    mu, logvar = encode_means(model, data.test_x, y)
    if getattr(model, "spatial", False):  # per channel, over every image's every position (average_loss)
        kl_per_dim, active = elbo["kl_per_dim"], sum(v > ACTIVE_UNIT_THRESHOLD for v in elbo["mu_var"])
    else:
        kl_per_dim = kl_per_dimension(mu, logvar) if model.standard_prior else elbo["kl_per_dim"]
        active = active_units(mu)
    metrics = {
        "neg_elbo": elbo["recon"] + elbo["kl"],
        "recon": elbo["recon"],
        "kl": elbo["kl"],
        "kl_per_dim": [float(v) for v in kl_per_dim],
        "active_units": active,
        "n_test": len(data.test_x),
        "eval_seed": seed,
    }
    if beta != 1.0:
        metrics["beta_loss"] = elbo["recon"] + beta * elbo["kl"]
    return metrics, mu


@torch.no_grad()
def evaluate_with_gaps(
    model: VAE,
    data: Dataset,
    k: int = 100,
    beta: float = 1.0,
    seed: int = 0,
    batch_size: int = 500,
    classifier=None,
    classifier_info: dict | None = None,
    progress=None,
) -> tuple[dict, np.ndarray]:
    """Test metrics of `model` on `data.test_x` (the keys `evaluate` writes to metrics.json) and
    the per-image gap L_k - ELBO in nats (N,). `progress(fraction, what)`, when given, hears how far
    it is (0 to 1) and what it does: the IWAE bound takes most of the time, then sample quality."""
    said = progress or (lambda fraction, what: None)
    device = next(model.parameters()).device
    said(0.0, "the ELBO and the posterior means")
    metrics, mu = basic_metrics(model, data, beta, seed)
    y = data.test_y if model.cond_dim else None
    generator = torch.Generator().manual_seed(seed)  # noise drawn on the CPU: the same figures on every device
    elbo_k, iwae = [], []
    chunk = max(1, batch_size * 10 // max(k, 1))  # about batch_size*10 decoded images at a time
    share = 0.8 if classifier is not None else 0.95  # of the time, roughly: what is left is FID and disentanglement
    for start in range(0, len(data.test_x), chunk):
        said(
            0.02 + share * start / len(data.test_x),
            f"the IWAE bound, images {start + 1:,} to "
            f"{min(start + chunk, len(data.test_x)):,} of {len(data.test_x):,}, {k} samples each",
        )
        xb = data.test_x[start : start + chunk].to(device)
        yb = None if y is None else y[start : start + chunk].to(device)
        lower, upper = importance_bounds(model, xb, yb, k, generator)
        elbo_k.append(lower.cpu())
        iwae.append(upper.cpu())
    gaps = (torch.cat(iwae) - torch.cat(elbo_k)).numpy()
    metrics.update({"iwae_nll": -float(torch.cat(iwae).mean()), "iwae_k": k, "elbo_iwae_gap": float(gaps.mean())})
    if classifier is not None:
        said(0.02 + share, "sample quality: the Fréchet distance of prior samples to test images")
        metrics.update(sample_quality(model, data, classifier, seed=seed))
        if classifier_info:
            metrics["fid_classifier"] = {key: classifier_info[key] for key in ("key", "test_accuracy", "epochs")}
    if data.test_factors is not None and model.latent_dim >= 2:  # known generative factors: disentanglement
        from .disentanglement import factor_vae_score, mig

        said(0.97, "disentanglement: MIG and the FactorVAE score")
        codes, factors = mu.numpy(), data.test_factors.numpy()
        metrics["mig"], per_factor = mig(codes, factors)
        metrics["mig_per_factor"] = dict(zip(data.factor_names, per_factor))
        metrics["factor_vae_score"] = factor_vae_score(codes, factors, seed=seed)
    said(1.0, "done")
    return metrics, gaps


def evaluate(
    model: VAE,
    data: Dataset,
    k: int = 100,
    beta: float = 1.0,
    seed: int = 0,
    batch_size: int = 500,
    classifier=None,
    classifier_info: dict | None = None,
) -> dict:
    """Test metrics of `model` on `data.test_x`; the keys that `evaluate` writes to metrics.json."""
    return evaluate_with_gaps(model, data, k, beta, seed, batch_size, classifier, classifier_info)[0]
