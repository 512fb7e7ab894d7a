"""Image grids as PIL images and PNG files, with no torchvision needed."""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import torch
from PIL import Image


def to_uint8(images: torch.Tensor) -> np.ndarray:
    """(N, C, H, W) floats in [0, 1] -> (N, H, W, C) uint8."""
    return (images.detach().cpu().clamp(0, 1) * 255 + 0.5).to(torch.uint8).permute(0, 2, 3, 1).numpy()


def image_grid(images: torch.Tensor, nrow: int | None = None, padding: int = 2, min_cell: int = 0,
               background: int = 255) -> Image.Image:
    """Tile (N, C, H, W) images into one picture, `nrow` per row (default: a square-ish grid).

    `min_cell` scales each image up (nearest neighbour, whole factors) until its side is at least
    that many pixels, so 8x8 digits stay visible.
    """
    n, c, h, w = images.shape
    nrow = nrow or math.ceil(math.sqrt(n))
    rows = math.ceil(n / nrow)
    scale = max(1, math.ceil(min_cell / max(h, w))) if min_cell else 1
    tiles = to_uint8(images)
    if scale > 1:
        tiles = tiles.repeat(scale, axis=1).repeat(scale, axis=2)
    th, tw = h * scale, w * scale
    canvas = np.full((rows * th + (rows + 1) * padding, nrow * tw + (nrow + 1) * padding, c), background, dtype=np.uint8)
    for i, tile in enumerate(tiles):
        r, col = divmod(i, nrow)
        top, left = padding + r * (th + padding), padding + col * (tw + padding)
        canvas[top: top + th, left: left + tw] = tile
    return Image.fromarray(canvas[..., 0] if c == 1 else canvas)


def save_image_grid(images: torch.Tensor, path: str | Path, nrow: int | None = None, min_cell: int = 28) -> Path:
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    image_grid(images, nrow, min_cell=min_cell).save(path, format="PNG")
    return path
