"""folder:PATH: any folder of images, one sub-folder per class or flat (one class)."""

from __future__ import annotations

import warnings
from pathlib import Path

import numpy as np
import torch

from ..config import DataConfig
from ..errors import DatasetError
from .registry import PREFIXED, Dataset, DatasetSpec, split

IMAGE_SUFFIXES = {".png", ".jpg", ".jpeg", ".bmp", ".gif", ".webp", ".tif", ".tiff"}


def _folder_path(config: DataConfig) -> Path:
    return Path(config.dataset[len("folder:"):]).expanduser()


def _list_images(folder: Path) -> list[Path]:
    return sorted(p for p in folder.iterdir() if p.is_file() and p.suffix.lower() in IMAGE_SUFFIXES)


def load_folder(config: DataConfig) -> Dataset:
    """Images from class sub-folders (label = sub-folder) or from one flat folder (one class)."""
    from PIL import Image, ImageOps, UnidentifiedImageError

    root = _folder_path(config)
    if not root.is_dir():
        raise DatasetError(f"image folder {root} does not exist; pass an existing folder as folder:PATH.")
    class_dirs = sorted(d for d in root.iterdir() if d.is_dir() and not d.name.startswith(".") and _list_images(d))
    groups = [(d.name, _list_images(d)) for d in class_dirs] if class_dirs else [(root.name or "images", _list_images(root))]
    size, mode = config.image_size or 32, "L" if config.channels == 1 else "RGB"
    images, labels, skipped = [], [], []
    for label, (_, paths) in enumerate(groups):
        for path in paths:
            try:
                with Image.open(path) as img:
                    img = ImageOps.exif_transpose(img).convert(mode)
                    img = ImageOps.fit(img, (size, size), Image.Resampling.LANCZOS)
            except (OSError, UnidentifiedImageError, ValueError, Image.DecompressionBombError):
                skipped.append(path.name)
                continue
            arr = np.asarray(img, dtype=np.float32) / 255.0
            images.append(arr[None] if arr.ndim == 2 else arr.transpose(2, 0, 1))
            labels.append(label)
    if skipped:
        warnings.warn(f"skipped {len(skipped)} unreadable file(s) in {root}, e.g. {skipped[0]}", stacklevel=2)
    if len(images) < 2:
        raise DatasetError(f"image folder {root} holds fewer than 2 readable images; add PNG or JPEG files (optionally in one sub-folder per class).")
    x = torch.from_numpy(np.stack(images))
    y = torch.tensor(labels, dtype=torch.int64)
    return split(f"folder:{root}", x, y, [name for name, _ in groups], config)


PREFIXED["folder:"] = DatasetSpec(
    "folder:PATH", "any folder of images (one sub-folder per class, or flat), resized to image_size",
    "pass an existing folder of images as folder:PATH.", load_folder,
    lambda config: str(_folder_path(config)) if _folder_path(config).is_dir() else None,
)
