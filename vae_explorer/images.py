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


BORDERED_SIDE, BORDER_SCALE = 16, 6  # images this small, shown this large, get a line around each pixel


def enlarge(pixels: np.ndarray, scale: int) -> np.ndarray:
    """Nearest-neighbour upscaling of (..., H, W, C) uint8 by a whole `scale`. An image of at most
    16x16 pixels shown 6 or more times larger gets a one-pixel line along the bottom and right of
    each pixel (dark grey on dark pixels, darker than the pixel on light ones), so a projector shows
    8x8 digits as the pixels they are; the top-left of every block keeps the pixel's value."""
    if scale <= 1:
        return pixels
    h, w = pixels.shape[-3:-1]
    big = pixels.repeat(scale, axis=-3).repeat(scale, axis=-2)
    if max(h, w) <= BORDERED_SIDE and scale >= BORDER_SCALE:
        values = big.astype(np.int16)
        line = np.where(values >= 70, values * 55 // 100, np.minimum(values + 38, 255)).astype(np.uint8)
        edge = (np.arange(h * scale) % scale == scale - 1)[:, None] | (np.arange(w * scale) % scale == scale - 1)[
            None, :
        ]
        big = np.where(edge[..., None], line, big)
    return big


def cell_side(side: int, at_least: int = 28) -> int:
    """The shown side of an image `side` pixels across in a grid: at least `at_least`, and for an
    image small enough to have its pixels outlined (see `enlarge`), large enough that they are."""
    return max(at_least, BORDER_SCALE * side) if side <= BORDERED_SIDE else at_least


def image_grid(
    images: torch.Tensor, nrow: int | None = None, padding: int = 2, min_cell: int = 0, background: int = 255
) -> Image.Image:
    """Tile (N, C, H, W) images into one picture, `nrow` per row (default: a square-ish grid).

    `min_cell` scales each image up (nearest neighbour, whole factors) until its side is at least
    that many pixels, so 8x8 digits stay visible (with their pixels outlined: see `enlarge`).
    """
    n, c, h, w = images.shape
    nrow = nrow or math.ceil(math.sqrt(n))
    rows = math.ceil(n / nrow)
    scale = max(1, math.ceil(min_cell / max(h, w))) if min_cell else 1
    tiles = enlarge(to_uint8(images), scale)
    th, tw = h * scale, w * scale
    canvas = np.full(
        (rows * th + (rows + 1) * padding, nrow * tw + (nrow + 1) * padding, c), background, dtype=np.uint8
    )
    for i, tile in enumerate(tiles):
        r, col = divmod(i, nrow)
        top, left = padding + r * (th + padding), padding + col * (tw + padding)
        canvas[top : top + th, left : left + tw] = tile
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


def _animation_frames(frames: torch.Tensor, min_cell: int, bounce: bool) -> list[Image.Image]:
    """(N, C, H, W) frames as pictures, forwards then (with `bounce`) back without repeating the ends."""
    pictures = [image_grid(frame[None], 1, padding=0, min_cell=min_cell) for frame in frames]
    return pictures + pictures[-2:0:-1] if bounce else pictures


def gif_bytes(frames: torch.Tensor, min_cell: int = 112, milliseconds: int = 120, bounce: bool = True) -> bytes:
    """(N, C, H, W) frames as a looping animated GIF that plays forwards then back."""
    import io

    pictures = _animation_frames(frames, min_cell, bounce)
    buffer = io.BytesIO()
    pictures[0].save(buffer, format="GIF", save_all=True, append_images=pictures[1:], duration=milliseconds, loop=0)
    return buffer.getvalue()


def mp4_bytes(frames: torch.Tensor, min_cell: int = 112, fps: float = 8.0, bounce: bool = True) -> bytes:
    """(N, C, H, W) frames as an H.264 MP4 (yuv420p, which slides and players take), forwards then
    back like the GIF. imageio's ffmpeg plugin (imageio-ffmpeg ships the binary) writes it; the
    picture is padded with black to a multiple of 16 pixels rather than resampled."""
    import imageio.v3 as iio

    pictures = [np.asarray(p.convert("RGB")) for p in _animation_frames(frames, min_cell, bounce)]
    h, w = pictures[0].shape[:2]
    H, W = -(-h // 16) * 16, -(-w // 16) * 16
    padded = np.zeros((len(pictures), H, W, 3), np.uint8)
    for i, picture in enumerate(pictures):
        padded[i, :h, :w] = picture
    return iio.imwrite(
        "<bytes>", padded, extension=".mp4", fps=fps, codec="libx264", macro_block_size=16, output_params=["-crf", "18"]
    )


def scatter_frames(frames: list[dict], colours: list[str], side: int = 480, dot: int = 3) -> torch.Tensor:
    """Each epoch's latent scatter (`frames`: dicts with "epoch", "scatter" (N, 2) and "labels" (N,))
    drawn as a picture on one fixed square of axes (the largest extent over all epochs, so motion
    is real, not rescaling), dots in their class's colour, "epoch N" in the corner: (E, 3, side,
    side) in [0, 1], for gif_bytes / mp4_bytes."""
    from PIL import ImageDraw, ImageFont

    every = np.concatenate([np.asarray(f["scatter"], dtype=float) for f in frames])
    span = np.abs(every).max(0) * 1.05 + 1e-6  # (2,)
    font = ImageFont.load_default(size=max(12, side // 24))
    pictures = []
    for frame in frames:
        picture = Image.new("RGB", (side, side), "white")
        draw = ImageDraw.Draw(picture)
        draw.line([(side / 2, 0), (side / 2, side)], fill=(225, 225, 225))
        draw.line([(0, side / 2), (side, side / 2)], fill=(225, 225, 225))
        points = np.asarray(frame["scatter"], dtype=float)
        x = (points[:, 0] / span[0] + 1) / 2 * (side - 1)
        y = (1 - (points[:, 1] / span[1] + 1) / 2) * (side - 1)
        for px, py, label in zip(x, y, np.asarray(frame["labels"])):
            draw.ellipse([px - dot, py - dot, px + dot, py + dot], fill=colours[int(label) % len(colours)])
        draw.text((8, 6), f"epoch {frame['epoch']}", fill=(40, 40, 40), font=font)
        pictures.append(np.asarray(picture))
    return torch.from_numpy(np.stack(pictures)).permute(0, 3, 1, 2).float() / 255.0


def upscale(image: np.ndarray, min_side: int = 160) -> np.ndarray:
    """Nearest-neighbour upscaling by a whole factor so small images show crisp pixels."""
    factor = max(1, math.ceil(min_side / max(image.shape[:2])))
    return enlarge(image[..., None], factor)[..., 0] if image.ndim == 2 else enlarge(image, factor)


def array_png_bytes(image: np.ndarray, min_side: int = 224) -> bytes:
    """One uint8 image (H, W) or (H, W, 3) as PNG bytes, scaled up to at least `min_side` pixels."""
    import io

    buffer = io.BytesIO()
    Image.fromarray(upscale(image, min_side)).save(buffer, format="PNG")
    return buffer.getvalue()
