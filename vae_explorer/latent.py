"""Positions in latent space and the images they decode to: encoding a data set (posterior
means, never samples), samples from the prior, the 2-D manifold grid, interpolation and traversal.
"""

from __future__ import annotations

import torch

from .models import VAE


def _device(model: VAE) -> torch.device:
    return next(model.parameters()).device


@torch.no_grad()
def encode_means(model: VAE, x: torch.Tensor, y: torch.Tensor | None = None, batch_size: int = 2000) -> tuple[torch.Tensor, torch.Tensor]:
    """Posterior means and log-variances of a set of images: two (N, D) tensors on the CPU."""
    model.eval()
    mus, logvars = [], []
    for start in range(0, len(x), batch_size):
        yb = None if y is None or not model.cond_dim else y[start: start + batch_size].to(_device(model))
        q = model.encode(x[start: start + batch_size].to(_device(model)), yb)
        mus.append(q.mean.cpu())
        logvars.append(q.logvar.cpu())
    return torch.cat(mus), torch.cat(logvars)


@torch.no_grad()
def sample_prior(model: VAE, n: int, label: int | None = None, seed: int = 0) -> torch.Tensor:
    """n images decoded from z ~ N(0, I), (n, C, H, W) in [0, 1]; `label` picks the class of a conditional model."""
    generator = torch.Generator().manual_seed(seed)
    z = torch.randn(n, model.latent_dim, generator=generator).to(_device(model))
    return model.generate(z, class_labels(model, label, n)).cpu()


def class_labels(model: VAE, label: int | None, n: int) -> torch.Tensor | None:
    """The labels a conditional model decodes n vectors with (None for an unconditional one)."""
    if not model.cond_dim:
        return None
    if label is None:  # no class asked for: cycle through all of them
        return torch.arange(n, device=_device(model)) % model.cond_dim
    return torch.full((n,), label, dtype=torch.long, device=_device(model))


def normal_quantiles(n: int, low: float = 0.05, high: float = 0.95) -> torch.Tensor:
    """n evenly spaced probabilities mapped through the inverse CDF of N(0, 1)."""
    return torch.distributions.Normal(0.0, 1.0).icdf(torch.linspace(low, high, n))


@torch.no_grad()
def manifold_grid(model: VAE, n: int, label: int | None = None) -> torch.Tensor:
    """The whole learned manifold of a 1-D or 2-D latent space, decoded on a grid spaced by the
    inverse CDF of the Gaussian, so each cell covers equal prior mass (Kingma & Welling, figure 4).

    2-D: n x n images (n*n, C, H, W), row-major, z0 rising to the right and z1 upwards.
    1-D: n images (n, C, H, W), z0 rising to the right.
    """
    if model.latent_dim not in (1, 2):
        raise ValueError(f"the manifold grid needs a 1-D or 2-D latent space, this model has {model.latent_dim}")
    q = normal_quantiles(n)
    if model.latent_dim == 1:
        z = q.unsqueeze(1)
    else:
        z1, z2 = torch.meshgrid(q, q.flip(0), indexing="xy")  # (n, n): columns vary z1, rows z2 (top = high)
        z = torch.stack([z1.reshape(-1), z2.reshape(-1)], 1)
    z = z.to(_device(model))
    return model.generate(z, class_labels(model, label, len(z))).cpu()


def interpolate(z0: torch.Tensor, z1: torch.Tensor, steps: int, method: str = "linear") -> torch.Tensor:
    """Points from z0 to z1 (both (D,)), (steps, D); "linear" or "slerp" (spherical, Shoemake 1985)."""
    t = torch.linspace(0.0, 1.0, steps).unsqueeze(1)  # (steps, 1)
    if method == "linear":
        return (1 - t) * z0 + t * z1
    if method != "slerp":
        raise ValueError(f"unknown interpolation method {method!r}; use linear or slerp")
    cos = torch.dot(z0, z1) / (z0.norm() * z1.norm()).clamp_min(1e-12)
    omega = torch.arccos(cos.clamp(-1.0, 1.0))  # rounding can put cos a hair outside [-1, 1]
    if torch.sin(omega) < 1e-4:  # (nearly) parallel, where slerp is the line, or opposite, where no great circle is the one
        return (1 - t) * z0 + t * z1
    return (torch.sin((1 - t) * omega) * z0 + torch.sin(t * omega) * z1) / torch.sin(omega)


@torch.no_grad()
def traverse(model: VAE, z: torch.Tensor, dims: list[int], values: torch.Tensor, label: int | None = None) -> torch.Tensor:
    """Decode z with one dimension at a time set to each of `values`: (len(dims) * len(values), C, H, W)."""
    rows = []
    for d in dims:
        zs = z.repeat(len(values), 1)  # (V, D)
        zs[:, d] = values
        rows.append(zs)
    zs = torch.cat(rows).to(_device(model))
    return model.generate(zs, class_labels(model, label, len(zs))).cpu()
