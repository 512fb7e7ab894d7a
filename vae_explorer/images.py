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


def png_bytes(images: torch.Tensor, nrow: int | None = None, min_cell: int = 28, padding: int = 2) -> bytes:
    """A grid of (N, C, H, W) images as PNG bytes (for downloads)."""
    import io

    buffer = io.BytesIO()
    image_grid(images, nrow, padding=padding, min_cell=min_cell).save(buffer, format="PNG")
    return buffer.getvalue()


def gif_bytes(frames: torch.Tensor, min_cell: int = 112, milliseconds: int = 120) -> bytes:
    """(N, C, H, W) frames as a looping animated GIF that plays forwards then back."""
    import io

    pictures = [image_grid(frame[None], 1, padding=0, min_cell=min_cell) for frame in frames]
    pictures = pictures + pictures[-2:0:-1]
    buffer = io.BytesIO()
    pictures[0].save(buffer, format="GIF", save_all=True, append_images=pictures[1:], duration=milliseconds, loop=0)
    return buffer.getvalue()


def upscale(image: np.ndarray, min_side: int = 160) -> np.ndarray:
    """Nearest-neighbour upscaling by a whole factor so small images show crisp pixels."""
    factor = max(1, math.ceil(min_side / max(image.shape[:2])))
    return image.repeat(factor, axis=0).repeat(factor, axis=1)


def array_png_bytes(image: np.ndarray, min_side: int = 224) -> bytes:
    """One uint8 image (H, W) or (H, W, 3) as PNG bytes, scaled up to at least `min_side` pixels."""
    import io

    buffer = io.BytesIO()
    Image.fromarray(upscale(image, min_side)).save(buffer, format="PNG")
    return buffer.getvalue()
