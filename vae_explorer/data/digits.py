"""digits: scikit-learn's bundled 8x8 handwritten digits, the embedded default (no download)."""

from __future__ import annotations

import numpy as np
import torch

from ..config import DataConfig
from .registry import Dataset, register_dataset, resize, split


@register_dataset("digits", "scikit-learn's 8x8 handwritten digits (1,797 images, 10 classes); bundled, no download")
def load_digits(config: DataConfig) -> Dataset:
    from sklearn.datasets import load_digits as sklearn_digits

    bunch = sklearn_digits()
    x = torch.from_numpy(bunch.images.astype(np.float32) / 16.0).unsqueeze(1)  # (1797, 1, 8, 8)
    y = torch.from_numpy(bunch.target.astype(np.int64))
    return split("digits", resize(x, config.image_size), y, [str(d) for d in range(10)], config)
