"""photos: square tiles cut from the colour photographs scikit-image ships (an astronaut, a cat, a
cup of coffee, a rocket, the Hubble deep field, a stained tissue sample, a motorcycle), for a
spatial-latent VAE to learn what photos look like. No download: the files come with scikit-image
(`pip install scikit-image`).

Each photo, at its own size and at half of it, is cut into image_size x image_size tiles (64 by
default). The bottom band of each (data.test_fraction of its rows, at least one tile) gives the test
tiles, side by side; the rest gives the training tiles, every half tile, so they overlap, and each
also mirrored left to right. No pixel of a test tile is in a training tile. The class of a tile is
the photo it came from. With data.channels 1 the photos are made grey.
"""

from __future__ import annotations

import importlib.util
from pathlib import Path

import numpy as np
import torch

from ..config import DataConfig
from ..errors import DatasetError
from .registry import Dataset, register_dataset

PHOTOS = (
    "astronaut.png",
    "chelsea.png",
    "coffee.png",
    "rocket.jpg",
    "hubble_deep_field.jpg",
    "ihc.png",
    "motorcycle_left.png",
)
DEFAULT_SIDE = 64
HOW_TO_GET = "the photos dataset comes with scikit-image; run `pip install scikit-image`."


def photos_folder(config: DataConfig | None = None) -> str | None:
    """Where scikit-image keeps its sample photos, or None when it is not installed."""
    spec = importlib.util.find_spec("skimage")
    if spec is None or not spec.submodule_search_locations:
        return None
    folder = Path(next(iter(spec.submodule_search_locations))) / "data"
    return str(folder) if (folder / PHOTOS[0]).is_file() else None


def tiles(image: np.ndarray, side: int, stride: int | None = None) -> np.ndarray:
    """The side x side tiles of an image (H, W, C) every `stride` pixels (default: side by side), row by
    row: (N, C, side, side)."""
    stride = stride or side
    starts = [
        (top, left)
        for top in range(0, image.shape[0] - side + 1, stride)
        for left in range(0, image.shape[1] - side + 1, stride)
    ]
    if not starts:
        return np.zeros((0, image.shape[2], side, side), dtype=image.dtype)
    return np.stack([image[top : top + side, left : left + side].transpose(2, 0, 1) for top, left in starts])


@register_dataset(
    "photos",
    "tiles of the 7 colour photos scikit-image ships (64 x 64, at two scales; the bottom of each held out); no download",
    HOW_TO_GET,
    locate=photos_folder,
)
def load_photos(config: DataConfig) -> Dataset:
    from PIL import Image

    folder = photos_folder(config)
    if folder is None:
        raise DatasetError(HOW_TO_GET)
    side = config.image_size or DEFAULT_SIDE
    mode = "RGB" if config.channels == 3 else "L"
    train, test, train_y, test_y, names = [], [], [], [], []
    for name in PHOTOS:
        path = Path(folder) / name
        if not path.is_file():  # a scikit-image release without this photo: the others still make the set
            continue
        with Image.open(path) as opened:
            photo = opened.convert(mode)
        names.append(Path(name).stem)
        for scale in (1, 2):
            image = photo.resize((photo.width // scale, photo.height // scale), Image.Resampling.LANCZOS)
            pixels = np.asarray(image, dtype=np.uint8).reshape(image.height, image.width, -1)
            band = max(side, int(round(config.test_fraction * image.height / side)) * side)
            if image.height < side + band:  # too small to hold out a band and still train on it
                continue
            cut = image.height - band
            above, below = tiles(pixels[:cut], side, max(1, side // 2)), tiles(pixels[cut:], side)
            train.append(above)
            test.append(below)
            train_y += [len(names) - 1] * len(above)
            test_y += [len(names) - 1] * len(below)
    if not train or not sum(len(t) for t in train) or not sum(len(t) for t in test):
        raise DatasetError(f"data.image_size {side} is larger than the photos allow; use 64 or smaller.")
    as_float = lambda parts: torch.from_numpy(np.concatenate(parts)).float().div_(255)  # noqa: E731
    train_x, test_x = as_float(train), as_float(test)  # (N, C, side, side)
    labels = torch.tensor(train_y, dtype=torch.int64)
    return Dataset(
        "photos",
        torch.cat([train_x, train_x.flip(-1)]),
        torch.cat([labels, labels]),
        test_x,
        torch.tensor(test_y, dtype=torch.int64),
        names,
    )
