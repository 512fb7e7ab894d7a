"""Turn an uploaded picture into what a model expects: channels, size, polarity and centring.

    x = prepare_image(raw_bytes, image_shape=(1, 28, 28), invert="auto", center=True)  # (1, 28, 28)

MNIST-like models were trained on light strokes on a dark background, centred by their centre of
mass in a 20x20 box inside the 28x28 frame; a drawing on paper is the opposite polarity and
anywhere in the frame, so without this a reconstruction looks like noise.
"""

from __future__ import annotations

import io
import math
import struct

import numpy as np
import torch

from ..errors import VaeExplorerError

MAX_UPLOAD_BYTES = 20 * 2**20  # 20 MB, as server.maxUploadSize
MAX_PIXELS = 40_000_000  # decoded pixels allowed; refused before decoding above it (decompression bombs)


class ImageError(VaeExplorerError):
    """An uploaded file cannot be used as an image."""


def open_image(data: bytes, name: str = "the file"):
    """A PIL image of the first frame, upright (EXIF rotation applied), fully decoded."""
    from PIL import Image, ImageOps, UnidentifiedImageError

    if not data:
        raise ImageError(f"{name} is empty (0 bytes); upload a PNG, JPEG, BMP, WebP or GIF image.")
    if len(data) > MAX_UPLOAD_BYTES:
        size = math.ceil(len(data) / 2**20 * 10) / 10  # rounded up, so it never reads as equal to the limit
        raise ImageError(
            f"{name} is {size:.1f} MB, over the {MAX_UPLOAD_BYTES // 2**20} MB limit; upload a smaller image."
        )
    try:
        image = Image.open(io.BytesIO(data))
    except UnidentifiedImageError:
        raise ImageError(
            f"{name} is not an image this app can read; upload a PNG, JPEG, BMP, WebP or GIF image."
        ) from None
    except Image.DecompressionBombError:
        raise ImageError(
            f"{name} is too large to decode safely; upload an image under {MAX_PIXELS // 1_000_000} megapixels."
        ) from None
    except (
        OSError,
        ValueError,
        SyntaxError,
        EOFError,
        IndexError,
        struct.error,
    ):  # a format's reader gave up on its header
        raise ImageError(
            f"{name} is damaged or truncated and cannot be decoded; upload the image again or another one."
        ) from None
    width, height = image.size
    if width * height > MAX_PIXELS:  # checked from the header, before any pixel is decoded
        raise ImageError(
            f"{name} is {width}x{height} pixels, over the {MAX_PIXELS // 1_000_000} megapixel limit; upload a smaller image."
        )
    if width < 2 or height < 2:
        raise ImageError(f"{name} is only {width}x{height} pixels; upload a picture at least 8x8 pixels.")
    try:
        image.seek(0)  # the first frame of an animation
        image.load()
        image = ImageOps.exif_transpose(image)
    except (OSError, ValueError, Image.DecompressionBombError, EOFError, SyntaxError):
        raise ImageError(
            f"{name} is damaged or truncated and cannot be decoded; upload the image again or another one."
        ) from None
    return image


def standard_image(image):
    """An image of any mode as 8-bit L, RGB or P: transparency composited onto white (how a
    drawing with a transparent background looks), 16-bit and float greyscale stretched to 0-255.
    Uploads and image folders both go through it."""
    from PIL import Image

    if image.mode in ("RGBA", "LA") or (image.mode == "P" and "transparency" in image.info):
        rgba = image.convert("RGBA")
        background = Image.new("RGBA", rgba.size, (255, 255, 255, 255))
        return Image.alpha_composite(background, rgba).convert("RGB")
    if image.mode in ("I;16", "I;16B", "I;16L", "I", "F"):  # 16-bit or float greyscale
        arr = np.asarray(image, dtype=np.float64)
        span = arr.max() - arr.min()
        arr = (arr - arr.min()) / span * 255 if span > 0 else np.zeros_like(arr)
        return Image.fromarray(arr.astype(np.uint8))
    return image


PHOTO_MAX_PIXELS = 1024 * 1024  # a spatial VAE's activations for larger photos need tiling
PHOTO_TILED_MAX_PIXELS = 16_000_000  # tiled, memory holds one tile's activations; time grows with the pixels


def photo_image(
    data: bytes,
    multiple: int,
    name: str = "the file",
    max_pixels: int = PHOTO_MAX_PIXELS,
    size: tuple[int, int] | None = None,
) -> torch.Tensor:
    """An uploaded photo at its own resolution as (3, H, W) in [0, 1], cropped evenly to whole
    multiples of `multiple` (a spatial VAE's factor, 8 for Stable Diffusion's) on each side; with
    `size` (W, H), resized to exactly that instead (a second photo made to match a first)."""
    from PIL import Image

    image = standard_image(open_image(data, name)).convert("RGB")
    if size is not None:
        image = image.resize(size, Image.Resampling.LANCZOS)
    width, height = image.size
    if width * height > max_pixels:
        raise ImageError(
            f"{name} is {width}x{height} pixels; photos of up to {max_pixels:,} pixels ({max_pixels / 1e6:.2f} "
            "megapixels) go through the VAE here (larger ones need more memory than one request may use); upload a "
            "smaller photo or a crop."
        )
    if width < multiple or height < multiple:
        raise ImageError(f"{name} is only {width}x{height} pixels; upload a photo at least {multiple}x{multiple}.")
    keep_w, keep_h = width - width % multiple, height - height % multiple
    left, top = (width - keep_w) // 2, (height - keep_h) // 2
    image = image.crop((left, top, left + keep_w, top + keep_h))
    return torch.from_numpy(np.asarray(image, dtype=np.float32) / 255.0).permute(2, 0, 1).contiguous()


def prepare_image(
    data: bytes, image_shape, invert: str | bool = "auto", center: bool = True, name: str = "the file"
) -> torch.Tensor:
    """An uploaded image as a model input (C, H, W) in [0, 1].

    invert: True / False, or "auto": invert when the border is lighter than the middle
    (dark strokes on light paper), since the datasets have dark backgrounds.
    center: crop to the ink's bounding box, fit it in the inner 20/28 of the frame with its
    aspect kept, and shift its centre of mass to the middle, as MNIST was prepared.
    """
    channels, height, width = image_shape
    image = standard_image(open_image(data, name))
    image = image.convert("L" if channels == 1 else "RGB")
    arr = np.asarray(image, dtype=np.float32) / 255.0  # (h, w) or (h, w, 3)
    grey = arr if arr.ndim == 2 else arr.mean(axis=2)
    if invert == "auto":
        border = np.concatenate([grey[0], grey[-1], grey[:, 0], grey[:, -1]]).mean()
        invert = border > 0.5
    if invert:
        arr, grey = 1.0 - arr, 1.0 - grey
    if center:
        arr = _center_like_mnist(arr, grey, height, width)
    else:
        arr = _fit(arr, height, width)
    tensor = torch.from_numpy(np.ascontiguousarray(arr))
    tensor = tensor.unsqueeze(0) if tensor.dim() == 2 else tensor.permute(2, 0, 1)
    return tensor.clamp(0, 1).float()


def _resize(arr: np.ndarray, height: int, width: int) -> np.ndarray:
    from PIL import Image

    if arr.ndim == 2:
        return np.asarray(Image.fromarray(arr.astype(np.float32)).resize((width, height), Image.Resampling.LANCZOS))
    return np.stack([_resize(arr[..., c], height, width) for c in range(arr.shape[2])], axis=2)


def _fit(arr: np.ndarray, height: int, width: int) -> np.ndarray:
    """Resize keeping the aspect ratio, padding with black (the background)."""
    h, w = arr.shape[:2]
    scale = min(height / h, width / w)
    nh, nw = max(1, round(h * scale)), max(1, round(w * scale))
    small = _resize(arr, nh, nw)
    out = np.zeros((height, width) + arr.shape[2:], dtype=np.float32)
    top, left = (height - nh) // 2, (width - nw) // 2
    out[top : top + nh, left : left + nw] = small
    return out


def _center_like_mnist(arr: np.ndarray, grey: np.ndarray, height: int, width: int) -> np.ndarray:
    ink = grey > 0.1 * grey.max() if grey.max() > 0 else np.zeros_like(grey, dtype=bool)
    if not ink.any():
        return _fit(arr, height, width)
    rows, cols = np.where(ink.any(axis=1))[0], np.where(ink.any(axis=0))[0]
    arr = arr[rows[0] : rows[-1] + 1, cols[0] : cols[-1] + 1]
    box_h, box_w = max(1, round(height * 20 / 28)), max(1, round(width * 20 / 28))
    inner = _fit(arr, box_h, box_w)
    out = np.zeros((height, width) + arr.shape[2:], dtype=np.float32)
    top, left = (height - box_h) // 2, (width - box_w) // 2
    out[top : top + box_h, left : left + box_w] = inner
    mass = out if out.ndim == 2 else out.mean(axis=2)
    total = mass.sum()
    if total > 0:  # move the centre of mass to the middle of the frame
        ys, xs = np.indices(mass.shape)
        # the shift stays inside the margins, so no ink wraps round the edge
        dy = int(np.clip(round((height - 1) / 2 - (ys * mass).sum() / total), -top, height - box_h - top))
        dx = int(np.clip(round((width - 1) / 2 - (xs * mass).sum() / total), -left, width - box_w - left))
        out = np.roll(out, (dy, dx), axis=(0, 1))
    return out
