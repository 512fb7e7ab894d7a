"""A dSprites-like dataset (Matthey et al. 2017) drawn procedurally, with its ground-truth factors.

Every combination of five factors is drawn once, so the factors are independent and uniform,
which is what disentanglement metrics (MIG, FactorVAE score) assume:

    shape (3) x scale (4) x rotation (8) x position x (8) x position y (8) = 6,144 images.

Rotations cover [0, 90 degrees): a square looks the same after a quarter turn, so every rotation
value gives a distinct image of every shape. Drawing is deterministic (no randomness at all);
the seed only enters through the train/test split.
"""

from __future__ import annotations

import numpy as np
import torch

from ..config import DataConfig
from .registry import Dataset, register_dataset, split

SHAPE_NAMES = ("square", "ellipse", "heart")
FACTOR_NAMES = ("shape", "scale", "rotation", "pos_x", "pos_y")
SCALES = np.linspace(0.5, 1.0, 4)  # times MAX_RADIUS
ROTATIONS = np.linspace(0.0, np.pi / 2, 8, endpoint=False)
POSITIONS = np.linspace(0.25, 0.75, 8)  # centre, as a fraction of the image side
MAX_RADIUS = 0.2  # as a fraction of the image side
SUPERSAMPLE = 3  # sub-pixels per pixel side, for anti-aliased edges


def _inside(shape: int, u: np.ndarray, v: np.ndarray) -> np.ndarray:
    """Whether shape-local points (u, v), in units of the shape's radius, are inside the shape."""
    if shape == 0:  # square
        return np.maximum(np.abs(u), np.abs(v)) <= 0.8
    if shape == 1:  # ellipse, elongated so that its rotation shows
        return u**2 + (v / 0.55) ** 2 <= 1.0
    # heart: (x^2 + y^2 - 1)^3 - x^2 y^3 <= 0, y pointing up, scaled to about the unit disc
    x, y = u * 1.15, -v * 1.15 + 0.1
    return (x**2 + y**2 - 1) ** 3 - x**2 * y**3 <= 0


def generate_shapes(size: int = 32) -> tuple[np.ndarray, np.ndarray, tuple[int, ...]]:
    """All factor combinations drawn at `size` x `size`.

    Returns images (N, size, size) float32 in [0, 1], factors (N, 5) int64 (the index of each
    factor's value, in FACTOR_NAMES order) and the number of values of each factor.
    """
    sizes = (len(SHAPE_NAMES), len(SCALES), len(ROTATIONS), len(POSITIONS), len(POSITIONS))
    factors = np.stack(np.meshgrid(*[np.arange(n) for n in sizes], indexing="ij"), axis=-1).reshape(-1, 5)
    # Sub-pixel centres in [0, 1]: (S*k,)
    k = SUPERSAMPLE
    coords = (np.arange(size * k, dtype=np.float32) + 0.5) / (size * k)
    py, px = np.meshgrid(coords, coords, indexing="ij")  # (S*k, S*k), y down
    images = np.empty((len(factors), size, size), dtype=np.float32)
    for start in range(0, len(factors), 256):
        chunk = factors[start : start + 256]
        radius = (SCALES[chunk[:, 1]] * MAX_RADIUS).astype(np.float32)[:, None, None]
        theta = ROTATIONS[chunk[:, 2]].astype(np.float32)[:, None, None]
        dx = px[None] - POSITIONS[chunk[:, 3]].astype(np.float32)[:, None, None]
        dy = py[None] - POSITIONS[chunk[:, 4]].astype(np.float32)[:, None, None]
        # Rotate the offset by -theta into the shape's own frame, in units of its radius.
        u = (np.cos(theta) * dx + np.sin(theta) * dy) / radius
        v = (-np.sin(theta) * dx + np.cos(theta) * dy) / radius
        mask = np.zeros(u.shape, dtype=np.float32)
        for shape in range(len(SHAPE_NAMES)):
            rows = chunk[:, 0] == shape
            mask[rows] = _inside(shape, u[rows], v[rows])
        # Average k x k sub-pixels into one pixel: (B, S, k, S, k) -> (B, S, S)
        images[start : start + len(chunk)] = mask.reshape(len(chunk), size, k, size, k).mean(axis=(2, 4))
    return images, factors.astype(np.int64), sizes


@register_dataset(
    "shapes", "dSprites-like shapes with 5 known factors (shape, scale, rotation, x, y); generated, no download"
)
def load_shapes(config: DataConfig) -> Dataset:
    images, factors, sizes = generate_shapes(config.image_size or 32)
    x = torch.from_numpy(images).unsqueeze(1)  # (N, 1, S, S)
    f = torch.from_numpy(factors)
    return split(
        "shapes",
        x,
        f[:, 0].clone(),
        list(SHAPE_NAMES),
        config,
        factors=f,
        factor_names=list(FACTOR_NAMES),
        factor_sizes=list(sizes),
    )
