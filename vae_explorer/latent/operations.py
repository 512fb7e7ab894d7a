"""Positions in latent space and the images they decode to: the one latent-operations API that the
app's pages, the command line and the notebook call.

Codes of a data set are posterior means, never samples. Inputs may be tensors or numpy arrays
(latent vectors (N, D), labels as ints); images come back as tensors (N, C, H, W) in [0, 1] on
the CPU, ready for `images.png_bytes`. Nothing here keeps gradients.

    mu, logvar = encode_means(model, x)               # (N, D) each
    images = generate(model, z, label=None)           # the mean of p(x|z) for each z
    grid = manifold_grid(model, 20)                   # 1-D or 2-D models: the whole manifold
    path = interpolate(z0, z1, 10, "slerp")           # (10, D)
    rows = traverse(model, dims=[0, 3], steps=9)      # each dimension swept from -3 to +3
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch

from ..models import VAE


def _device(model: VAE) -> torch.device:
    return next(model.parameters()).device


def _as_z(model: VAE, z) -> torch.Tensor:
    """Latent vectors (N, D) as float32 on the model's device, from a tensor, an array or a list."""
    return torch.as_tensor(np.asarray(z, dtype=np.float32)).reshape(-1, model.latent_dim).to(_device(model))


@torch.no_grad()
def encode_means(
    model: VAE, x: torch.Tensor, y: torch.Tensor | None = None, batch_size: int = 2000
) -> tuple[torch.Tensor, torch.Tensor]:
    """Posterior means and log-variances of a set of images: two (N, D) tensors on the CPU."""
    model.eval()
    mus, logvars = [], []
    for start in range(0, len(x), batch_size):
        yb = None if y is None or not model.cond_dim else y[start : start + batch_size].to(_device(model))
        q = model.encode(x[start : start + batch_size].to(_device(model)), yb)
        mus.append(q.mean.cpu())
        logvars.append(q.logvar.cpu())
    return torch.cat(mus), torch.cat(logvars)


def class_labels(model: VAE, label: int | None, n: int) -> torch.Tensor | None:
    """The labels a conditional model decodes n vectors with (None for an unconditional one)."""
    if not model.cond_dim:
        return None
    if label is None:  # no class asked for: cycle through all of them
        return torch.arange(n, device=_device(model)) % model.cond_dim
    return torch.full((n,), label, dtype=torch.long, device=_device(model))


@torch.inference_mode()
def generate(model: VAE, z, label: int | None = None) -> torch.Tensor:
    """Images decoded from latent vectors z (N, D), for class `label` of a conditional model (0 if None)."""
    z = _as_z(model, z)
    return model.generate(z, class_labels(model, int(label or 0), len(z))).cpu()


@torch.no_grad()
def sample_prior(model: VAE, n: int, label: int | None = None, seed: int = 0) -> torch.Tensor:
    """n images decoded from z ~ p(z) (N(0, I), or the model's own prior), (n, C, H, W); `label`
    picks the class of a conditional model (None cycles through the classes)."""
    z = model.sample_prior(n, torch.Generator().manual_seed(seed))
    return model.generate(z, class_labels(model, label, n)).cpu()


@torch.no_grad()
def vamp_components(model: VAE, n: int | None = None) -> tuple[torch.Tensor, torch.Tensor]:
    """A VampPrior's first n pseudo-inputs u_k (the images the prior is made of, (n, C, H, W) in
    [0, 1]) and the decodes of their posteriors' means, the centre of each mixture component."""
    u = torch.sigmoid(model.pseudo_logits[:n])
    return u.cpu(), model.generate(model.encode(u).mean).cpu()


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


def interpolate(z0, z1, steps: int, method: str = "linear") -> torch.Tensor:
    """Points from z0 to z1 (both (D,)), (steps, D); "linear" or "slerp" (spherical, Shoemake 1985)."""
    return interpolation_at(z0, z1, torch.linspace(0.0, 1.0, steps), method)


def interpolation_at(z0, z1, t, method: str = "linear") -> torch.Tensor:
    """The points at fractions t (a number or (T,)) of the way from z0 to z1, (T, D)."""
    z0, z1 = torch.as_tensor(np.asarray(z0, np.float32)), torch.as_tensor(np.asarray(z1, np.float32))
    t = torch.as_tensor(t, dtype=torch.float32).reshape(-1, 1)  # (T, 1)
    if method == "linear":
        return (1 - t) * z0 + t * z1
    if method != "slerp":
        raise ValueError(f"unknown interpolation method {method!r}; use linear or slerp")
    cos = torch.dot(z0, z1) / (z0.norm() * z1.norm()).clamp_min(1e-12)
    omega = torch.arccos(cos.clamp(-1.0, 1.0))  # rounding can put cos a hair outside [-1, 1]
    if (
        torch.sin(omega) < 1e-4
    ):  # (nearly) parallel, where slerp is the line, or opposite, where no great circle is the one
        return (1 - t) * z0 + t * z1
    return (torch.sin((1 - t) * omega) * z0 + torch.sin(t * omega) * z1) / torch.sin(omega)


def interpolation_paths(z_a, z_b, steps: int) -> dict[str, np.ndarray]:
    """The linear and the spherical path from z_a to z_b, each (steps, D)."""
    return {method: interpolate(z_a, z_b, steps, method).numpy() for method in ("linear", "slerp")}


@torch.no_grad()
def traverse(
    model: VAE,
    dims: list[int],
    steps: int = 9,
    start=None,
    label: int | None = None,
    low: float = -3.0,
    high: float = 3.0,
) -> torch.Tensor:
    """Each of `dims` in turn swept over `steps` values from low to high, the other coordinates
    held at `start` (zeros by default): one row per dimension, (len(dims) * steps, C, H, W)."""
    z = torch.zeros(model.latent_dim) if start is None else _as_z(model, start)[0].cpu()
    values = torch.linspace(low, high, steps)
    rows = []
    for d in dims:
        zs = z.repeat(steps, 1)  # (steps, D)
        zs[:, d] = values
        rows.append(zs)
    zs = torch.cat(rows).to(_device(model))
    return model.generate(zs, class_labels(model, label, len(zs))).cpu()


def traversal_frames(images: torch.Tensor, rows: int, steps: int) -> torch.Tensor:
    """Turn a traversal grid (rows * steps, C, H, W) into `steps` frames with every row side by side."""
    frames = images.view(rows, steps, *images.shape[1:]).transpose(0, 1)  # (steps, rows, C, H, W)
    return torch.stack([torch.cat(list(frame), dim=-1) for frame in frames])


def plane_grid(
    model: VAE,
    centre: np.ndarray,
    directions: np.ndarray,
    spread: np.ndarray,
    side: int,
    label: int | None = None,
    extent: float = 2.5,
) -> torch.Tensor:
    """A side x side grid over the plane centre + a*spread[0]*directions[0] + b*spread[1]*directions[1],
    a and b from -extent to +extent; columns vary a, rows b (top = high)."""
    steps = np.linspace(-extent, extent, side)
    a, b = np.meshgrid(steps, steps[::-1], indexing="xy")
    z = centre + a.reshape(-1, 1) * spread[0] * directions[0] + b.reshape(-1, 1) * spread[1] * directions[1]
    return generate(model, z, label)


def corner_grid(z_a, z_b, z_c, z_d, side: int) -> np.ndarray:
    """Bilinear points between four corners (A top-left, B top-right, C bottom-left, D bottom-right): (side*side, D)."""
    s = np.linspace(0, 1, side)[:, None, None]
    t = np.linspace(0, 1, side)[None, :, None]
    grid = (1 - s) * ((1 - t) * z_a + t * z_b) + s * ((1 - t) * z_c + t * z_d)
    return grid.reshape(side * side, -1)


def class_centroids(mu: np.ndarray, labels: np.ndarray, classes: int) -> np.ndarray:
    """Mean latent vector of each class (zeros for a class with no example): (classes, D)."""
    return np.stack([mu[labels == k].mean(0) if (labels == k).any() else np.zeros(mu.shape[1]) for k in range(classes)])


def centroid_arithmetic(z: np.ndarray, centroids: np.ndarray, plus: int, minus: int, amount: float = 1.0) -> np.ndarray:
    """z moved along the direction between two classes: z + amount * (centroid[plus] - centroid[minus])."""
    return np.asarray(z, dtype=float) + amount * (centroids[plus] - centroids[minus])


def path_lengths(paths: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
    """The length |z| of every point of each interpolation path (name -> (steps,))."""
    return {name: np.linalg.norm(np.asarray(points, dtype=float), axis=1) for name, points in paths.items()}


@torch.inference_mode()
def reconstruction_rows(model: VAE, x: torch.Tensor, y: torch.Tensor | None, per_row: int) -> torch.Tensor:
    """Rows of `per_row` images alternating with rows of their reconstructions (from the posterior mean)."""
    recon = model.reconstruct(x, y if model.cond_dim else None)
    return torch.cat([torch.cat([x[i : i + per_row], recon[i : i + per_row]]) for i in range(0, len(x), per_row)])


@dataclass
class Encoding:
    image: torch.Tensor  # (1, C, H, W) the input as the model sees it
    reconstruction: torch.Tensor  # (1, C, H, W) decoded from the posterior mean
    mean: np.ndarray  # (D,) mu
    stddev: np.ndarray  # (D,) sigma
    samples: torch.Tensor  # (n, C, H, W) decoded from z ~ q(z|x)

    def strip(self) -> torch.Tensor:
        """Input, reconstruction and samples in one row, (2 + n, C, H, W)."""
        return torch.cat([self.image, self.reconstruction, self.samples])

    @property
    def distance(self) -> float:
        """|mu|, the distance of the code from the prior's centre."""
        return float(np.sqrt((self.mean**2).sum()))

    @property
    def unusual(self) -> bool:
        """Far beyond the prior's typical radius sqrt(D): the image looks unlike the training data."""
        return bool(self.distance > 3 * np.sqrt(len(self.mean)))


@torch.inference_mode()
def encode_image(
    model: VAE, image: torch.Tensor, label: int | None = None, samples: int = 6, seed: int = 0
) -> Encoding:
    """Everything the pages show about one image (C, H, W): q(z|x), its reconstruction and samples."""
    x = image.unsqueeze(0).to(_device(model))
    y = class_labels(model, int(label or 0), 1)
    q = model.encode(x, y)
    drawn = x[:0]
    if samples:
        eps = torch.randn((samples, model.latent_dim), generator=torch.Generator().manual_seed(seed)).to(x.device)
        z = q.mean + q.stddev * eps  # (samples, D), draws from q(z|x)
        drawn = model.generate(z, None if y is None else y.expand(samples))
    return Encoding(
        x.cpu(), model.generate(q.mean, y).cpu(), q.mean[0].cpu().numpy(), q.stddev[0].cpu().numpy(), drawn.cpu()
    )
