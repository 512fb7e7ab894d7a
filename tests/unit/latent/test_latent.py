"""Latent operations against formulas written out here: the decoded z is read back from the
pictures of a model whose decoder writes z into its pixels (probes.revealing_model)."""

import math

import numpy as np
import pytest
import torch
from probes import revealed_z, revealing_model
from scipy.stats import norm

from vae_explorer.latent import (
    class_centroids,
    class_labels,
    corner_grid,
    encode_image,
    encode_means,
    generate,
    interpolate,
    interpolation_paths,
    manifold_grid,
    normal_quantiles,
    plane_grid,
    reconstruction_rows,
    sample_prior,
    traversal_frames,
    traverse,
)
from vae_explorer.models.losses import kl_to_prior


def test_normal_quantiles_are_the_inverse_gaussian_cdf():
    assert normal_quantiles(7).numpy() == pytest.approx(norm.ppf(np.linspace(0.05, 0.95, 7)), abs=1e-5)
    assert normal_quantiles(3, 0.1, 0.9).numpy() == pytest.approx(norm.ppf([0.1, 0.5, 0.9]), abs=1e-5)


def test_the_manifold_grid_runs_z0_rightwards_and_z1_upwards():
    model = revealing_model(2)
    n = 5
    z = revealed_z(manifold_grid(model, n), 2).view(n, n, 2)  # row-major: (row, column, dim)
    q = norm.ppf(np.linspace(0.05, 0.95, n))
    assert z[0, 0].numpy() == pytest.approx([q[0], q[-1]], abs=1e-5)  # top left: z0 low, z1 high
    assert z[0, -1].numpy() == pytest.approx([q[-1], q[-1]], abs=1e-5)  # top right
    assert z[-1, 0].numpy() == pytest.approx([q[0], q[0]], abs=1e-5)  # bottom left
    assert z[:, 2, 0].numpy() == pytest.approx(np.full(n, q[2]), abs=1e-5)  # a column shares z0
    assert z[3, :, 1].numpy() == pytest.approx(np.full(n, q[1]), abs=1e-5)  # a row shares z1
    assert z[2, :, 0].numpy() == pytest.approx(q, abs=1e-5)


def test_a_1d_manifold_is_one_row_and_3d_has_none():
    z = revealed_z(manifold_grid(revealing_model(1), 6), 1)[:, 0]
    assert z.numpy() == pytest.approx(norm.ppf(np.linspace(0.05, 0.95, 6)), abs=1e-5)
    with pytest.raises(ValueError, match="1-D or 2-D latent space, this model has 3"):
        manifold_grid(revealing_model(3), 4)


def test_slerp_is_the_formula_with_non_orthogonal_end_points():
    z0, z1 = torch.tensor([1.0, 0.5, -2.0]), torch.tensor([0.3, 2.0, 1.0])
    omega = math.acos(float(z0 @ z1 / (z0.norm() * z1.norm())))
    t = np.linspace(0, 1, 6)[:, None]
    expected = (np.sin((1 - t) * omega) * z0.numpy() + np.sin(t * omega) * z1.numpy()) / math.sin(omega)
    assert interpolate(z0, z1, 6, "slerp").numpy() == pytest.approx(expected, abs=1e-5)
    assert interpolate(z0, z1, 6, "linear").numpy() == pytest.approx((1 - t) * z0.numpy() + t * z1.numpy(), abs=1e-6)


def test_slerp_between_equal_norms_keeps_the_norm_and_turns_evenly():
    z0 = torch.tensor([2.0, 0.0, 0.0])
    z1 = 2.0 * torch.tensor([math.cos(2.0), math.sin(2.0), 0.0])  # 2 radians apart
    path = interpolate(z0, z1, 5, "slerp")
    assert path.norm(dim=1).numpy() == pytest.approx(np.full(5, 2.0), abs=1e-5)
    angles = np.arctan2(path[:, 1].numpy(), path[:, 0].numpy())
    assert angles == pytest.approx(np.linspace(0, 2.0, 5), abs=1e-5)
    assert float(interpolate(z0, z1, 5, "linear")[2].norm()) < 2.0 * math.cos(1.0) + 1e-5  # the chord dips inside


def test_slerp_of_parallel_points_is_the_line_and_unknown_methods_are_refused():
    z0, z1 = torch.tensor([1.0, 1.0]), torch.tensor([3.0, 3.0])
    assert torch.allclose(interpolate(z0, z1, 3, "slerp"), torch.tensor([[1.0, 1.0], [2.0, 2.0], [3.0, 3.0]]))
    with pytest.raises(ValueError, match="unknown interpolation method 'cubic'"):
        interpolate(z0, z1, 3, "cubic")


def test_a_traversal_row_varies_only_its_dimension():
    model = revealing_model(4)
    start = torch.tensor([0.5, -1.0, 2.0, 0.25])
    values = torch.linspace(-3, 3, 5)
    z = revealed_z(traverse(model, [2, 0], 5, start), 4).view(2, 5, 4)
    for row, dim in enumerate([2, 0]):
        expected = start.repeat(5, 1)
        expected[:, dim] = values
        assert torch.allclose(z[row], expected, atol=1e-5)
    assert torch.equal(start, torch.tensor([0.5, -1.0, 2.0, 0.25]))  # the start vector is left as it was


def test_prior_samples_decode_seeded_standard_normal_draws():
    model = revealing_model(3)
    z = revealed_z(sample_prior(model, 4000, seed=5), 3)
    assert torch.allclose(z, torch.randn(4000, 3, generator=torch.Generator().manual_seed(5)), atol=1e-5)
    assert torch.allclose(z.mean(0), torch.zeros(3), atol=0.1) and torch.allclose(z.std(0), torch.ones(3), atol=0.05)
    assert not torch.equal(sample_prior(model, 4, seed=6), sample_prior(model, 4, seed=5))


def test_class_labels_of_a_conditional_model():
    model = revealing_model(2, conditional_classes=3)
    assert class_labels(model, None, 5).tolist() == [0, 1, 2, 0, 1]
    assert class_labels(model, 2, 3).tolist() == [2, 2, 2]
    assert class_labels(revealing_model(2), 1, 3) is None
    pictures = sample_prior(model, 3, label=1).reshape(3, -1)
    assert torch.allclose(pictures[:, 2:], torch.tensor([0.5, 0.55, 0.5]).expand(3, 3))  # one-hot of class 1, revealed


def test_encode_means_are_the_posterior_means_in_batches(tiny_run, tiny_data):
    model, _, _ = tiny_run
    x = tiny_data.test_x[:50]
    mu, logvar = encode_means(model, x, batch_size=7)
    q = model.encode(x)
    assert torch.allclose(mu, q.mean, atol=1e-6) and torch.allclose(logvar, q.logvar, atol=1e-6)
    assert mu.shape == (50, 2)


def test_interpolate_is_linear_unless_told_otherwise():
    z0, z1 = torch.tensor([1.0, 2.0]), torch.tensor([3.0, -2.0])
    assert torch.equal(interpolate(z0, z1, 5), interpolate(z0, z1, 5, "linear"))


def test_slerp_between_short_vectors_and_at_a_small_angle():
    # |z0| |z1| < 1 and an angle of 0.5 rad: the formula still holds (no clamping of the norms, no
    # falling back to the line above the smallest angles)
    for z0, z1 in (
        (torch.tensor([0.3, 0.1]), torch.tensor([0.1, 0.2])),
        (torch.tensor([2.0, 0.0]), 3.0 * torch.tensor([math.cos(0.5), math.sin(0.5)])),
    ):
        omega = math.acos(float(z0 @ z1 / (z0.norm() * z1.norm())))
        t = np.linspace(0, 1, 5)[:, None]
        expected = (np.sin((1 - t) * omega) * z0.numpy() + np.sin(t * omega) * z1.numpy()) / math.sin(omega)
        assert interpolate(z0, z1, 5, "slerp").numpy() == pytest.approx(expected, abs=1e-5)


def test_slerp_between_opposite_points_is_the_line():
    # z1 = -2.5 z0: no great circle is the one; cos rounds to -1.0000001 here, which must not give NaN
    z0 = torch.tensor(
        [1.5409960746765137, -0.293428897857666, -2.1787893772125244, 0.5684, -1.0845, -1.3986, 0.4033, 0.8380]
    )
    z1 = -2.5 * z0
    path = interpolate(z0, z1, 5, "slerp")
    assert torch.isfinite(path).all() and torch.allclose(path, interpolate(z0, z1, 5, "linear"), atol=1e-6)
    z0, z1 = torch.tensor([2.0, 2.0]), torch.tensor([4.0, 4.0])  # parallel: the line too
    assert torch.allclose(interpolate(z0, z1, 3, "slerp"), torch.tensor([[2.0, 2.0], [3.0, 3.0], [4.0, 4.0]]))


# --- what the pages are given ----------------------------------------------------------------------------


def test_generate_and_reconstruction_rows(tiny_run, tiny_data):
    model, _, _ = tiny_run
    assert generate(model, np.zeros(2)).shape == (1, 1, 8, 8)
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


def test_traversal_and_its_frames(tiny_run):
    model, _, _ = tiny_run
    images = traverse(model, [1, 0], 5)
    assert images.shape == (10, 1, 8, 8)
    frames = traversal_frames(images, rows=2, steps=5)
    assert frames.shape == (5, 1, 8, 16)
    assert torch.equal(frames[3, :, :, :8], images[3]) and torch.equal(frames[3, :, :, 8:], images[8])


def test_kl_to_prior():
    assert kl_to_prior(0.0, 1.0) == pytest.approx(0.0, abs=1e-7)
    assert kl_to_prior(1.0, 0.6) == pytest.approx(0.5 * (1 + 0.36 - 1 - np.log(0.36)), rel=1e-5)


# --- what the pages are given, read back from a model whose pictures show z (probes.revealing_model) --------


def test_generate_keeps_the_order_of_z_and_the_class():
    z = np.array([[0.5, -1.5, 2.0], [1.0, 0.0, -3.0]])
    assert revealed_z(generate(revealing_model(3), z), 3).numpy() == pytest.approx(z, abs=1e-5)
    conditional = revealing_model(3, conditional_classes=4)
    pictures = generate(conditional, z, label=2).reshape(2, -1)
    assert pictures[:, 3:].numpy() == pytest.approx(np.tile([0.5, 0.5, 0.55, 0.5], (2, 1)), abs=1e-6)


def test_reconstruction_rows_pair_each_image_with_its_own_reconstruction(tiny_run, tiny_data):
    model, _, _ = tiny_run
    x = tiny_data.test_x[10:16]
    rows = reconstruction_rows(model, x, tiny_data.test_y[10:16], per_row=4)
    own = torch.sigmoid(model.decoder(model.to_latent(model.encoder(x))[:, :2])).detach()  # (6, 1, 8, 8)
    assert torch.allclose(rows[4:8], own[:4], atol=1e-6) and torch.allclose(rows[10:12], own[4:6], atol=1e-6)


def test_encode_image_samples_spread_as_the_posterior(tiny_run, tiny_data):
    model = revealing_model(2)
    with torch.no_grad():  # a posterior with sigma = (e^0.5, e^-1) whatever the image
        model.to_latent.weight.zero_()
        model.to_latent.bias.copy_(torch.tensor([0.5, -1.0, 1.0, -2.0]))
    encoding = encode_image(model, torch.zeros(1, 1, 2), samples=20_000)
    assert encoding.mean == pytest.approx([0.5, -1.0]) and encoding.stddev == pytest.approx(
        [math.exp(0.5), 1 / math.e], rel=1e-5
    )
    z = revealed_z(encoding.samples, 2)
    assert z.mean(0).numpy() == pytest.approx([0.5, -1.0], abs=0.05)
    assert z.std(0).numpy() == pytest.approx([math.exp(0.5), 1 / math.e], rel=0.02)
    assert revealed_z(encoding.reconstruction, 2)[0].numpy() == pytest.approx([0.5, -1.0], abs=1e-5)  # from the mean


def test_encoding_distance_flags_codes_far_outside_the_prior():
    from vae_explorer.latent import Encoding

    def encoding(mean):
        return Encoding(torch.zeros(1), torch.zeros(1), np.array(mean), np.ones(4), torch.zeros(0))

    assert encoding([3.0, 4.0, 0.0, 0.0]).distance == pytest.approx(5.0)
    assert encoding([0.0, 5.9, 0.0, 0.0]).unusual is False  # the line is 3 sqrt(d) = 6
    assert encoding([0.0, 0.0, -6.1, 0.0]).unusual is True


def test_plane_grid_spans_the_plane_with_a_rising_upwards():
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
    assert (
        grid[0, 1] == pytest.approx([2, 0])
        and grid[2, 1] == pytest.approx([2, 4])
        and grid[1, 0] == pytest.approx([0, 1])
    )
    assert grid[1, 1] == pytest.approx([2, 2]) and grid[1, 2] == pytest.approx([4, 3])
    mu = np.array([[1.0, 2.0], [3.0, -2.0], [5.0, 5.0], [-1.0, 0.0]])
    assert class_centroids(mu, np.array([1, 1, 0, 1]), 3) == pytest.approx(np.array([[5, 5], [1, 0], [0, 0]]))


def test_traverse_starts_from_the_given_point_and_runs_low_to_high():
    start = np.array([0.5, -1.0, 2.0])
    z = revealed_z(traverse(revealing_model(3), [1], 4, start, low=-2.0, high=1.0), 3).numpy()
    assert z[:, 1] == pytest.approx([-2.0, -1.0, 0.0, 1.0], abs=1e-5)
    assert z[:, 0] == pytest.approx(np.full(4, 0.5), abs=1e-5) and z[:, 2] == pytest.approx(np.full(4, 2.0), abs=1e-5)
    assert revealed_z(traverse(revealing_model(3), [0], 3), 3).numpy()[:, 1:] == pytest.approx(
        np.zeros((3, 2)), abs=1e-5
    )


def test_grids_and_traversals_of_a_conditional_model_keep_the_class_and_the_default_ranges():
    model = revealing_model(2, conditional_classes=3)
    plane = plane_grid(model, np.zeros(2), np.eye(2), np.ones(2), 3, label=2).reshape(9, -1)
    assert plane[:, 2:].numpy() == pytest.approx(np.tile([0.5, 0.5, 0.55], (9, 1)), abs=1e-6)
    assert revealed_z(plane_grid(revealing_model(2), np.zeros(2), np.eye(2), np.ones(2), 3), 2)[
        0
    ].numpy() == pytest.approx([-2.5, 2.5], abs=1e-5)  # the default extent: 2.5 spreads each way
    swept = traverse(model, [0], 3, label=1).reshape(3, -1)
    assert swept[:, 2:].numpy() == pytest.approx(np.tile([0.5, 0.55, 0.5], (3, 1)), abs=1e-6)
    assert revealed_z(traverse(revealing_model(2), [0], 3), 2)[:, 0].numpy() == pytest.approx(
        [-3.0, 0.0, 3.0], abs=1e-5
    )


def test_traverse_takes_a_float64_start_for_a_float32_model(tiny_run):
    model, _, _ = tiny_run
    start = np.array([0.25, -0.5])  # float64, as numpy gives it
    images = traverse(model, [1], 3, start)
    z = torch.tensor([[0.25, -3.0], [0.25, 0.0], [0.25, 3.0]])
    assert torch.allclose(images, torch.sigmoid(model.decoder(z)).detach(), atol=1e-6)


def test_corner_grid_away_from_the_origin():
    a, b, c, d = (np.array(v, dtype=float) for v in ([1, 1], [5, 1], [1, 3], [5, 7]))
    grid = corner_grid(a, b, c, d, 3)
    assert grid.shape == (9, 2)
    assert grid[1] == pytest.approx([3, 1]) and grid[3] == pytest.approx([1, 2]) and grid[4] == pytest.approx([3, 3])


def test_centroid_arithmetic_and_path_lengths_by_hand():
    from vae_explorer.latent import centroid_arithmetic, class_centroids, path_lengths

    mu = np.array([[0.0, 0.0], [2.0, 0.0], [0.0, 4.0], [0.0, 2.0]])
    centroids = class_centroids(mu, np.array([0, 0, 1, 1]), 3)
    assert centroids.tolist() == [[1.0, 0.0], [0.0, 3.0], [0.0, 0.0]]  # a class with no image: zeros
    assert centroid_arithmetic([1.0, 1.0], centroids, 1, 0, 0.5).tolist() == [
        0.5,
        2.5,
    ]  # (1, 1) + 0.5 * ((0, 3) - (1, 0))
    lengths = path_lengths({"linear": np.array([[3.0, 4.0], [0.0, 0.0]]), "slerp": np.array([[1.0, 0.0]])})
    assert lengths["linear"].tolist() == [5.0, 0.0] and lengths["slerp"].tolist() == [1.0]
