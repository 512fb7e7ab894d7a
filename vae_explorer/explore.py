"""What the app's pages compute, so that a page only lays out widgets and pictures.

Inputs are plain numbers and numpy arrays (latent vectors, indices, labels); outputs are image
tensors (N, C, H, W) in [0, 1] ready for `images.png_bytes`, or numpy arrays for plots. Nothing
here keeps gradients.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch

from .latent import class_labels, interpolate, traverse
from .models import VAE


@torch.inference_mode()
def decode(model: VAE, z, label: int | None = None) -> torch.Tensor:
    """Images decoded from latent vectors z (N, D) (numpy or tensor), for class `label` if conditional."""
    z = torch.as_tensor(np.asarray(z, dtype=np.float32)).reshape(-1, model.latent_dim)
    return model.generate(z, class_labels(model, int(label or 0), len(z)))


@torch.inference_mode()
def reconstruction_rows(model: VAE, x: torch.Tensor, y: torch.Tensor | None, per_row: int) -> torch.Tensor:
    """Rows of `per_row` images alternating with rows of their reconstructions (from the posterior mean)."""
    recon = model.reconstruct(x, y if model.cond_dim else None)
    return torch.cat([torch.cat([x[i: i + per_row], recon[i: i + per_row]]) for i in range(0, len(x), per_row)])


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
def encode_image(model: VAE, image: torch.Tensor, label: int | None = None, samples: int = 6, seed: int = 0) -> Encoding:
    """Everything the pages show about one image (C, H, W): q(z|x), its reconstruction and samples."""
    x = image.unsqueeze(0)
    y = class_labels(model, int(label or 0), 1)
    q = model.encode(x, y)
    drawn = x[:0]
    if samples:
        eps = torch.randn((samples, model.latent_dim), generator=torch.Generator().manual_seed(seed))
        z = q.mean + q.stddev * eps  # (samples, D), draws from q(z|x)
        drawn = model.generate(z, None if y is None else y.expand(samples))
    return Encoding(x, model.generate(q.mean, y), q.mean[0].numpy(), q.stddev[0].numpy(), drawn)


def plane_grid(model: VAE, centre: np.ndarray, directions: np.ndarray, spread: np.ndarray, side: int,
               label: int | None = None, extent: float = 2.5) -> torch.Tensor:
    """A side x side grid over the plane centre + a*spread[0]*directions[0] + b*spread[1]*directions[1],
    a and b from -extent to +extent; columns vary a, rows b (top = high)."""
    steps = np.linspace(-extent, extent, side)
    a, b = np.meshgrid(steps, steps[::-1], indexing="xy")
    z = centre + a.reshape(-1, 1) * spread[0] * directions[0] + b.reshape(-1, 1) * spread[1] * directions[1]
    return decode(model, z, label)


def interpolation_paths(z_a: np.ndarray, z_b: np.ndarray, steps: int) -> dict[str, np.ndarray]:
    """The linear and the spherical path from z_a to z_b, each (steps, D)."""
    a, b = torch.from_numpy(np.asarray(z_a, np.float32)), torch.from_numpy(np.asarray(z_b, np.float32))
    return {method: interpolate(a, b, steps, method).numpy() for method in ("linear", "slerp")}


def corner_grid(z_a, z_b, z_c, z_d, side: int) -> np.ndarray:
    """Bilinear points between four corners (A top-left, B top-right, C bottom-left, D bottom-right): (side*side, D)."""
    s = np.linspace(0, 1, side)[:, None, None]
    t = np.linspace(0, 1, side)[None, :, None]
    grid = (1 - s) * ((1 - t) * z_a + t * z_b) + s * ((1 - t) * z_c + t * z_d)
    return grid.reshape(side * side, -1)


def class_centroids(mu: np.ndarray, labels: np.ndarray, classes: int) -> np.ndarray:
    """Mean latent vector of each class (zeros for a class with no example): (classes, D)."""
    return np.stack([mu[labels == k].mean(0) if (labels == k).any() else np.zeros(mu.shape[1]) for k in range(classes)])


def sweep(model: VAE, dims: list[int], steps: int, start: np.ndarray | None = None, label: int | None = None,
          low: float = -3.0, high: float = 3.0) -> torch.Tensor:
    """Traversal from `start` (zeros by default): one row per dimension, `steps` values from low to high."""
    z = torch.zeros(model.latent_dim) if start is None else torch.from_numpy(np.asarray(start, np.float32))
    return traverse(model, z, dims, torch.linspace(low, high, steps), label)


def sweep_frames(images: torch.Tensor, rows: int, steps: int) -> torch.Tensor:
    """Turn a traversal grid (rows * steps, C, H, W) into `steps` frames with every row side by side."""
    frames = images.view(rows, steps, *images.shape[1:]).transpose(0, 1)  # (steps, rows, C, H, W)
    return torch.stack([torch.cat(list(frame), dim=-1) for frame in frames])
