"""photos: tiles of scikit-image's colour sample photographs, each tile the photo's own pixels (read
here with scikit-image itself), the bottom band of each photo held out, the training tiles overlapping
and mirrored."""

import importlib.util

import numpy as np
import pytest
import torch
from conftest import require

from vae_explorer.config import DataConfig
from vae_explorer.data import load_dataset
from vae_explorer.data.photos import tiles


@pytest.fixture(scope="module")
def photos():
    require(importlib.util.find_spec("skimage") is not None, "scikit-image (pip install -r requirements.txt)")
    return load_dataset(DataConfig(dataset="photos", channels=3, image_size=32))


def test_tiles_are_squares_of_the_image_row_by_row():
    image = np.arange(5 * 7 * 3).reshape(5, 7, 3)
    cut = tiles(image, 2)  # 2 rows x 3 columns of 2x2 tiles; the last row and column left out
    assert cut.shape == (6, 3, 2, 2)
    np.testing.assert_array_equal(cut[4], image[2:4, 2:4].transpose(2, 0, 1))
    assert tiles(image, 2, 1).shape == (4 * 6, 3, 2, 2)  # every pixel: overlapping
    assert tiles(image, 6).shape == (0, 3, 6, 6)


def test_the_astronaut_s_bottom_band_is_held_out_and_the_rest_trains(photos):
    """Photo 0 at full size (512 x 512, 32-pixel tiles, test_fraction 0.2): the band is the bottom 96
    rows (3 tile rows, 0.2 x 512 rounded to tiles), 3 x 16 side-by-side test tiles; above it, tiles every
    16 pixels train, each also mirrored. Every one is the photo's own pixels, read here by scikit-image."""
    import skimage.data

    astronaut = skimage.data.astronaut().astype(np.float32) / 255  # (512, 512, 3)
    test = photos.test_x[photos.test_y == 0]
    expected_test = [astronaut[416 + 32 * i : 448 + 32 * i, 32 * j : 32 * j + 32] for i in range(3) for j in range(16)]
    np.testing.assert_allclose(test[:48].numpy(), np.stack(expected_test).transpose(0, 3, 1, 2), atol=1e-7)
    n = len(photos.train_x) // 2
    train = photos.train_x[:n][photos.train_y[:n] == 0]
    expected_train = [astronaut[t : t + 32, s : s + 32] for t in range(0, 416 - 31, 16) for s in range(0, 512 - 31, 16)]
    assert len(expected_train) == 25 * 31
    np.testing.assert_allclose(
        train[: len(expected_train)].numpy(), np.stack(expected_train).transpose(0, 3, 1, 2), atol=1e-7
    )
    assert photos.class_names[0] == "astronaut" and photos.image_shape == (3, 32, 32)


def test_the_training_tiles_come_mirrored(photos):
    n = len(photos.train_x) // 2
    torch.testing.assert_close(photos.train_x[n:], photos.train_x[:n].flip(-1))
    assert torch.equal(photos.train_y[n:], photos.train_y[:n])


def test_grey_photos_when_one_channel_is_asked_for(photos):
    grey = load_dataset(DataConfig(dataset="photos", channels=1, image_size=32))
    assert grey.image_shape == (1, 32, 32) and len(grey.test_x) == len(photos.test_x)
