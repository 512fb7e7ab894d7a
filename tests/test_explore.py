import math

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


# --- what the pages are given, read back from a model whose pictures show z (probes.revealing_model) --------


def test_decode_keeps_the_order_of_z_and_the_class():
    from probes import revealed_z, revealing_model

    z = np.array([[0.5, -1.5, 2.0], [1.0, 0.0, -3.0]])
    assert revealed_z(decode(revealing_model(3), z), 3).numpy() == pytest.approx(z, abs=1e-5)
    conditional = revealing_model(3, conditional_classes=4)
    pictures = decode(conditional, z, label=2).reshape(2, -1)
    assert pictures[:, 3:].numpy() == pytest.approx(np.tile([0.5, 0.5, 0.55, 0.5], (2, 1)), abs=1e-6)


def test_reconstruction_rows_pair_each_image_with_its_own_reconstruction(tiny_run, tiny_data):
    model, _, _ = tiny_run
    x = tiny_data.test_x[10:16]
    rows = reconstruction_rows(model, x, tiny_data.test_y[10:16], per_row=4)
    own = torch.sigmoid(model.decoder(model.to_latent(model.encoder(x))[:, :2])).detach()  # (6, 1, 8, 8)
    assert torch.allclose(rows[4:8], own[:4], atol=1e-6) and torch.allclose(rows[10:12], own[4:6], atol=1e-6)


def test_encode_image_samples_spread_as_the_posterior(tiny_run, tiny_data):
    from probes import revealed_z, revealing_model

    model = revealing_model(2)
    with torch.no_grad():  # a posterior with sigma = (e^0.5, e^-1) whatever the image
        model.to_latent.weight.zero_()
        model.to_latent.bias.copy_(torch.tensor([0.5, -1.0, 1.0, -2.0]))
    encoding = encode_image(model, torch.zeros(1, 1, 2), samples=20_000)
    assert encoding.mean == pytest.approx([0.5, -1.0]) and encoding.stddev == pytest.approx([math.exp(0.5), 1 / math.e], rel=1e-5)
    z = revealed_z(encoding.samples, 2)
    assert z.mean(0).numpy() == pytest.approx([0.5, -1.0], abs=0.05)
    assert z.std(0).numpy() == pytest.approx([math.exp(0.5), 1 / math.e], rel=0.02)
    assert revealed_z(encoding.reconstruction, 2)[0].numpy() == pytest.approx([0.5, -1.0], abs=1e-5)  # from the mean


def test_encoding_distance_flags_codes_far_outside_the_prior():
    from vae_explorer.explore import Encoding

    def encoding(mean):
        return Encoding(torch.zeros(1), torch.zeros(1), np.array(mean), np.ones(4), torch.zeros(0))

    assert encoding([3.0, 4.0, 0.0, 0.0]).distance == pytest.approx(5.0)
    assert encoding([0.0, 5.9, 0.0, 0.0]).unusual is False  # the line is 3 sqrt(d) = 6
    assert encoding([0.0, 0.0, -6.1, 0.0]).unusual is True


def test_plane_grid_spans_the_plane_with_a_rising_upwards():
    from probes import revealed_z, revealing_model

    centre, directions = np.array([1.0, 0.0, -1.0]), np.array([[1.0, 0.0, 0.0], [0.0, 0.6, 0.8]])
    spread = np.array([0.5, 2.0])
    z = revealed_z(plane_grid(revealing_model(3), centre, directions, spread, 3, extent=1.0), 3).view(3, 3, 3).numpy()
    assert z[1, 1] == pytest.approx(centre, abs=1e-5)  # the middle cell is the centre
    assert z[0, 0] == pytest.approx(centre - 0.5 * directions[0] + 2.0 * directions[1], abs=1e-5)  # top left
    assert z[2, 2] == pytest.approx(centre + 0.5 * directions[0] - 2.0 * directions[1], abs=1e-5)  # bottom right


def test_interpolation_paths_are_linear_and_spherical_between_the_end_points():
    a, b = np.array([1.0, 0.5, -2.0]), np.array([0.3, 2.0, 1.0])
    paths = interpolation_paths(a, b, 5)
    assert paths["linear"][2] == pytest.approx((a + b) / 2, abs=1e-6)
    for path in paths.values():
        assert path[0] == pytest.approx(a, abs=1e-5) and path[-1] == pytest.approx(b, abs=1e-5)
    omega = math.acos(a @ b / (np.linalg.norm(a) * np.linalg.norm(b)))
    assert paths["slerp"][2] == pytest.approx((a + b) * math.sin(omega / 2) / math.sin(omega), abs=1e-5)


def test_corner_grid_and_centroids_by_hand():
    a, b, c, d = (np.array(v, dtype=float) for v in ([0, 0], [4, 0], [0, 2], [4, 6]))
    grid = corner_grid(a, b, c, d, 3).reshape(3, 3, 2)
    assert grid[0, 1] == pytest.approx([2, 0]) and grid[2, 1] == pytest.approx([2, 4]) and grid[1, 0] == pytest.approx([0, 1])
    assert grid[1, 1] == pytest.approx([2, 2]) and grid[1, 2] == pytest.approx([4, 3])
    mu = np.array([[1.0, 2.0], [3.0, -2.0], [5.0, 5.0], [-1.0, 0.0]])
    assert class_centroids(mu, np.array([1, 1, 0, 1]), 3) == pytest.approx(np.array([[5, 5], [1, 0], [0, 0]]))


def test_sweep_starts_from_the_given_point_and_runs_low_to_high():
    from probes import revealed_z, revealing_model

    start = np.array([0.5, -1.0, 2.0])
    z = revealed_z(sweep(revealing_model(3), [1], 4, start, low=-2.0, high=1.0), 3).numpy()
    assert z[:, 1] == pytest.approx([-2.0, -1.0, 0.0, 1.0], abs=1e-5)
    assert z[:, 0] == pytest.approx(np.full(4, 0.5), abs=1e-5) and z[:, 2] == pytest.approx(np.full(4, 2.0), abs=1e-5)
    assert revealed_z(sweep(revealing_model(3), [0], 3), 3).numpy()[:, 1:] == pytest.approx(np.zeros((3, 2)), abs=1e-5)


def test_grids_and_sweeps_of_a_conditional_model_keep_the_class_and_the_default_ranges():
    from probes import revealed_z, revealing_model

    model = revealing_model(2, conditional_classes=3)
    plane = plane_grid(model, np.zeros(2), np.eye(2), np.ones(2), 3, label=2).reshape(9, -1)
    assert plane[:, 2:].numpy() == pytest.approx(np.tile([0.5, 0.5, 0.55], (9, 1)), abs=1e-6)
    assert revealed_z(plane_grid(revealing_model(2), np.zeros(2), np.eye(2), np.ones(2), 3), 2)[0].numpy() == \
        pytest.approx([-2.5, 2.5], abs=1e-5)  # the default extent: 2.5 spreads each way
    swept = sweep(model, [0], 3, label=1).reshape(3, -1)
    assert swept[:, 2:].numpy() == pytest.approx(np.tile([0.5, 0.55, 0.5], (3, 1)), abs=1e-6)
    assert revealed_z(sweep(revealing_model(2), [0], 3), 2)[:, 0].numpy() == pytest.approx([-3.0, 0.0, 3.0], abs=1e-5)


def test_sweep_takes_a_float64_start_for_a_float32_model(tiny_run):
    model, _, _ = tiny_run
    start = np.array([0.25, -0.5])  # float64, as numpy gives it
    images = sweep(model, [1], 3, start)
    z = torch.tensor([[0.25, -3.0], [0.25, 0.0], [0.25, 3.0]])
    assert torch.allclose(images, torch.sigmoid(model.decoder(z)).detach(), atol=1e-6)


def test_corner_grid_away_from_the_origin():
    a, b, c, d = (np.array(v, dtype=float) for v in ([1, 1], [5, 1], [1, 3], [5, 7]))
    grid = corner_grid(a, b, c, d, 3)
    assert grid.shape == (9, 2)
    assert grid[1] == pytest.approx([3, 1]) and grid[3] == pytest.approx([1, 2]) and grid[4] == pytest.approx([3, 3])
