import numpy as np
import pytest
import torch

from vae_explorer.explore import (class_centroids, corner_grid, decode, encode_image, interpolation_paths, plane_grid,
                                  reconstruction_rows, sweep, sweep_frames)
from vae_explorer.losses import kl_to_prior


def test_decode_and_reconstruction_rows(tiny_run, tiny_data):
    model, _, _ = tiny_run
    assert decode(model, np.zeros(2)).shape == (1, 1, 8, 8)
    rows = reconstruction_rows(model, tiny_data.test_x[:6], tiny_data.test_y[:6], per_row=4)
    assert rows.shape == (12, 1, 8, 8)
    assert torch.equal(rows[:4], tiny_data.test_x[:4]) and torch.equal(rows[8:10], tiny_data.test_x[4:6])


def test_encode_image(tiny_run, tiny_data):
    model, _, _ = tiny_run
    encoding = encode_image(model, tiny_data.test_x[0], samples=5)
    assert encoding.samples.shape == (5, 1, 8, 8) and encoding.mean.shape == encoding.stddev.shape == (2,)
    assert encoding.strip().shape == (7, 1, 8, 8)
    assert encode_image(model, tiny_data.test_x[0], samples=0).samples.shape[0] == 0
    assert np.allclose(encoding.mean, model.encode(tiny_data.test_x[:1]).mean[0].detach().numpy())


def test_paths_grids_and_centroids(tiny_run):
    model, _, _ = tiny_run
    a, b, c, d = (np.array(v, dtype=float) for v in ([0, 0], [1, 0], [0, 1], [1, 1]))
    grid = corner_grid(a, b, c, d, 3)
    assert np.allclose(grid[0], a) and np.allclose(grid[2], b) and np.allclose(grid[6], c) and np.allclose(grid[8], d)
    assert np.allclose(grid[4], [0.5, 0.5])
    paths = interpolation_paths(a + 1, b, 5)
    assert paths["linear"].shape == paths["slerp"].shape == (5, 2)
    centroids = class_centroids(np.array([[0.0, 0], [2, 2], [4, 4]]), np.array([0, 0, 2]), 3)
    assert np.allclose(centroids, [[1, 1], [0, 0], [4, 4]])
    assert plane_grid(model, np.zeros(2), np.eye(2), np.ones(2), 4).shape == (16, 1, 8, 8)


def test_sweep_and_its_frames(tiny_run):
    model, _, _ = tiny_run
    images = sweep(model, [1, 0], 5)
    assert images.shape == (10, 1, 8, 8)
    frames = sweep_frames(images, rows=2, steps=5)
    assert frames.shape == (5, 1, 8, 16)
    assert torch.equal(frames[3, :, :, :8], images[3]) and torch.equal(frames[3, :, :, 8:], images[8])


def test_kl_to_prior():
    assert kl_to_prior(0.0, 1.0) == pytest.approx(0.0, abs=1e-7)
    assert kl_to_prior(1.0, 0.6) == pytest.approx(0.5 * (1 + 0.36 - 1 - np.log(0.36)), rel=1e-5)
